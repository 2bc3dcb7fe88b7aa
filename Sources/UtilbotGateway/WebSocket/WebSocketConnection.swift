package protocol WebSocketConnectionDelegate: AnyObject {
    func webSocketDidOpen(_ client: WebSocketConnection)
    /// A text or binary message, or a ping or pong (pings are answered already).
    func webSocket(_ client: WebSocketConnection, didReceive event: WebSocketStateMachine.Event)
    /// Every byte written so far is now with the kernel (after some had to wait for the socket).
    func webSocketDidDrain(_ client: WebSocketConnection)
    /// Called exactly once per `connect()`, however the connection or the attempt ended.
    func webSocket(_ client: WebSocketConnection, didCloseWith info: WebSocketCloseInfo)
}

/// An RFC 6455 client on an event loop: it drives a `SocketStream` through the opening handshake
/// and then a `WebSocketStateMachine`, and owns the timers (open and close timeouts).
///
/// Confined to its loop's thread: create it anywhere, call everything else on the loop.
package final class WebSocketConnection: @unchecked Sendable {
    package enum State: Equatable, Sendable {
        case idle, connecting, handshaking, open, closing, closed
    }

    package weak var delegate: WebSocketConnectionDelegate?
    package let loop: EventLoop
    package let url: WebSocketURL
    package let options: WebSocketOptions
    package private(set) var state: State = .idle

    private let tlsContext: TLSContext?
    private var stream: SocketStream?
    private var handshake: Handshake
    private var protocolState: WebSocketStateMachine
    private var openTimer: EventLoop.TimerID?
    private var closeTimer: EventLoop.TimerID?
    private var closeReported = false
    /// The connection after the close was reported: it may linger a moment for the server's
    /// FIN (RFC 6455 §7.1.1) or for its last bytes to leave; `free()` cuts that short.
    private weak var retiredStream: SocketStream?
    private var readingPaused = false
    /// Messages decoded from bytes already read, held while reading is paused: the pause takes
    /// effect between two messages, not only between two reads.
    private var held: [WebSocketStateMachine.Event] = []

    /// `tlsContext` is required for wss URLs; contexts may be shared between clients.
    package init(loop: EventLoop, url: WebSocketURL, options: WebSocketOptions, tlsContext: TLSContext?) {
        self.loop = loop
        self.url = url
        self.options = options
        self.tlsContext = tlsContext
        self.handshake = Handshake(url: url, maxHeaderSize: options.maxHandshakeHeaderSize)
        self.protocolState = WebSocketStateMachine(maxMessageSize: options.maxMessageSize)
    }

    package func connect() {
        precondition(state == .idle, "a WebSocketConnection connects once")
        if url.secure && tlsContext == nil {
            state = .closed
            reportClose(
                code: CloseCode.abnormal, error: GatewayError(.invalidArgument, "a wss URL needs a TLS context"))
            return
        }
        var proxy = options.proxy
        var proxyTLS: TLSContext?
        do throws(GatewayError) {
            if proxy == nil && options.proxyFromEnvironment {
                proxy = try ProxyEnvironment.proxy(host: url.host, secure: url.secure)
            }
            // An https proxy is verified with the client's CA settings, always: skipping the
            // check is for a development gateway, never for the proxy that gets credentials.
            if proxy?.kind == .https {
                var configuration = options.tls
                configuration.insecureSkipVerify = false
                proxyTLS = try TLSContext.shared(configuration)
            }
        } catch {
            state = .closed
            reportClose(code: CloseCode.abnormal, error: error)
            return
        }
        state = .connecting
        let stream = SocketStream(
            loop: loop, host: url.host, port: url.port, tls: url.secure ? tlsContext : nil, proxy: proxy,
            proxyTLS: proxyTLS, attemptTimeoutNanoseconds: options.connectAttemptTimeoutNanoseconds)
        stream.delegate = self
        self.stream = stream
        openTimer = loop.schedule(afterNanoseconds: options.openTimeoutNanoseconds) { [weak self] in
            self?.openTimedOut()
        }
        stream.start()
    }

    /// The negotiated TLS version, once TLS is up.
    package var tlsVersion: String? { stream?.tlsVersion }

    /// Bytes waiting for the socket: the measure of back-pressure.
    package var pendingWriteCount: Int { stream?.pendingWriteCount ?? 0 }

    /// Bytes read from the socket on this connection so far, also of messages not yet complete.
    package var bytesReceived: UInt64 { stream?.bytesRead ?? 0 }
    /// Bytes wait in the socket that the loop has not read yet.
    package var hasUnreadBytes: Bool { stream?.hasUnreadBytes ?? false }

    @discardableResult
    package func send(text: UnsafeRawBufferPointer) -> Bool {
        guard state == .open, protocolState.send(text: text) else { return false }
        return flush()
    }

    @discardableResult
    package func send(binary: UnsafeRawBufferPointer) -> Bool {
        guard state == .open, protocolState.send(binary: binary) else { return false }
        return flush()
    }

    @discardableResult
    package func send(text: [UInt8]) -> Bool { text.withUnsafeBytes { send(text: $0) } }

    @discardableResult
    package func send(binary: [UInt8]) -> Bool { binary.withUnsafeBytes { send(binary: $0) } }

    @discardableResult
    package func sendPing(_ payload: [UInt8] = []) -> Bool {
        guard state == .open, protocolState.sendPing(payload) else { return false }
        flush()
        return true
    }

    /// Starts the closing handshake (open), or abandons the attempt (before open). The delegate
    /// hears `didCloseWith` when it is over.
    package func close(code: UInt16 = CloseCode.normal, reason: String = "") {
        switch state {
        case .idle:
            state = .closed
        case .connecting, .handshaking:
            stream?.abort()
            reportClose(
                code: CloseCode.abnormal,
                error: GatewayError(.closed, "closed by the client before the connection opened"))
        case .open:
            protocolState.close(code: code, reason: reason)
            state = .closing
            flush()
            closeTimer = loop.schedule(afterNanoseconds: options.closeTimeoutNanoseconds) {
                [weak self] in
                guard let self, self.state == .closing else { return }
                self.stream?.abort()
                self.reportClose(
                    code: CloseCode.abnormal,
                    error: GatewayError(
                        .timeout,
                        "the server did not answer our close frame within \(self.options.closeTimeoutNanoseconds / 1_000_000) ms"
                    ))
            }
        case .closing, .closed:
            break
        }
    }

    /// Ends the connection now: a close frame with `code` if the connection is open (not waiting
    /// for the answer), then the socket is closed. For a peer that stopped answering. The
    /// delegate hears `didCloseWith` with `code` (1006 before the connection opened).
    package func abort(code: UInt16 = CloseCode.goingAway, reason: String = "") {
        switch state {
        case .idle:
            state = .closed
        case .connecting, .handshaking:
            stream?.abort()
            reportClose(code: CloseCode.abnormal, error: nil)
        case .open, .closing:
            if state == .open {
                protocolState.close(code: code, reason: reason)
                flush()
            }
            stream?.close()
            reportClose(code: code, error: nil)
        case .closed:
            break
        }
    }

    /// The socket, if it is still open after the close was reported (waiting for the server to
    /// close first).
    package var lingeringStream: SocketStream? { retiredStream.flatMap { $0.stage != .closed ? $0 : nil } }

    /// Closes the socket now, also one that lingers after the close was reported.
    package func free() {
        abort()
        retiredStream?.abort()
        stream?.abort()
    }

    /// Back-pressure: stop (and resume) reading from the server, from the next message on. The
    /// opening handshake is read regardless (its timeout runs on its own).
    package func pauseReading() {
        guard !readingPaused else { return }
        readingPaused = true
        if state == .open || state == .closing { stream?.pauseReading() }
    }

    package func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        if !held.isEmpty {
            let events = held
            held = []
            deliver(events[...])
        }
        if !readingPaused, state == .open || state == .closing { stream?.resumeReading() }
    }

    // MARK: Internals

    /// Hands the protocol's output to the connection; false when the connection failed doing so
    /// (it reports why from a task of its own).
    @discardableResult
    private func flush() -> Bool {
        guard let stream else { return false }
        guard !protocolState.output.isEmpty else { return true }
        stream.write(protocolState.output)
        protocolState.output.removeAll(keepingCapacity: protocolState.output.capacity <= 1 << 16)
        return stream.stage == .open && !stream.isBroken
    }

    private func openTimedOut() {
        guard state == .connecting || state == .handshaking else { return }
        let stage =
            state == .handshaking ? "waiting for the upgrade answer" : (stream?.stage.rawValue ?? "connecting")
        stream?.abort()
        reportClose(
            code: CloseCode.abnormal,
            error: GatewayError(
                .timeout, "timed out after \(options.openTimeoutNanoseconds / 1_000_000) ms while \(stage) (\(url))"))
    }

    private func handle(_ bytes: UnsafeRawBufferPointer) {
        let events = protocolState.receive(bytes)
        flush()  // pongs, the answer to a close frame
        deliver(events[...])
        protocolState.releaseConsumedInput()
    }

    /// Hands messages to the delegate in order until one pauses reading; the rest are held.
    private func deliver(_ events: ArraySlice<WebSocketStateMachine.Event>) {
        for index in events.indices {
            if readingPaused {
                held.append(contentsOf: events[index...])
                return
            }
            switch events[index] {
            case .closed(let code, let reason, let error):
                let byServer = state == .open && error == nil
                stream?.close(lingeringNanoseconds: options.closeTimeoutNanoseconds)
                reportClose(code: code, reason: reason, closedByServer: byServer, error: error)
                return
            default:
                delegate?.webSocket(self, didReceive: events[index])
                if state != .open && state != .closing { return }
            }
        }
    }

    private func reportClose(
        code: UInt16, reason: String = "", closedByServer: Bool = false, error: GatewayError?, httpStatus: Int? = nil
    ) {
        guard !closeReported else { return }
        closeReported = true
        state = .closed
        loop.cancel(openTimer)
        loop.cancel(closeTimer)
        openTimer = nil
        closeTimer = nil
        held = []
        stream?.delegate = nil
        retiredStream = stream
        stream = nil
        protocolState.abort()
        delegate?.webSocket(
            self,
            didCloseWith: WebSocketCloseInfo(
                code: code, reason: reason, closedByServer: closedByServer, error: error, httpStatus: httpStatus))
    }
}

extension WebSocketConnection: SocketStreamDelegate {
    package func streamDidOpen(_ stream: SocketStream) {
        state = .handshaking
        stream.write(handshake.request(userAgent: options.userAgent))
    }

    package func stream(_ stream: SocketStream, didRead bytes: UnsafeRawBufferPointer) {
        switch state {
        case .handshaking:
            let leftover: [UInt8]?
            do {
                leftover = try handshake.receive(bytes)
            } catch {
                stream.abort()
                reportClose(
                    code: CloseCode.abnormal, error: error, httpStatus: handshake.status == 101 ? nil : handshake.status
                )
                return
            }
            guard let leftover else { return }
            state = .open
            loop.cancel(openTimer)
            openTimer = nil
            if readingPaused { stream.pauseReading() }
            delegate?.webSocketDidOpen(self)
            if !leftover.isEmpty, state == .open { leftover.withUnsafeBytes { handle($0) } }
        case .open, .closing:
            handle(bytes)
        default:
            break
        }
    }

    package func streamDidDrain(_ stream: SocketStream) {
        guard state == .open || state == .closing else { return }
        delegate?.webSocketDidDrain(self)
    }

    package func stream(_ stream: SocketStream, didCloseWith error: GatewayError?) {
        let reported: GatewayError
        switch state {
        case .connecting:
            reported = error ?? GatewayError(.connect, "the connection ended before it opened")
        case .handshaking:
            reported =
                error ?? GatewayError(.handshake, "the server closed the connection before answering the upgrade")
        case .open, .closing:
            // RFC 6455 §7.1.5: no close frame means 1006; the server broke the closing handshake.
            reported =
                error ?? GatewayError(.protocolViolation, "the server closed the connection without a close frame")
        case .idle, .closed:
            return
        }
        reportClose(code: CloseCode.abnormal, error: reported)
    }
}
