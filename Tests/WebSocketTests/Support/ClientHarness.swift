import UtilbotGateway

/// What a test sees of a WebSocketConnection: its delegate calls, in order.
enum ClientEvent: Equatable, Sendable {
    case open
    case received(WebSocketStateMachine.Event)
    case closed(WebSocketCloseInfo)
}

struct HarnessTimeout: Error, CustomStringConvertible {
    let waitingFor: String
    var description: String { "timed out waiting for \(waitingFor)" }
}

/// Runs one WebSocketConnection on its own event loop and records what it reports.
final class ClientHarness: WebSocketConnectionDelegate, @unchecked Sendable {
    let loop: EventLoop
    let client: WebSocketConnection
    let events = BlockingQueue<ClientEvent>()

    init(url: String, options: WebSocketOptions = WebSocketOptions()) throws {
        loop = try EventLoop()
        try loop.start()
        let parsed = try WebSocketURL(parsing: url)
        let context = parsed.secure ? try TLSContext(options.tls) : nil
        client = WebSocketConnection(loop: loop, url: parsed, options: options, tlsContext: context)
        client.delegate = self
    }

    deinit {
        loop.close()
    }

    /// Runs `body` on the loop thread and waits for it.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (WebSocketConnection) -> T) -> T {
        let result = BlockingQueue<T>()
        let client = self.client
        loop.execute { result.push(body(client)) }
        return result.pop(timeout: 10)!
    }

    func connect() { onLoop { $0.connect() } }

    func sendText(_ text: String) -> Bool { onLoop { $0.send(text: Array(text.utf8)) } }
    func sendBinary(_ bytes: [UInt8]) -> Bool { onLoop { $0.send(binary: bytes) } }
    func close(code: UInt16 = 1000, reason: String = "") { onLoop { $0.close(code: code, reason: reason) } }

    func next(timeout: Double = 10, _ what: String = "an event") throws -> ClientEvent {
        guard let event = events.pop(timeout: timeout) else { throw HarnessTimeout(waitingFor: what) }
        return event
    }

    func expectOpen() throws {
        let event = try next(timeout: 10, "open")
        guard event == .open else { throw PeerError(message: "expected open, got \(event)") }
    }

    func nextClose(timeout: Double = 10) throws -> WebSocketCloseInfo {
        while true {
            if case .closed(let info) = try next(timeout: timeout, "close") { return info }
        }
    }

    func nextMessage(timeout: Double = 10) throws -> WebSocketStateMachine.Event {
        let event = try next(timeout: timeout, "a message")
        guard case .received(let message) = event else { throw PeerError(message: "expected a message, got \(event)") }
        return message
    }

    func webSocketDidOpen(_ client: WebSocketConnection) { events.push(.open) }
    func webSocket(_ client: WebSocketConnection, didReceive event: WebSocketStateMachine.Event) {
        events.push(.received(event))
    }
    func webSocket(_ client: WebSocketConnection, didCloseWith info: WebSocketCloseInfo) { events.push(.closed(info)) }
    func webSocketDidDrain(_ client: WebSocketConnection) {}
}
