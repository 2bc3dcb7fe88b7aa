/// The client side of an open WebSocket connection as a plain value (no I/O): bytes from the
/// server go in through `receive`, what to do comes out as `Event`s, and the bytes to write
/// accumulate in `output` for the driver to drain.
///
/// It reassembles fragmented messages (control frames may arrive between fragments), validates
/// text as UTF-8 incrementally across fragments, answers pings, runs the closing handshake
/// (RFC 6455 §7) and fails the connection with 1002, 1007 or 1009 on a violation.
package struct WebSocketStateMachine {
    /// Payloads are slices of the connection's receive buffer: handle them (or copy them) before
    /// the next `receive`, or that call copies the buffer.
    package enum Event: Equatable, Sendable {
        case text(ArraySlice<UInt8>)
        case binary(ArraySlice<UInt8>)
        case ping(ArraySlice<UInt8>)
        case pong(ArraySlice<UInt8>)
        /// The closing handshake is complete, or the connection failed. `code` is the
        /// server's close code when it closed first (1005 when its frame had none), ours
        /// when we did or when we failed the connection; `error` says why we failed it.
        case closed(code: UInt16, reason: String, error: GatewayError?)
    }

    package enum State: Equatable, Sendable {
        case open
        /// We sent a close frame and wait for the server's.
        case closing(code: UInt16, reason: String)
        case closed
    }

    package private(set) var state: State = .open
    /// Bytes to write to the transport, in order.
    package var output: [UInt8] = []
    package let maxMessageSize: Int

    private var decoder: FrameDecoder
    private var masking = MaskingKeySource()
    private var fragmentOpcode: Opcode?
    private var fragments: [UInt8] = []
    private var utf8 = UTF8Validator()

    package init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
        self.decoder = FrameDecoder(maxPayload: maxMessageSize)
    }

    // MARK: Receiving

    package mutating func receive(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        guard state != .closed else { return [] }
        decoder.append(bytes)
        var events: [Event] = []
        // One do block: binding the frame outside it made two copies of an optional frame per
        // message, each destroyed through generic code. A failure closes (the loop ends).
        while state != .closed {
            do throws(WebSocketFailure) {
                guard let frame = try decoder.nextFrame() else { break }
                if let event = try handle(frame) { events.append(event) }
            } catch {
                events.append(close(failing: error))
            }
        }
        return events
    }

    /// Gives back what a large message grew, once the events of `receive` are handled.
    package mutating func releaseConsumedInput() { decoder.releaseConsumed() }

    package mutating func receive(_ bytes: [UInt8]) -> [Event] {
        bytes.withUnsafeBytes { receive($0) }
    }

    private mutating func handle(_ frame: Frame) throws(WebSocketFailure) -> Event? {
        switch frame.opcode {
        case .ping:
            if case .open = state { send(.pong, frame.payload) }
            return .ping(frame.payload)
        case .pong:
            return .pong(frame.payload)
        case .close:
            return try handleClose(frame.payload)
        case .text, .binary:
            if fragmentOpcode != nil {
                throw .protocolError("a new \(frame.opcode) message began inside a fragmented message")
            }
            if case .closing = state { return nil }  // §7.1.4: data after our close is discarded
            if frame.fin {
                if frame.opcode == .text { try checkText(frame.payload, final: true) }
                return frame.opcode == .text ? .text(frame.payload) : .binary(frame.payload)
            }
            fragmentOpcode = frame.opcode
            fragments = Array(frame.payload)
            if frame.opcode == .text { try checkText(frame.payload, final: false) }
            return nil
        default:  // continuation; the decoder rejects unknown opcodes
            guard let opcode = fragmentOpcode else {
                throw .protocolError("a continuation frame with no message to continue")
            }
            if fragments.count + frame.payload.count > maxMessageSize {
                throw WebSocketFailure(
                    CloseCode.messageTooBig, .messageTooLarge,
                    "fragmented message exceeds the \(maxMessageSize)-byte limit")
            }
            fragments.append(contentsOf: frame.payload)
            if opcode == .text { try checkText(frame.payload, final: frame.fin) }
            guard frame.fin else { return nil }
            fragmentOpcode = nil
            let message = fragments[...]
            fragments = []
            if case .closing = state { return nil }
            return opcode == .text ? .text(message) : .binary(message)
        }
    }

    private mutating func checkText(_ bytes: ArraySlice<UInt8>, final: Bool) throws(WebSocketFailure) {
        let ok = bytes.withUnsafeBytes { utf8.feed($0) }
        if !ok || (final && !utf8.isComplete) {
            utf8.reset()
            throw WebSocketFailure(CloseCode.invalidPayload, .invalidUTF8, "text message is not valid UTF-8")
        }
        if final { utf8.reset() }
    }

    private mutating func handleClose(_ slice: ArraySlice<UInt8>) throws(WebSocketFailure) -> Event? {
        let payload = Array(slice)
        var code = CloseCode.noStatus
        var reason = ""
        if payload.count == 1 {
            throw .protocolError("close frame with a one-byte payload")
        }
        if payload.count >= 2 {
            code = UInt16(payload[0]) << 8 | UInt16(payload[1])
            guard CloseCode.isValidOnWire(code) else {
                throw .protocolError("close frame with the invalid code \(code)")
            }
            let reasonBytes = payload[2...]
            guard reasonBytes.withUnsafeBytes({ UTF8Validator.isValid($0) }) else {
                throw WebSocketFailure(CloseCode.invalidPayload, .invalidUTF8, "close reason is not valid UTF-8")
            }
            reason = String(decoding: reasonBytes, as: UTF8.self)
        }
        switch state {
        case .open:
            // Echo the server's code (§5.5.1); an empty close is answered with an empty close.
            send(.close, payload.count >= 2 ? [payload[0], payload[1]] : [])
            state = .closed
            return .closed(code: code, reason: reason, error: nil)
        case .closing(let ourCode, let ourReason):
            state = .closed
            return .closed(code: ourCode, reason: ourReason, error: nil)
        case .closed:
            return nil
        }
    }

    /// Fails the connection (§7.1.7): queues a close frame with the failure's code and ends.
    private mutating func close(failing failure: WebSocketFailure) -> Event {
        if case .open = state {
            send(.close, Self.closePayload(failure.closeCode, ""))
        }
        state = .closed
        return .closed(code: failure.closeCode, reason: "", error: failure.error)
    }

    // MARK: Sending

    /// Queues a data message. Returns false when the connection is no longer open.
    @discardableResult
    package mutating func send(text: UnsafeRawBufferPointer) -> Bool { sendData(.text, text) }

    @discardableResult
    package mutating func send(binary: UnsafeRawBufferPointer) -> Bool { sendData(.binary, binary) }

    @discardableResult
    package mutating func sendPing(_ payload: [UInt8]) -> Bool {
        guard case .open = state, payload.count <= 125 else { return false }
        send(.ping, payload)
        return true
    }

    /// Starts the closing handshake. `code` must be sendable; the reason at most 123 bytes.
    @discardableResult
    package mutating func close(code: UInt16, reason: String = "") -> Bool {
        guard case .open = state else { return false }
        var reasonBytes = Array(reason.utf8)
        if reasonBytes.count > 123 { reasonBytes = Array(reasonBytes.prefix(123)) }
        send(.close, Self.closePayload(code, "") + reasonBytes)
        state = .closing(code: code, reason: reason)
        return true
    }

    /// Ends the connection without a handshake (the peer vanished or a timer expired).
    package mutating func abort() {
        state = .closed
    }

    private mutating func sendData(_ opcode: Opcode, _ payload: UnsafeRawBufferPointer) -> Bool {
        guard case .open = state else { return false }
        FrameEncoder.encode(opcode: opcode, payload: payload, maskingKey: masking.next(), into: &output)
        return true
    }

    private mutating func send(_ opcode: Opcode, _ payload: [UInt8]) { send(opcode, payload[...]) }

    private mutating func send(_ opcode: Opcode, _ payload: ArraySlice<UInt8>) {
        let key = masking.next()
        payload.withUnsafeBytes { FrameEncoder.encode(opcode: opcode, payload: $0, maskingKey: key, into: &output) }
    }

    private static func closePayload(_ code: UInt16, _ reason: String) -> [UInt8] {
        [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    }
}
