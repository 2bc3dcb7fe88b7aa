import Glibc
import Synchronization
import Testing
import UtilbotGateway

/// Records what a GatewaySession reports, for a test thread to wait on.
private final class Recorder: GatewaySessionDelegate, @unchecked Sendable {
    private let events = Mutex<[SessionEvent]>([])
    private let dispatched = Mutex<[(name: String, data: String?)]>([])

    func gatewaySession(_ client: GatewaySession, didDispatch name: String, data: ArraySlice<UInt8>?) {
        dispatched.withLock { $0.append((name, data.map { String(decoding: $0, as: UTF8.self) })) }
    }

    func gatewaySession(_ client: GatewaySession, didEmit event: SessionEvent) {
        events.withLock { $0.append(event) }
    }

    var all: [SessionEvent] { events.withLock { $0 } }

    /// Waits until `predicate` holds for the events so far (10 s at most).
    func wait(_ what: String, _ predicate: ([SessionEvent]) -> Bool) -> Bool {
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while monotonicNanoseconds() < deadline {
            if predicate(all) { return true }
            usleep(10_000)
        }
        Issue.record("timed out waiting for \(what); events: \(all)")
        return false
    }

    func dispatches(named name: String) -> [String] {
        dispatched.withLock { $0.filter { $0.name == name }.compactMap(\.data) }
    }
}

/// Runs `body` on the loop thread and returns its result.
private func onLoop<T: Sendable>(_ loop: EventLoop, _ body: @escaping @Sendable () -> T) -> T {
    let result = Mutex<T?>(nil)
    loop.execute { result.withLock { $0 = body() } }
    while true {
        if let value = result.withLock({ $0 }) { return value }
        usleep(1_000)
    }
}

/// The session driver on a real loop against the dev gateway: states in order, identify,
/// dispatches, sends, the host's close, and back-pressure.
@Suite(.timeLimit(.minutes(1)))
struct GatewaySessionTests {
    private func client(
        _ url: String, recorder: Recorder, closeTimeoutSeconds: UInt64 = 5
    ) throws -> (GatewaySession, EventLoop) {
        let loop = try EventLoop()
        try loop.start()
        var options = GatewayOptions(key: "dev-key")
        options.url = url
        options.webSocket.closeTimeoutNanoseconds = closeTimeoutSeconds * 1_000_000_000
        options.session.backoffBaseNanoseconds = 50_000_000
        options.session.backoffCapNanoseconds = 400_000_000
        let client = try GatewaySession(loop: loop, options: options)
        client.delegate = recorder
        return (client, loop)
    }

    @Test func identifiesSendsAndClosesWithTheStatesInOrder() throws {
        let gateway = DevGateway(["--heartbeat", "200", "--key", "dev-key", "--echo"])
        let recorder = Recorder()
        let (client, loop) = try client(gateway.url, recorder: recorder)
        defer { loop.close() }
        try client.send(name: "early", data: Array(#"{"n":1}"#.utf8))  // waits for ready
        client.start()
        #expect(recorder.wait("READY") { $0.contains(.ready) })
        #expect(recorder.wait("the echo of the early send") { _ in !recorder.dispatches(named: "ECHO").isEmpty })
        #expect(recorder.dispatches(named: "ECHO") == [#"{"t":"early","d":{"n":1}}"#])
        #expect(recorder.wait("a heartbeat ACK") { $0.contains { if case .heartbeatAck = $0 { true } else { false } } })
        client.close()
        #expect(recorder.wait("CLOSED") { $0.contains(.state(.closed)) })
        let states = recorder.all.compactMap { if case .state(let s) = $0 { s } else { nil } }
        #expect(states == [.connecting, .identifying, .ready, .closing, .closed])
        guard
            case .closed(1000, _, false, nil, nil)? = recorder.all.first(where: {
                if case .closed = $0 { true } else { false }
            })
        else {
            Issue.record("expected a clean CLOSED 1000, got \(recorder.all)")
            return
        }
        #expect(throws: GatewayError.self) { try client.send(name: "late", data: nil) }
        #expect(client.statistics.state == .closed)
    }

    /// An ended connection (its frame buffers sized for the largest message it saw) is freed
    /// when it ends, while its socket may still wait for the server's FIN, not at the next close.
    @Test func anEndedConnectionIsFreedWhenItEnds() throws {
        let gateway = DevGateway(["--heartbeat", "200", "--key", "dev-key"])
        let recorder = Recorder()
        // A socket may linger up to a minute: the old way held the connection that long.
        let (client, loop) = try client(gateway.url, recorder: recorder, closeTimeoutSeconds: 60)
        defer { loop.close() }
        client.start()
        #expect(recorder.wait("READY") { $0.contains(.ready) })
        final class WeakConnection: @unchecked Sendable { weak var connection: WebSocketConnection? }
        let watched = WeakConnection()
        onLoop(loop) { watched.connection = client.currentConnection }
        #expect(onLoop(loop) { watched.connection != nil })
        client.close()
        #expect(recorder.wait("CLOSED") { $0.contains(.state(.closed)) })
        #expect(recorder.wait("the ended connection to be freed") { _ in onLoop(loop) { watched.connection == nil } })
        client.free()
    }

    @Test func pausedReadsHoldTheFloodAndResumingDeliversItInOrder() throws {
        let gateway = DevGateway(["--heartbeat", "200", "--key", "dev-key"])
        let recorder = Recorder()
        let (client, loop) = try client(gateway.url + "?v=1&fault_flood=500", recorder: recorder)
        defer { loop.close() }
        client.start()
        #expect(recorder.wait("READY") { $0.contains(.ready) })
        let paused = Mutex(false)
        loop.execute {
            client.setReadsPaused(true)
            paused.withLock { $0 = true }
        }
        #expect(recorder.wait("the pause") { _ in paused.withLock { $0 } })
        let held = recorder.dispatches(named: "FLOOD").count
        usleep(500_000)
        #expect(recorder.dispatches(named: "FLOOD").count == held)  // nothing more while paused
        loop.execute { client.setReadsPaused(false) }
        #expect(recorder.wait("the whole flood") { _ in recorder.dispatches(named: "FLOOD").count == 500 })
        #expect(recorder.dispatches(named: "FLOOD") == (0..<500).map { #"{"seq":\#($0)}"# })
        #expect(!recorder.all.contains { if case .closed = $0 { true } else { false } })
        client.free()
    }
}
