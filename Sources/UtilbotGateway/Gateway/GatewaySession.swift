/// Everything a gateway session is configured with.
package struct GatewayOptions: Sendable, Equatable {
    package var url = GatewayURL.defaultURL
    package var compression = false
    package var session: SessionConfiguration
    package var webSocket = WebSocketOptions()
    /// Bytes allowed in the socket's send buffer before `send` answers "queue full".
    package var maxPendingWriteBytes = 4 << 20

    package init(key: String) { session = SessionConfiguration(key: key) }
}

/// Counters a host can read from any thread.
package struct GatewayStatistics: Sendable, Equatable {
    package var state: ClientState = .idle
    package var messagesIn: UInt64 = 0
    package var messagesOut: UInt64 = 0
    package var bytesIn: UInt64 = 0
    package var bytesOut: UInt64 = 0
    package var reconnects: UInt64 = 0
    /// Events of the host's that could not be delivered (each also reported as a local error).
    package var sendsFailed: UInt64 = 0
    package var lastLatencyNanoseconds: UInt64?
    package var averageLatencyNanoseconds: UInt64?
    package init() {}
}

/// Where a session's events go: op 0 events to one method, everything else to the other, in
/// the order they happened. Both run on the loop thread, never while the client holds a lock.
package protocol GatewaySessionDelegate: AnyObject {
    /// An op 0 event, the usual message, as its parts: nothing is built per event (a
    /// `SessionEvent` made and taken apart again costs about 4% of a small event).
    func gatewaySession(_ session: GatewaySession, didDispatch name: String, data: ArraySlice<UInt8>?)
    func gatewaySession(_ session: GatewaySession, didEmit event: SessionEvent)
}

/// A gateway session on an event loop: it runs the `SessionStateMachine`, one
/// `WebSocketConnection` and one `PayloadDecoder` per connection attempt, and the session's timer.
///
/// `start`, `send`, `stop` and `statistics` may be called from any thread; everything else
/// happens on the loop thread, where the delegate is called.
package final class GatewaySession: @unchecked Sendable {
    package weak var delegate: GatewaySessionDelegate?
    package let loop: EventLoop
    package let options: GatewayOptions
    package let url: GatewayURL

    private struct Shared {
        var statistics = GatewayStatistics()
        /// Sends accepted and posted to the loop, not yet handed to the socket or the queue.
        var inFlight = 0
        var inFlightBytes = 0
        var pendingWriteBytes = 0
        /// The session's queue of sends waiting for ready, as of the last loop turn.
        var queuedSends = 0
        var queuedSendBytes = 0
    }

    private let shared = Locked(Shared())
    private let tlsContext: TLSContext?
    // Loop-thread state.
    private var machine: SessionStateMachine
    private var webSocket: WebSocketConnection?
    private var payloads: PayloadDecoder?
    private var timer: EventLoop.TimerID?
    private var timerDeadline: UInt64?
    private var freed = false
    /// The state as of the last event handed to the delegate, which events without a state of
    /// their own are stamped with (the machine may be further on while its actions are carried
    /// out). Published to other threads in `statistics`.
    package private(set) var reportedState: ClientState = .idle
    /// Events written to the current connection since its send buffer was last empty: if the
    /// connection ends now, they may not have left this process, and the host is told.
    private var unconfirmedSends = 0
    /// Sockets of ended connections still waiting for the server's FIN (at most the close
    /// timeout): freeing the client closes them at once. Held weakly, as the loop holds a socket
    /// until it closes; the ended connection itself, with its buffers, is let go when it ends.
    private var lingering: [LingeringSocket] = []
    private struct LingeringSocket {
        weak var stream: SocketStream?
    }
    /// Sends the loop has taken over since `updateShared` last released them from `inFlight`.
    private var settledSends = 0
    private var settledSendBytes = 0
    /// The current connection's byte count as of the last timer: bytes of a message still
    /// arriving are a sign of life.
    private var bytesSeen: UInt64 = 0
    /// Reused for every received message, so the hot path allocates no array of actions.
    private var spareActions: [SessionStateMachine.Action] = []
    /// Counted on the loop, published with the rest in `updateShared` (one lock per message).
    private var unpublishedMessagesIn: UInt64 = 0
    private var unpublishedBytesIn: UInt64 = 0

    package init(loop: EventLoop, options: GatewayOptions) throws(GatewayError) {
        guard !options.session.key.isEmpty else { throw GatewayError(.invalidArgument, "the key is empty") }
        self.loop = loop
        self.options = options
        self.url = try GatewayURL(options.url, compression: options.compression)
        self.tlsContext = url.webSocketURL.secure ? try TLSContext.shared(options.webSocket.tls) : nil
        let seed = SecureRandom.bytes(count: 8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        self.machine = SessionStateMachine(configuration: options.session, seed: seed)
    }

    // MARK: Any thread

    package func start() {
        loop.execute { self.drive { $0.start(now: self.loop.now, into: &$1) } }
    }

    /// Validates now and sends on the loop: at once when ready, else after identify. Bad input
    /// and a full queue (the socket's buffer when ready, the queue for ready otherwise, each in
    /// messages and bytes, counting the sends still on their way to the loop) fail here, in the
    /// caller's thread.
    package func send(name: String, data: [UInt8]?) throws(GatewayError) {
        let payload = try SessionStateMachine.payload(name: name, data: data)
        let size = payload.count
        let limits = options.session
        try shared.withLock { (s: inout Shared) throws(GatewayError) in
            if let refusal = SessionStateMachine.sendRefusal(in: s.statistics.state) { throw refusal }
            if s.statistics.state == .ready {
                if s.pendingWriteBytes + s.inFlightBytes > options.maxPendingWriteBytes {
                    throw GatewayError(
                        .queueFull,
                        "send buffer full: \(s.pendingWriteBytes + s.inFlightBytes) bytes wait for the network")
                }
            } else {
                let refusal = SendQueue.refusal(
                    count: s.queuedSends + s.inFlight, bytes: s.queuedSendBytes + s.inFlightBytes, adding: size,
                    maxMessages: limits.maxQueuedMessages, maxBytes: limits.maxQueuedBytes)
                if let refusal { throw refusal }
            }
            if s.inFlight >= limits.maxQueuedMessages {
                throw GatewayError(.queueFull, "send queue full: \(s.inFlight) sends wait for the loop")
            }
            s.inFlight += 1
            s.inFlightBytes += size
        }
        loop.execute {
            self.settledSends += 1
            self.settledSendBytes += size
            guard !self.freed else {
                self.updateShared()
                return
            }
            var actions: [SessionStateMachine.Action] = []
            do throws(GatewayError) {
                try self.machine.send(payload: payload, into: &actions)
            } catch {
                actions = [.emit(.sendsDropped(count: 1, reason: error.message))]
            }
            self.perform(actions)
        }
    }

    /// Closes for good with `code`; events go on until the `closed` state is reported.
    package func close(code: UInt16 = CloseCode.normal, reason: String = "") {
        loop.execute { self.drive { $0.close(code: code, reason: reason, into: &$1) } }
    }

    /// Stops at once without reporting anything more (the host is freeing the client).
    package func free() {
        loop.execute {
            self.freed = true
            self.delegate = nil
            self.loop.cancel(self.timer)
            self.timer = nil
            self.webSocket?.delegate = nil
            self.webSocket?.free()
            self.webSocket = nil
            for socket in self.lingering { socket.stream?.abort() }
            self.lingering.removeAll()
        }
    }

    package var statistics: GatewayStatistics { shared.withLock { $0.statistics } }

    /// The current connection (loop thread only); tests watch it being let go when it ends.
    package var currentConnection: WebSocketConnection? { webSocket }

    /// Back-pressure from the host (loop thread): stop reading from the gateway while its
    /// events are not consumed. Heartbeats go on; unread ACKs do not count as a zombie.
    package func setReadsPaused(_ paused: Bool) {
        guard machine.readsPaused != paused, !freed else { return }
        machine.setReadsPaused(paused, now: loop.now)
        applyReadPause()
        rescheduleTimer()
    }

    /// In every state: the session's Hello and ready deadlines wait while reads are paused, so a
    /// host's backlog never turns into a reconnect loop.
    private func applyReadPause() {
        if machine.readsPaused {
            webSocket?.pauseReading()
        } else {
            webSocket?.resumeReading()
        }
    }

    // MARK: Loop thread

    /// Gives the machine one input and carries out what it asks for. Each input gets its own
    /// array: carrying out an action (a connect that fails at once) may feed the next input.
    private func drive(_ input: (inout SessionStateMachine, inout [SessionStateMachine.Action]) -> Void) {
        var actions: [SessionStateMachine.Action] = []
        input(&machine, &actions)
        perform(actions)
    }

    private func perform(_ actions: [SessionStateMachine.Action]) {
        for action in actions {
            if freed { return }
            switch action {
            case .connect:
                connect()
            case .send(let bytes):
                if webSocket?.send(text: bytes) == true { countSent(bytes) }
            case .sendEvent(let bytes):
                if webSocket?.send(text: bytes) == true {
                    countSent(bytes)
                    unconfirmedSends = (webSocket?.pendingWriteCount ?? 0) > 0 ? unconfirmedSends + 1 : 0
                } else {
                    reportUndelivered(1, "the connection was closing")
                }
            case .close(let code, let reason):
                webSocket?.close(code: code, reason: reason)
            case .drop(let code, let reason):
                if let webSocket { webSocket.abort(code: code, reason: reason) }
            case .emit(.sendsDropped(let count, let reason)):
                reportUndelivered(count, reason)
            case .emit(let event):
                emit(event)
            }
        }
        applyReadPause()
        updateShared()
        rescheduleTimer()
    }

    private func countSent(_ bytes: [UInt8]) {
        shared.withLock {
            $0.statistics.messagesOut += 1
            $0.statistics.bytesOut += UInt64(bytes.count)
        }
    }

    private func reportUndelivered(_ count: Int, _ why: String) {
        guard count > 0 else { return }
        shared.withLock { $0.statistics.sendsFailed += UInt64(count) }
        emit(.localError(GatewayError(.closed, "\(count) event(s) sent by the host were not delivered: \(why)")))
    }

    private func emit(_ event: SessionEvent) {
        if case .state(let state) = event {
            // With the state, the attempt count: the host may read the statistics the moment it
            // sees a new attempt begin, before this turn of the loop ends.
            reportedState = state
            let reconnects = machine.reconnects
            shared.withLock {
                $0.statistics.state = state
                $0.statistics.reconnects = reconnects
            }
        }
        delegate?.gatewaySession(self, didEmit: event)
    }

    private func connect() {
        webSocket?.delegate = nil
        do {
            payloads = try PayloadDecoder(compressed: url.compression, maxMessageSize: options.webSocket.maxMessageSize)
        } catch {
            emit(.localError(error))  // zlib could not start (no memory): messages are taken as they come
            payloads = try? PayloadDecoder(compressed: false, maxMessageSize: options.webSocket.maxMessageSize)
        }
        let webSocket = WebSocketConnection(
            loop: loop, url: url.webSocketURL, options: options.webSocket, tlsContext: tlsContext)
        webSocket.delegate = self
        self.webSocket = webSocket
        bytesSeen = 0
        emit(.log(.info, "connecting to \(url.webSocketURL)"))
        if tlsContext?.configuration.insecureSkipVerify == true {
            emit(.log(.warning, "TLS certificate verification is OFF (insecure); use only for local development"))
        }
        webSocket.connect()
    }

    private func updateShared() {
        let pending = webSocket?.pendingWriteCount ?? 0
        let latency = machine.latency
        let reconnects = machine.reconnects
        let messagesIn = unpublishedMessagesIn
        let bytesIn = unpublishedBytesIn
        let settled = settledSends
        let settledBytes = settledSendBytes
        let queued = machine.queuedSendCount
        let queuedBytes = machine.queuedSendBytes
        unpublishedMessagesIn = 0
        unpublishedBytesIn = 0
        settledSends = 0
        settledSendBytes = 0
        // Sends leave `inFlight` in the same step as they join the queue or the socket's
        // buffer: a concurrent `send` never sees them in neither.
        shared.withLock {
            $0.statistics.messagesIn += messagesIn
            $0.statistics.bytesIn += bytesIn
            $0.inFlight -= settled
            $0.inFlightBytes -= settledBytes
            $0.queuedSends = queued
            $0.queuedSendBytes = queuedBytes
            $0.pendingWriteBytes = pending
            $0.statistics.reconnects = reconnects
            $0.statistics.lastLatencyNanoseconds = latency.lastNanoseconds
            $0.statistics.averageLatencyNanoseconds = latency.averageNanoseconds
        }
    }

    private func rescheduleTimer() {
        let deadline = machine.deadlineInPlace()
        guard deadline != timerDeadline else { return }
        loop.cancel(timer)
        timer = nil
        timerDeadline = deadline
        guard let deadline else { return }
        timer = loop.schedule(notAfter: deadline) { [weak self] in
            guard let self, !self.freed else { return }
            self.timer = nil
            self.timerDeadline = nil
            self.noticeBytesArrived()
            self.drive { $0.tick(now: self.loop.now, dueBy: deadline, into: &$1) }
        }
    }

    /// Bytes of a message still arriving (a large message trickling in) prove the gateway alive
    /// as a whole message would; counted per read, looked at only when a timer fires. So do
    /// bytes that arrived but wait unread: on a busy host (a slow machine, floods on other
    /// connections) the loop may not have read this socket since the last beat, and the ACK it
    /// holds must not turn into a false zombie.
    private func noticeBytesArrived() {
        guard let webSocket else { return }
        let received = webSocket.bytesReceived
        if received != bytesSeen {
            bytesSeen = received
            machine.bytesReceived(now: loop.now)
        } else if webSocket.hasUnreadBytes {
            machine.bytesReceived(now: loop.now)
        }
    }
}

extension GatewaySession: WebSocketConnectionDelegate {
    package func webSocketDidOpen(_ connection: WebSocketConnection) {
        guard connection === webSocket else { return }
        drive { $0.connectionOpened(now: loop.now, into: &$1) }
    }

    package func webSocket(_ connection: WebSocketConnection, didReceive event: WebSocketStateMachine.Event) {
        guard connection === webSocket, let payloads else { return }
        switch event {
        case .text(let bytes), .binary(let bytes): count(bytes.count)
        case .ping, .pong, .closed: return
        }
        do throws(GatewayError) {
            if let payload = try payloads.payload(of: event) { receive(payload) }
        } catch {
            drive { $0.connectionBroken(error, closeCode: PayloadDecoder.closeCode(for: error), into: &$1) }
        }
    }

    private func receive(_ message: ArraySlice<UInt8>) {
        var actions = spareActions
        spareActions = []
        if let dispatch = machine.received(message, now: loop.phaseStart, into: &actions) {
            if actions.isEmpty {
                // A plain event, the usual message: nothing for the session to do (no send, no
                // timer, no state), so it goes straight to the host.
                if !freed { delegate?.gatewaySession(self, didDispatch: dispatch.name, data: dispatch.data) }
                updateShared()
            } else {
                // bot_connect_success: the state and READY come first.
                perform(actions)
                if !freed { delegate?.gatewaySession(self, didDispatch: dispatch.name, data: dispatch.data) }
            }
        } else {
            perform(actions)
        }
        // Kept for the next message, unless a rare burst (Hello, a flush of queued sends) grew it.
        actions.removeAll(keepingCapacity: actions.capacity <= 8)
        spareActions = actions
    }

    private func count(_ wireBytes: Int) {
        unpublishedMessagesIn += 1
        unpublishedBytesIn += UInt64(wireBytes)
    }

    package func webSocketDidDrain(_ connection: WebSocketConnection) {
        guard connection === webSocket else { return }
        unconfirmedSends = 0
        updateShared()
    }

    package func webSocket(_ connection: WebSocketConnection, didCloseWith info: WebSocketCloseInfo) {
        guard connection === webSocket else { return }
        webSocket = nil
        lingering.removeAll { $0.stream.map { $0.stage == .closed } ?? true }
        if let stream = connection.lingeringStream { lingering.append(LingeringSocket(stream: stream)) }
        payloads = nil
        let unconfirmed = unconfirmedSends
        unconfirmedSends = 0
        reportUndelivered(unconfirmed, "the connection ended before they were written")
        drive { $0.connectionClosed(info, now: loop.now, into: &$1) }
    }
}
