import UtilbotGateway
import UtilbotGatewayTypes

/// A NUL-terminated string in one heap object (header and bytes in a single allocation) whose
/// address stays fixed while the object lives: C events point into it. Immutable once made, so
/// records may share one (consecutive events of the same name do).
final class CStringBox: @unchecked Sendable {
    private let storage: ManagedBuffer<Int, CChar>

    private init(_ bytes: UnsafeRawBufferPointer) {
        storage = ManagedBuffer<Int, CChar>.create(minimumCapacity: bytes.count + 1) { _ in bytes.count }
        storage.withUnsafeMutablePointerToElements { copyCString(bytes, to: $0) }
    }

    static func make(_ bytes: UnsafeRawBufferPointer) -> CStringBox { CStringBox(bytes) }

    static func make(_ bytes: ArraySlice<UInt8>) -> CStringBox { bytes.withUnsafeBytes { CStringBox($0) } }

    static func make(_ text: String) -> CStringBox {
        var text = text
        return text.withUTF8 { CStringBox(UnsafeRawBufferPointer($0)) }
    }

    /// Bytes before the NUL.
    var count: Int { storage.header }

    /// Valid while this box lives.
    var pointer: UnsafePointer<CChar> { UnsafePointer(storage.withUnsafeMutablePointerToElements { $0 }) }
}

/// An event with its strings in boxes, from which a `ubg_event_t` pointing into them is made
/// for as long as the record lives.
struct EventRecord: @unchecked Sendable {
    var type: ubg_event_type_t
    /// A dispatch's name: in the client's name table (which outlives every record of the client),
    /// or in `nameBox` once the table is full. A pointer, not a reference: a shared box's count
    /// would bounce between the loop thread and the consumer's with every event.
    var name: UnsafePointer<CChar>? = nil
    var nameBox: CStringBox? = nil
    var data: CStringBox? = nil
    var code: Int32 = 0
    var hasCode = false
    var message: CStringBox? = nil
    var local = false
    var reconnect = false
    var httpStatus: Int32 = 0
    var state: ClientState = .idle
    var result: ErrorCode = .ok

    init(type: ubg_event_type_t, state: ClientState) {
        self.type = type
        self.state = state
    }

    /// The record for an op 0 event; its name comes from `names`.
    init(dispatch name: String, data: ArraySlice<UInt8>?, state: ClientState, names: inout NameTable) {
        self.init(type: UBG_EVENT_DISPATCH, state: state)
        (self.name, self.nameBox) = names.pointer(for: name)
        self.data = data.map(CStringBox.make)
    }

    /// The record for a session event, or nil for events the host does not see (heartbeat ACKs,
    /// log lines above `logLevel`).
    init?(_ event: SessionEvent, state: ClientState, logLevel: Int32) {
        switch event {
        case .state(let next):
            self.init(type: UBG_EVENT_STATE, state: next)
        case .ready:
            self.init(type: UBG_EVENT_READY, state: state)
        case .gatewayError(let code, let message, let data):
            self.init(type: UBG_EVENT_ERROR, state: state)
            if let code {
                self.code = Int32(clamping: code)
                hasCode = true
            }
            self.message = message.map(CStringBox.make)
            self.data = data.map(CStringBox.make)
        case .localError(let error):
            self.init(type: UBG_EVENT_ERROR, state: state)
            local = true
            message = CStringBox.make(error.message)
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
                message = CStringBox.make(error.message)
            } else {
                message = CStringBox.make(reason)
            }
        case .fatal(let code, let message):
            self.init(type: UBG_EVENT_FATAL, state: state)
            self.code = Int32(code)
            hasCode = true
            self.message = CStringBox.make(message)
        case .heartbeatAck, .sendsDropped:
            return nil  // ACKs only feed the statistics; the client reports drops as local errors
        case .log(let level, let text):
            guard level.rawValue <= logLevel else { return nil }
            self.init(type: UBG_EVENT_LOG, state: state)
            code = level.rawValue
            message = CStringBox.make(text)
        }
    }

    /// What the record holds, as the pull queue's byte bound counts it: its strings and a flat
    /// 64 bytes for the record itself.
    var byteCount: Int { 64 + (data?.count ?? 0) + (message?.count ?? 0) + (nameBox?.count ?? 0) }

    /// Fills `event` with pointers into this record's boxes: valid while the record lives.
    func fill(_ event: inout ubg_event_t) {
        event.size = MemoryLayout<ubg_event_t>.size
        event.type = type
        event.name = name
        event.data = data?.pointer
        event.data_len = data?.count ?? 0
        event.code = code
        event.has_code = hasCode ? 1 : 0
        event.message = message?.pointer
        event.local = local ? 1 : 0
        event.reconnect = reconnect ? 1 : 0
        event.http_status = httpStatus
        event.state = ubg_state_t(rawValue: UInt32(state.rawValue))
        event.result = result.result
    }
}

/// The client's dispatch names, each stored once for the client's life (a gateway sends a
/// handful of distinct names; past `capacity`, a name gets a box of its own per record).
struct NameTable {
    static let capacity = 256
    private var boxes: [String: CStringBox] = [:]
    private var last: (name: String, pointer: UnsafePointer<CChar>)?

    mutating func pointer(for name: String) -> (UnsafePointer<CChar>, CStringBox?) {
        if let last, last.name == name { return (last.pointer, nil) }
        if let box = boxes[name] {
            last = (name, box.pointer)
            return (box.pointer, nil)
        }
        let box = CStringBox.make(name)
        guard boxes.count < Self.capacity else { return (box.pointer, box) }
        boxes[name] = box
        last = (name, box.pointer)
        return (box.pointer, nil)
    }
}
