import Glibc
import Synchronization
import UtilbotGateway
import UtilbotGatewayTypes

/// A client handed to C: its settings until it connects, then the gateway session, the event
/// callback or the pull queue, and its last error message.
final class ClientObject: GatewayClientDelegate, @unchecked Sendable {
    struct Settings {
        var options: GatewayOptions
        var callback: ubg_event_cb?
        var userData: UnsafeMutableRawPointer?
        var logLevel: Int32 = 0
    }

    static let registry = HandleRegistry<ClientObject>()

    let loopObject: LoopObject
    let lastError = ErrorMessageBuffer()
    private(set) var handle: OpaquePointer?
    private let settings: Locked<Settings>
    private let gateway = Locked<GatewayClient?>(nil)
    private let freed = Atomic<Bool>(false)
    let queue: EventQueue
    // Loop thread: the state as of the last event, for events that do not carry one.
    private var state: ClientState = .idle

    init(loop: LoopObject, key: String) throws(GatewayError) {
        loopObject = loop
        settings = Locked(Settings(options: GatewayOptions(key: key)))
        queue = try EventQueue(capacity: 4096)
    }

    func register() -> OpaquePointer {
        let handle = Self.registry.insert(self)
        self.handle = handle
        loopObject.clients.add(1, ordering: .relaxed)
        return handle
    }

    var isConnected: Bool { gateway.withLock { $0 != nil } }

    /// Changes settings; only before `connect`.
    func configure(_ change: (inout Settings) throws(GatewayError) -> Void) throws(GatewayError) {
        guard !isConnected else {
            throw GatewayError(.invalidState, "settings can only change before ubg_client_connect()")
        }
        try settings.withLock { (s: inout Settings) throws(GatewayError) in try change(&s) }
    }

    var options: GatewayOptions { settings.withLock { $0.options } }

    func connect() throws(GatewayError) {
        let client = try gateway.withLock { (current: inout GatewayClient?) throws(GatewayError) -> GatewayClient in
            guard current == nil else { throw GatewayError(.invalidState, "the client is already connected") }
            let made = try GatewayClient(loop: loopObject.loop, options: settings.withLock { $0.options })
            current = made
            return made
        }
        client.delegate = self
        client.start()
    }

    func send(name: String, data: [UInt8]?) throws(GatewayError) {
        guard let client = gateway.withLock({ $0 }) else {
            throw GatewayError(.invalidState, "connect first: ubg_client_connect()")
        }
        try client.send(name: name, data: data)
    }

    func close(code: UInt16) throws(GatewayError) {
        guard let client = gateway.withLock({ $0 }) else {
            throw GatewayError(.invalidState, "the client was never connected")
        }
        client.stop(code: code)
    }

    var statistics: GatewayStatistics {
        gateway.withLock { $0?.statistics } ?? GatewayStatistics()
    }

    /// Ends the client: no event is delivered once this returns (on the loop thread: once the
    /// running callback returns).
    func free() {
        freed.store(true, ordering: .releasing)
        queue.finish()
        // The loop counts this client until the end, so ubg_loop_free() cannot stop the loop
        // while we still wait for it.
        defer { loopObject.clients.subtract(1, ordering: .relaxed) }
        guard let client = gateway.withLock({ $0 }) else { return }
        client.detach()
        let loop = loopObject.loop
        if !loop.isCurrent {
            // Wait until the loop has run the detach, so no callback can start after we return.
            let (wait, signal) = makeWaiter()
            loop.execute { signal() }
            wait()
        }
    }

    // MARK: Loop thread

    func gatewayClient(_ client: GatewayClient, didEmit event: SessionEvent) {
        guard !freed.load(ordering: .acquiring) else { return }
        if case .state(let next) = event { state = next }
        let (callback, userData, level) = settings.withLock { ($0.callback, $0.userData, $0.logLevel) }
        guard let record = EventRecord(event, state: state, logLevel: level) else { return }
        if let callback {
            record.withCEvent { callback(handle, $0, userData) }
            return
        }
        let final: Bool
        if case .state(let s) = event, s == .closed || s == .failed { final = true } else { final = false }
        if queue.push(record, final: final) {
            client.setReadsPaused(true)
        }
    }

    /// The pull API (any one thread at a time).
    func nextEvent(timeoutMilliseconds: Int32, into event: inout ubg_event_t) -> EventQueue.Pop {
        queue.pop(timeoutMilliseconds: timeoutMilliseconds, into: &event) {
            guard let client = gateway.withLock({ $0 }) else { return }
            loopObject.loop.execute { client.setReadsPaused(false) }
        }
    }

    var usesCallback: Bool { settings.withLock { $0.callback != nil } }
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
