import UtilbotGateway
import UtilbotGatewayTypes

/// An event with its strings owned in Swift arrays (NUL-terminated), from which a `ubg_event_t`
/// pointing into them is made for as long as the record lives.
struct EventRecord: Sendable {
    var type: ubg_event_type_t
    var name: [CChar]? = nil
    var data: [CChar]? = nil
    var code: Int32 = 0
    var hasCode = false
    var message: [CChar]? = nil
    var local = false
    var reconnect = false
    var httpStatus: Int32 = 0
    var state: ClientState = .idle
    var result: ErrorCode = .ok

    init(type: ubg_event_type_t, state: ClientState) {
        self.type = type
        self.state = state
    }

    static func cString(_ text: String) -> [CChar] {
        var text = text
        return text.withUTF8 { cString(UnsafeRawBufferPointer($0)) }
    }

    static func cString(_ bytes: ArraySlice<UInt8>) -> [CChar] {
        bytes.withUnsafeBytes { cString($0) }
    }

    /// One allocation and a copy: no per-byte work.
    static func cString(_ bytes: UnsafeRawBufferPointer) -> [CChar] {
        [CChar](unsafeUninitializedCapacity: bytes.count + 1) { buffer, initialized in
            if let base = bytes.baseAddress, bytes.count > 0 {
                UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: bytes.count)
            }
            buffer[bytes.count] = 0
            initialized = bytes.count + 1
        }
    }

    /// The record for a session event, or nil for events the host does not see (heartbeat ACKs,
    /// log lines above `logLevel`).
    init?(_ event: SessionEvent, state: ClientState, logLevel: Int32) {
        switch event {
        case .state(let next):
            self.init(type: UBG_EVENT_STATE, state: next)
        case .ready:
            self.init(type: UBG_EVENT_READY, state: state)
        case .dispatch(let name, let data):
            self.init(type: UBG_EVENT_DISPATCH, state: state)
            self.name = Self.cString(name)
            self.data = data.map(Self.cString)
        case .gatewayError(let code, let message, let data):
            self.init(type: UBG_EVENT_ERROR, state: state)
            if let code {
                self.code = Int32(clamping: code)
                hasCode = true
            }
            self.message = message.map(Self.cString)
            self.data = data.map(Self.cString)
        case .localError(let error):
            self.init(type: UBG_EVENT_ERROR, state: state)
            local = true
            message = Self.cString(error.message)
            result = error.code
        case .closed(let code, let reason, let reconnect, let error, let httpStatus):
            self.init(type: UBG_EVENT_CLOSED, state: state)
            self.code = Int32(code)
            hasCode = true
            self.reconnect = reconnect
            self.httpStatus = Int32(clamping: httpStatus ?? 0)
            if let error {
                local = true
                result = error.code
                message = Self.cString(error.message)
            } else {
                message = Self.cString(reason)
            }
        case .fatal(let code, let message):
            self.init(type: UBG_EVENT_FATAL, state: state)
            self.code = Int32(code)
            hasCode = true
            self.message = Self.cString(message)
        case .heartbeatAck, .sendsDropped:
            return nil  // ACKs only feed the statistics; the client reports drops as local errors
        case .log(let level, let text):
            guard level.rawValue <= logLevel else { return nil }
            self.init(type: UBG_EVENT_LOG, state: state)
            code = level.rawValue
            message = Self.cString(text)
        }
    }

    /// Calls `body` with a `ubg_event_t` whose pointers are valid during the call.
    func withCEvent<R>(_ body: (UnsafePointer<ubg_event_t>) -> R) -> R {
        Self.withOptional(name) { namePointer in
            Self.withOptional(data) { dataPointer in
                Self.withOptional(message) { messagePointer in
                    var event = ubg_event_t()
                    fill(&event, name: namePointer, data: dataPointer, message: messagePointer)
                    return withUnsafePointer(to: &event) { body($0) }
                }
            }
        }
    }

    /// Copies the strings into `arena` (one allocation, owned by the caller) and fills `event`
    /// with pointers into it. The arena must be freed with `free()` once the event is dead.
    func fill(_ event: inout ubg_event_t, arena: inout UnsafeMutablePointer<CChar>?) {
        let total = (name?.count ?? 0) + (data?.count ?? 0) + (message?.count ?? 0)
        let block = UnsafeMutablePointer<CChar>.allocate(capacity: max(total, 1))
        arena = block
        var offset = 0
        func place(_ array: [CChar]?) -> UnsafePointer<CChar>? {
            guard let array else { return nil }
            let start = block + offset
            array.withUnsafeBufferPointer { start.update(from: $0.baseAddress!, count: $0.count) }
            offset += array.count
            return UnsafePointer(start)
        }
        let namePointer = place(name)
        let dataPointer = place(data)
        let messagePointer = place(message)
        fill(&event, name: namePointer, data: dataPointer, message: messagePointer)
    }

    private func fill(
        _ event: inout ubg_event_t, name: UnsafePointer<CChar>?, data: UnsafePointer<CChar>?,
        message: UnsafePointer<CChar>?
    ) {
        event.size = MemoryLayout<ubg_event_t>.size
        event.type = type
        event.name = name
        event.data = data
        event.data_len = self.data.map { $0.count - 1 } ?? 0
        event.code = code
        event.has_code = hasCode ? 1 : 0
        event.message = message
        event.local = local ? 1 : 0
        event.reconnect = reconnect ? 1 : 0
        event.http_status = httpStatus
        event.state = ubg_state_t(rawValue: UInt32(state.rawValue))
        event.result = result.result
    }

    private static func withOptional<R>(_ array: [CChar]?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let array else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
