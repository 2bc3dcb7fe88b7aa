// Fuzz target: the frame decoder and the sans-I/O receive path of `WebSocketStateMachine`
// (fragmentation, control frames, closing handshake, UTF-8, limits).
//
// Input: byte 0 holds flags, byte 1 seeds the chunking, byte 2 places our close, the rest is what the
// server sends.
// - flags bit 0: we start the closing handshake (close 1000 "bye") after the first n * byte2 / 255 of the
//   n bytes have arrived (0: before anything arrives);
// - flags bits 1-3: the message limit (1 MiB, 0, 1, 125, 126, 200, 1000 or 65536 bytes).
// Checks:
// - `FrameDecoder`: the same frames and the same error whether fed whole or in chunks;
// - the connection: the same events and the same frames written (unmasked) whether fed whole or in
//   chunks; at most one `.closed` event, the last one, and nothing after it (more input gives no events);
//   the state is `.closed` exactly when `.closed` was reported; text is valid UTF-8; messages respect the
//   limit; control payloads are at most 125 bytes; close codes are valid; what we write is well-formed,
//   masked, and ends with at most one close frame; after we started closing no message is delivered and
//   nothing but our close frame is written.
import UtilbotGateway

private let limits = [1 << 20, 0, 1, 125, 126, 200, 1000, 65536]

private struct DecodeResult: Equatable {
    var frames: [Frame] = []
    var failure: WebSocketFailure?
    var buffered = 0
}

private func decode(_ pieces: [ArraySlice<UInt8>], maxPayload: Int) -> DecodeResult {
    var decoder = FrameDecoder(maxPayload: maxPayload)
    var result = DecodeResult()
    outer: for piece in pieces {
        decoder.append(Array(piece))
        do {
            while let frame = try decoder.nextFrame() {
                require(frame.payload.count <= maxPayload, "a frame of \(frame.payload.count) bytes over the limit")
                result.frames.append(frame)
            }
        } catch {
            result.failure = error
            break outer
        }
    }
    result.buffered = decoder.bufferedByteCount
    return result
}

private struct ConnectionResult: Equatable {
    var events: [WebSocketStateMachine.Event] = []
    /// How many of the events came before our close() call, and whether close() was accepted.
    var eventsBeforeClose: Int?
    var closeAccepted = false
    /// What the connection wrote, as unmasked frames, and how many frames were written before close().
    var written: [Frame] = []
    var writtenBeforeClose = 0
    var state: WebSocketStateMachine.State = .open
}

/// Parses the client frames in `output`: each must be masked, with the shortest length form.
private func clientFrames(_ output: [UInt8]) -> [Frame] {
    var frames: [Frame] = []
    var index = 0
    while index < output.count {
        require(output.count - index >= 6, "a truncated frame header in the output")
        let b0 = output[index]
        let b1 = output[index + 1]
        require(b0 & 0x70 == 0, "reserved bits set in a frame we wrote")
        require(b1 & 0x80 != 0, "an unmasked frame in the output")
        var length = Int(b1 & 0x7F)
        var header = 2
        if length == 126 {
            length = Int(output[index + 2]) << 8 | Int(output[index + 3])
            header = 4
            require(length >= 126, "a non-minimal 16-bit length in the output")
        } else if length == 127 {
            require(output.count - index >= 14, "a truncated frame header in the output")
            length = 0
            for i in 2..<10 { length = length << 8 | Int(output[index + i]) }
            header = 10
            require(length > 0xFFFF, "a non-minimal 64-bit length in the output")
        }
        let key = Array(output[(index + header)..<(index + header + 4)])
        let start = index + header + 4
        require(output.count - start >= length, "a truncated frame payload in the output")
        var payload = Array(output[start..<(start + length)])
        for i in payload.indices { payload[i] ^= key[i & 3] }
        frames.append(Frame(fin: b0 & 0x80 != 0, opcode: Opcode(rawValue: b0 & 0x0F), payload: payload))
        index = start + length
    }
    return frames
}

/// Feeds `before`, calls close(1000, "bye") when `close` is set, then feeds `after`.
private func receive(
    _ before: [ArraySlice<UInt8>], _ after: [ArraySlice<UInt8>], maxMessageSize: Int, close: Bool
) -> ConnectionResult {
    var connection = WebSocketStateMachine(maxMessageSize: maxMessageSize)
    var result = ConnectionResult()
    func feed(_ pieces: [ArraySlice<UInt8>]) {
        for piece in pieces {
            let events = Array(piece).withUnsafeBytes { connection.receive($0) }
            if !events.isEmpty {
                require(!result.events.contains(where: isClosed), "events after .closed: \(events)")
            }
            result.events += events
        }
    }
    feed(before)
    if close {
        result.eventsBeforeClose = result.events.count
        result.writtenBeforeClose = clientFrames(connection.output).count
        let wasOpen = connection.state == .open
        result.closeAccepted = connection.close(code: 1000, reason: "bye")
        require(result.closeAccepted == wasOpen, "close() returned \(result.closeAccepted) in \(connection.state)")
    }
    feed(after)
    if result.events.contains(where: isClosed) {
        require(connection.state == .closed, "state \(connection.state) after .closed")
        // A ping after the end must be ignored.
        require(connection.receive([0x89, 0x00]).isEmpty, "events from a closed connection")
    } else {
        require(connection.state != .closed, "closed without a .closed event")
    }
    result.state = connection.state
    result.written = clientFrames(connection.output)
    return result
}

private func isClosed(_ event: WebSocketStateMachine.Event) -> Bool {
    if case .closed = event { return true }
    return false
}

private func checkEvents(_ result: ConnectionResult, maxMessageSize: Int) {
    let closing = result.closeAccepted
    let closeIndex = result.eventsBeforeClose ?? result.events.count
    for (index, event) in result.events.enumerated() {
        let afterClose = closing && index >= closeIndex
        switch event {
        case .text(let payload):
            require(!afterClose, "a message delivered after we started closing")
            require(payload.count <= maxMessageSize, "a text message of \(payload.count) bytes over the limit")
            require(swiftAcceptsUTF8(payload), "a text message that is not valid UTF-8: \(show(payload))")
        case .binary(let payload):
            require(!afterClose, "a message delivered after we started closing")
            require(payload.count <= maxMessageSize, "a binary message of \(payload.count) bytes over the limit")
        case .ping(let payload), .pong(let payload):
            require(payload.count <= 125, "a control frame payload of \(payload.count) bytes")
        case .closed(let code, let reason, let error):
            require(index == result.events.count - 1, ".closed is not the last event")
            if let error {
                require([1002, 1007, 1009].contains(code), "failed with close code \(code) (\(error))")
                require(reason.isEmpty, "a failure with a reason")
            } else if afterClose {
                require(code == 1000 && reason == "bye", "our close came back as \(code) '\(reason)'")
            } else {
                require(code == 1005 || CloseCode.isValidOnWire(code), "the server's close code \(code) accepted")
            }
        }
    }
    // What we wrote: pongs and close frames, plus our own close first when we started the handshake.
    let closes = result.written.indices.filter { result.written[$0].opcode == .close }
    require(closes.count <= 1, "\(closes.count) close frames written")
    if let close = closes.first {
        require(close == result.written.count - 1, "frames written after our close frame")
        let payload = result.written[close].payload
        require(payload.count != 1 && payload.count <= 125, "a close frame with a \(payload.count)-byte payload")
        if payload.count >= 2 {
            let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
            require(CloseCode.isValidOnWire(code), "we sent the close code \(code)")
        }
    }
    if closing {
        require(
            closes == [result.writtenBeforeClose] && result.written.count == result.writtenBeforeClose + 1,
            "frames written after we started closing")
        require(result.written.last?.payload == [0x03, 0xE8] + Array("bye".utf8), "our close frame is wrong")
    }
    for frame in result.written {
        require(frame.fin, "a fragmented frame written")
        require(frame.opcode == .pong || frame.opcode == .close, "we wrote a \(frame.opcode) frame")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = inputBytes(data, size)
    guard input.count >= 3 else { return 0 }
    let flags = input[0]
    let close = flags & 1 != 0
    let maxMessageSize = limits[Int(flags >> 1) & 7]
    let bytes = Array(input[3...])
    let closeAt = close ? bytes.count * Int(input[2]) / 255 : bytes.count
    let before = bytes[..<closeAt]
    let after = bytes[closeAt...]

    let pieces = chunks(of: bytes, seed: input[1], allowEmpty: true)
    let wholeFrames = decode([bytes[...]], maxPayload: maxMessageSize)
    let chunkedFrames = decode(pieces, maxPayload: maxMessageSize)
    require(
        wholeFrames.frames == chunkedFrames.frames && wholeFrames.failure == chunkedFrames.failure,
        "FrameDecoder: whole \(wholeFrames.frames.count) frames, \(String(describing: wholeFrames.failure)); "
            + "chunked \(chunkedFrames.frames.count) frames, \(String(describing: chunkedFrames.failure))")
    if wholeFrames.failure == nil {
        require(wholeFrames.buffered == chunkedFrames.buffered, "FrameDecoder: different bytes left over")
    }

    let whole = receive([before], [after], maxMessageSize: maxMessageSize, close: close)
    let chunked = receive(
        chunks(of: Array(before), seed: input[1], allowEmpty: true),
        chunks(of: Array(after), seed: input[1] &+ 1, allowEmpty: true), maxMessageSize: maxMessageSize, close: close)
    require(whole == chunked, "whole \(whole) differs from chunked \(chunked)")
    checkEvents(whole, maxMessageSize: maxMessageSize)

    // Every frame the decoder produced before a failure is handled by the connection, so the number of
    // events cannot exceed the number of frames (plus the .closed of a failure).
    require(
        whole.events.count <= wholeFrames.frames.count + 1,
        "\(whole.events.count) events from \(wholeFrames.frames.count) frames")
    return 0
}
