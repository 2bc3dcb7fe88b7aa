import Glibc
import Synchronization
import UtilbotGateway
import UtilbotGatewayTypes

/// A client handed to C: its settings until it connects, then the gateway session, the event
/// callback or the pull queue, and its last error message.
final class ClientHandle: GatewaySessionDelegate, @unchecked Sendable {
    struct Settings {
        var options: GatewayOptions
        var callback: ubg_event_cb?
        var userData: UnsafeMutableRawPointer?
        /// Warnings and errors reach the host unless it asks for silence: the insecure-TLS warning
        /// and the gateway's "client bug" closes must not go unseen.
        var logLevel: Int32 = LogLevel.warning.rawValue
    }

    static let registry = HandleRegistry<ClientHandle>()

    let loopObject: LoopObject
    let lastError = ErrorMessageBuffer()
    private(set) var handle: OpaquePointer?
    private let settings: Locked<Settings>
    private let gateway = Locked<GatewaySession?>(nil)
    private let freed = Atomic<Bool>(false)
    let queue: EventQueue
    // Loop thread: the settings events need, copied at connect (they cannot change after it).
    private var callback: ubg_event_cb?
    private var userData: UnsafeMutableRawPointer?
    private var logLevel: Int32 = LogLevel.warning.rawValue
    /// Loop thread, callback mode: the NUL-terminated copy of a dispatch's data, reused.
    private var dataScratch = CStringScratch()
    /// Loop thread, pull mode: the dispatch names queued events point into. It lives exactly as
    /// long as `queue`, which holds every record (both belong to this object).
    private var names = NameTable()
    /// Loop thread, pull mode: a notification of the consumer is due before the loop waits.
    private var notifyScheduled = false

    init(loop: LoopObject, key: String) throws(GatewayError) {
        loopObject = loop
        settings = Locked(Settings(options: GatewayOptions(key: key)))
        queue = EventQueue(capacity: 4096)
    }

    func register() -> OpaquePointer {
        let handle = Self.registry.insert(self)
        self.handle = handle
        loopObject.clients.add(1, ordering: .relaxed)
        return handle
    }

    /// Changes settings; only before `connect`. Checked and changed under the lock `connect`
    /// takes, so a change racing a connect either lands before it or fails.
    func configure(_ change: (inout Settings) throws(GatewayError) -> Void) throws(GatewayError) {
        try gateway.withLock { (current: inout GatewaySession?) throws(GatewayError) in
            guard current == nil else {
                throw GatewayError(.invalidState, "settings can only change before ubg_client_connect()")
            }
            try settings.withLock { (s: inout Settings) throws(GatewayError) in try change(&s) }
        }
    }

    var options: GatewayOptions { settings.withLock { $0.options } }

    func connect() throws(GatewayError) {
        let session = try gateway.withLock { (current: inout GatewaySession?) throws(GatewayError) -> GatewaySession in
            guard current == nil else { throw GatewayError(.invalidState, "the client is already connected") }
            let settings = settings.withLock { $0 }
            let made = try GatewaySession(loop: loopObject.loop, options: settings.options)
            // Written before start() hands the client to the loop thread, which reads them.
            callback = settings.callback
            userData = settings.userData
            logLevel = settings.logLevel
            current = made
            return made
        }
        session.delegate = self
        session.start()
    }

    func send(name: String, data: [UInt8]?) throws(GatewayError) {
        guard let session = gateway.withLock({ $0 }) else {
            throw GatewayError(.invalidState, "connect first: ubg_client_connect()")
        }
        try session.send(name: name, data: data)
    }

    func close(code: UInt16) throws(GatewayError) {
        guard let session = gateway.withLock({ $0 }) else {
            throw GatewayError(.invalidState, "the client was never connected")
        }
        session.close(code: code)
    }

    var statistics: GatewayStatistics {
        gateway.withLock { $0?.statistics } ?? GatewayStatistics()
    }

    /// Ends the client: no event is delivered once this returns (on the loop thread: once the
    /// running callback returns).
    func free() {
        freed.store(true, ordering: .releasing)
        queue.close()
        // The loop counts this client until the end, so ubg_loop_free() cannot stop the loop
        // while we still wait for it.
        defer { loopObject.clients.subtract(1, ordering: .relaxed) }
        guard let session = gateway.withLock({ $0 }) else { return }
        session.free()
        let loop = loopObject.loop
        if !loop.isCurrent && !loop.hasClosedForExit {
            // Wait until the loop has run the detach, so no callback can start after we return.
            let (wait, signal) = makeWaiter()
            loop.execute { signal() }
            wait()
        }
    }

    // MARK: Loop thread

    // One route per kind of event and delivery mode: the callback gets each event at once,
    // the pull queue a record of it.

    func gatewaySession(_ session: GatewaySession, didDispatch name: String, data: ArraySlice<UInt8>?) {
        guard !freed.load(ordering: .acquiring) else { return }
        if let callback {
            deliverDispatch(name: name, data: data, state: session.reportedState, to: callback)
        } else {
            let record = EventRecord(dispatch: name, data: data, state: session.reportedState, names: &names)
            enqueue(record, final: false, from: session)
        }
    }

    func gatewaySession(_ session: GatewaySession, didEmit event: SessionEvent) {
        guard !freed.load(ordering: .acquiring) else { return }
        guard let record = EventRecord(event, state: session.reportedState, logLevel: logLevel) else { return }
        if let callback {
            var cEvent = ubg_event_t()
            withExtendedLifetime(record) {
                record.fill(&cEvent)
                callback(handle, &cEvent, userData)
            }
        } else {
            let final: Bool
            if case .state(let s) = event, s == .closed || s == .failed { final = true } else { final = false }
            enqueue(record, final: final, from: session)
        }
    }

    private func enqueue(_ record: EventRecord, final: Bool, from session: GatewaySession) {
        if queue.push(record, final: final) {
            session.setReadsPaused(true)
        }
        if !notifyScheduled {
            notifyScheduled = true
            loopObject.loop.runBeforeWaiting { [self] in
                notifyScheduled = false
                queue.notify()
            }
        }
    }

    /// The hot path of callback mode: the event points at the name's own storage and at a
    /// reused copy of the data, so delivering it allocates nothing.
    private func deliverDispatch(name: String, data: ArraySlice<UInt8>?, state: ClientState, to callback: ubg_event_cb)
    {
        var event = ubg_event_t()
        event.size = MemoryLayout<ubg_event_t>.size
        event.type = UBG_EVENT_DISPATCH
        event.state = ubg_state_t(rawValue: UInt32(state.rawValue))
        event.result = UBG_OK
        if let data {
            event.data = UnsafePointer(data.withUnsafeBytes { dataScratch.set($0) })
            event.data_len = data.count
        }
        name.withCString { namePointer in
            event.name = namePointer
            callback(handle, &event, userData)
        }
        // The copy of one large message's data is not kept for the small ones after it.
        if dataScratch.capacity > CStringScratch.keptCapacity { dataScratch.free() }
    }

    deinit { dataScratch.free() }

    /// The pull API (any one thread at a time).
    func nextEvents(maxCount: Int, timeoutMilliseconds: Int32, fill: (Int, EventRecord) -> Void) -> EventQueue.Pop {
        queue.pop(maxCount: maxCount, timeoutMilliseconds: timeoutMilliseconds, fill: fill) {
            guard let session = gateway.withLock({ $0 }) else { return }
            loopObject.loop.execute { session.setReadsPaused(false) }
        }
    }

    var usesCallback: Bool { settings.withLock { $0.callback != nil } }
}

/// A growable buffer holding one NUL-terminated copy of some bytes at a time.
struct CStringScratch {
    static let keptCapacity = 64 * 1024
    private var storage: UnsafeMutablePointer<CChar>?
    private(set) var capacity = 0

    /// Copies `bytes` and a NUL; the pointer is valid until the next `set` or `release`.
    mutating func set(_ bytes: UnsafeRawBufferPointer) -> UnsafeMutablePointer<CChar> {
        if capacity < bytes.count + 1 {
            storage?.deallocate()
            capacity = max(bytes.count + 1, 256)
            storage = .allocate(capacity: capacity)
        }
        let target = storage!
        copyCString(bytes, to: target)
        return target
    }

    mutating func free() {
        storage?.deallocate()
        storage = nil
        capacity = 0
    }
}

/// A one-shot wait for a signal from another thread.
func makeWaiter() -> (wait: () -> Void, signal: @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        init() { sem_init(semaphore, 0, 0) }
        deinit {
            sem_destroy(semaphore)
            semaphore.deallocate()
        }
    }
    let box = Box()
    return ({ while sem_wait(box.semaphore) != 0 {} }, { sem_post(box.semaphore) })
}
