import CSystem
import Glibc

package protocol SocketStreamDelegate: AnyObject {
    /// TCP is connected and, for TLS, the handshake and verification succeeded.
    func streamDidOpen(_ stream: SocketStream)
    /// Bytes from the peer (decrypted for TLS), valid only during the call.
    func stream(_ stream: SocketStream, didRead bytes: UnsafeRawBufferPointer)
    /// Everything written so far has been handed to the kernel (after some of it had to wait).
    func streamDidDrain(_ stream: SocketStream)
    /// The stream ended by itself: `nil` for an orderly end, else why it failed. Called at most
    /// once, and never after the owner called `close` or `abort`.
    func stream(_ stream: SocketStream, didCloseWith error: GatewayError?)
}

/// A byte stream over a non-blocking TCP socket, optionally with TLS, driven by an `EventLoop`:
/// a `Connector` opens the socket, then the stream runs the TLS handshake, buffers what the
/// socket does not take yet, pauses reading for back-pressure and lingers on close.
/// Confined to its loop's thread after creation.
package final class SocketStream: @unchecked Sendable {
    package enum Stage: String, Sendable {
        case idle = "idle"
        case resolving = "resolving the host name"
        case connecting = "connecting"
        case proxyHandshake = "opening the tunnel through the proxy"
        case tlsHandshake = "doing the TLS handshake"
        case open = "open"
        case closed = "closed"
    }

    package weak var delegate: SocketStreamDelegate?
    package private(set) var stage: Stage = .idle
    package let loop: EventLoop
    package let host: String
    package let port: UInt16
    /// The address of the open socket.
    package private(set) var remoteAddress: SocketAddress?

    private let tlsContext: TLSContext?
    /// The proxy the socket connects to; the gateway is reached through its tunnel.
    private let proxy: ProxyURL?
    private var proxyHandshake: ProxyHandshake?
    /// An https proxy: the TLS session with the proxy itself, which everything else runs inside.
    private let proxyTLSContext: TLSContext?
    private var proxyTLS: TLSSession?
    /// Bytes on their way into `proxyTLS` (reused).
    private var tunnelScratch = CompactingQueue<UInt8>(keptCapacity: 1 << 16, compactionThreshold: 1 << 16)
    /// socks5: this client's lookup of the gateway's name, under way.
    private var targetLookup: LookupPool.Job?
    /// socks5: the lookup above is under way (a numeric host has no job, only a task).
    private var resolvingTarget = false
    /// https proxy: its close_notify came while reading was paused; the end waits for the resume.
    private var tunnelEnded = false
    private let attemptTimeoutNanoseconds: UInt64
    /// Until the socket is connected.
    private var connector: Connector?
    private var fd: Int32 = -1
    private var registration: EventLoop.Registration?
    private var interest: UInt32 = 0
    /// Ends a close that waits too long for its last bytes to leave or for the peer.
    private var closeTimer: EventLoop.TimerID?
    private var tls: TLSSession?
    private var outgoing = CompactingQueue<UInt8>(keptCapacity: 1 << 16, compactionThreshold: 1 << 16)
    private var closeWhenFlushed = false
    private var lingerNanoseconds: UInt64 = 0
    private var lingering = false
    private var readingPaused = false
    /// A failure (a reset, a broken pipe) that came while reading was paused. The peer may have
    /// sent its last words (a close frame with a fatal code) before it went: they are read and
    /// delivered, in order, once reading resumes, and the failure is reported after them.
    private var deferredError: GatewayError?
    /// Whether the descriptor is out of epoll: a hang-up is level-triggered and reported whatever
    /// the interest, so a paused connection whose peer went stops being watched until it resumes.
    private var unwatched = false
    package private(set) var bytesRead: UInt64 = 0

    /// Whether bytes from the peer wait in the socket, not yet read (the loop was busy
    /// elsewhere). One non-blocking peek; nothing is taken.
    package var hasUnreadBytes: Bool {
        guard stage == .open else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) > 0
    }
    /// Inside `write()`: a failure is then reported from a task of its own, never from within
    /// the owner's call (which would see its own state change under it).
    private var writing = false

    package init(
        loop: EventLoop, host: String, port: UInt16, tls: TLSContext?, proxy: ProxyURL? = nil,
        proxyTLS: TLSContext? = nil, attemptTimeoutNanoseconds: UInt64
    ) {
        self.proxyTLSContext = proxyTLS
        self.loop = loop
        self.host = host
        self.port = port
        self.tlsContext = tls
        self.proxy = proxy
        self.attemptTimeoutNanoseconds = attemptTimeoutNanoseconds
    }

    deinit {
        connector?.abort()
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Bytes queued but not yet accepted by the kernel.
    package var pendingWriteCount: Int { outgoing.count }

    /// The connection failed while reading was paused; it only waits to deliver what it read.
    package var isBroken: Bool { deferredError != nil }

    package var tlsVersion: String? { tls?.protocolVersion }

    package func start() {
        precondition(stage == .idle)
        stage = .resolving
        let connector = Connector(
            loop: loop, host: proxy?.host ?? host, port: proxy?.port ?? port,
            attemptTimeoutNanoseconds: attemptTimeoutNanoseconds
        ) { [weak self] outcome in
            guard let self else {
                if case .connected(let fd, _) = outcome { Glibc.close(fd) }
                return
            }
            switch outcome {
            case .resolved:
                self.stage = .connecting
            case .connected(let fd, let address):
                self.connector = nil
                self.connected(fd: fd, address: address)
            case .failed(let error):
                self.connector = nil
                self.failed(with: error)
            }
        }
        self.connector = connector
        connector.start()
    }

    /// Queues bytes and sends what the socket takes now.
    package func write(_ bytes: UnsafeRawBufferPointer) {
        guard stage == .open, !closeWhenFlushed, deferredError == nil else { return }
        writing = true
        defer { writing = false }
        if let tls {
            do {
                try tls.write(bytes)
            } catch {
                failed(with: error)
                return
            }
            guard sendThroughTunnel({ tls.takeCiphertext(into: &$0) }) else { return }
        } else {
            guard sendThroughTunnel({ $0.append(bytes) }) else { return }
        }
        flush()
    }

    /// Queues bytes for the far end: into `outgoing`, or with an https proxy through the TLS
    /// session with the proxy first. False when that session failed (then reported).
    @discardableResult
    private func sendThroughTunnel(_ fill: (inout CompactingQueue<UInt8>) -> Void) -> Bool {
        guard let proxyTLS else {
            fill(&outgoing)
            return true
        }
        fill(&tunnelScratch)
        let written = tunnelScratch.withUnsafeBytes { bytes in
            Result { () throws(GatewayError) in try proxyTLS.write(bytes) }
        }
        tunnelScratch.removeAll()
        if case .failure(let error) = written {
            failed(with: error)
            return false
        }
        proxyTLS.takeCiphertext(into: &outgoing)
        return true
    }

    package func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Closes at once, discarding unsent bytes. The delegate is not called.
    package func abort() {
        guard stage != .closed else { return }
        stage = .closed
        closeSocket()
    }

    /// Closes once every queued byte is sent (or sending fails). With a linger time it then
    /// waits, up to that long, for the peer to close first, discarding what it still sends: a
    /// WebSocket client should let the server close the TCP connection (RFC 6455 §7.1.1).
    /// The delegate is not called.
    package func close(lingeringNanoseconds lingerNanoseconds: UInt64 = 0) {
        guard stage != .closed else { return }
        guard stage == .open else {
            abort()
            return
        }
        closeWhenFlushed = true
        self.lingerNanoseconds = lingerNanoseconds
        // A peer that stopped reading must not keep the socket and its buffer forever.
        loop.cancel(closeTimer)
        closeTimer = loop.schedule(afterNanoseconds: max(lingerNanoseconds, Self.flushLimitNanoseconds)) {
            self.abort()
        }
        flush()
    }

    /// The longest a closing connection waits for its last bytes to leave.
    static let flushLimitNanoseconds: UInt64 = 5_000_000_000

    /// Stops reading from the socket (TCP back-pressure on the peer) until `resumeReading()`.
    package func pauseReading() {
        readingPaused = true
        updateInterest()
    }

    package func resumeReading() {
        guard readingPaused else { return }
        readingPaused = false
        if unwatched, stage == .open {
            unwatched = false
            interest = 0
            do {
                registration = try loop.register(fd: fd, events: 0) { events in self.handle(events) }
            } catch {
                failed(with: error)
                return
            }
        }
        updateInterest()
        // Plaintext OpenSSL already decrypted does not make the socket readable again.
        if stage == .open, tls != nil { loop.execute { self.readTLS() } }
        if tunnelEnded {
            loop.execute {
                guard self.stage == .open, !self.readTLSBeforeTheEnd() else { return }
                self.endOfStream()
            }
        }
    }

    /// Paused, and the peer hung up or the socket failed: stop watching until reading resumes.
    private func stopWatching() {
        guard let registration else { return }
        loop.unregister(registration)
        self.registration = nil
        interest = 0
        unwatched = true
    }

    // MARK: Opening

    private func connected(fd: Int32, address: SocketAddress) {
        self.fd = fd
        remoteAddress = address
        do {
            // The loop holds the stream until `closeSocket()` unregisters it.
            registration = try loop.register(fd: fd, events: 0) { events in self.handle(events) }
        } catch {
            failed(with: error)
            return
        }
        if let proxy, proxy.kind == .https {
            beginProxyTLS(proxy)
        } else if let proxy {
            beginProxyHandshake(proxy)
        } else {
            throughToTheGateway(leftover: [])
        }
    }

    /// The socket reaches the gateway (directly or through the tunnel): TLS, or open.
    /// `leftover`: bytes that came through the tunnel with the proxy's last answer.
    private func throughToTheGateway(leftover: [UInt8]) {
        guard let tlsContext else {
            becomeOpen()
            if !leftover.isEmpty, stage == .open {
                bytesRead &+= UInt64(leftover.count)
                leftover.withUnsafeBytes { delegate?.stream(self, didRead: $0) }
            }
            return
        }
        stage = .tlsHandshake
        do {
            // The gateway's name for SNI and verification, never the proxy's.
            tls = try TLSSession(context: tlsContext, host: host)
        } catch {
            failed(with: error)
            return
        }
        if !leftover.isEmpty { leftover.withUnsafeBytes { tls?.receiveCiphertext($0) } }
        continueHandshake()
    }

    // MARK: Proxy

    /// https proxy: TLS with the proxy (verified against its name), then CONNECT inside it.
    private func beginProxyTLS(_ proxy: ProxyURL) {
        stage = .proxyHandshake
        updateInterest()
        guard let context = proxyTLSContext else {
            failed(with: GatewayError(.invalidArgument, "an https proxy needs a TLS context"))
            return
        }
        do {
            proxyTLS = try TLSSession(context: context, host: proxy.host)
        } catch {
            failed(with: error)
            return
        }
        continueProxyTLS()
    }

    private func continueProxyTLS() {
        guard let proxyTLS, let proxy else { return }
        do {
            let progress = try proxyTLS.handshake(host: proxy.host)
            proxyTLS.takeCiphertext(into: &outgoing)
            flush()
            switch progress {
            case .done:
                startProxyHandshake(proxy, target: .name(host, port: port))
            case .wantsMoreInput:
                break
            case .closed:
                failed(with: GatewayError(.proxy, "the proxy \(proxy.redacted) closed the connection during TLS"))
            }
        } catch {
            proxyTLS.takeCiphertext(into: &outgoing)
            flush()
            failed(with: GatewayError(.proxy, "the proxy \(proxy.redacted): \(error.message)"))
        }
    }

    /// Bytes from the socket, with an https proxy: the TLS session with the proxy takes them,
    /// and what it decrypts goes on through the tunnel.
    private func receivedFromProxyTLS(_ bytes: UnsafeRawBufferPointer, _ proxyTLS: TLSSession) {
        proxyTLS.receiveCiphertext(bytes)
        guard proxyTLS.handshakeDone else {
            continueProxyTLS()
            return
        }
        // The socket's bytes are in OpenSSL now: the read buffer takes the plaintext.
        let buffer = loop.readBuffer
        while stage == .proxyHandshake || stage == .tlsHandshake || stage == .open {
            let n: Int?
            do {
                n = try proxyTLS.read(into: buffer)
            } catch {
                failed(with: GatewayError(.proxy, "the proxy \(proxy?.redacted ?? ""): \(error.message)"))
                return
            }
            guard let n else {
                // The proxy's close_notify ends the tunnel, as a FIN would: what the gateway sent
                // before it is read first, and while paused the end waits for the resume.
                if readTLSBeforeTheEnd() {
                    tunnelEnded = true
                    return
                }
                endOfStream()
                return
            }
            proxyTLS.takeCiphertext(into: &outgoing)  // e.g. a key update answer
            if n == 0 { break }
            throughTheTunnel(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        flush()
    }

    /// Bytes that came through the tunnel (or straight from the socket without a proxy).
    private func throughTheTunnel(_ bytes: UnsafeRawBufferPointer) {
        if stage == .proxyHandshake {
            proxyAnswered(bytes)
            return
        }
        bytesRead &+= UInt64(bytes.count)
        if let tls {
            tls.receiveCiphertext(bytes)
            if stage == .tlsHandshake { continueHandshake() } else { readTLS() }
        } else {
            delegate?.stream(self, didRead: bytes)
        }
    }

    private func beginProxyHandshake(_ proxy: ProxyURL) {
        stage = .proxyHandshake
        updateInterest()
        guard proxy.kind == .socks5 else {
            startProxyHandshake(proxy, target: .name(host, port: port))
            return
        }
        // socks5 (not socks5h): this client resolves the gateway's name.
        resolvingTarget = true
        targetLookup = Resolver.resolve(host: host, port: port, on: loop) { [weak self] result in
            guard let self else { return }
            self.loop.execute {
                guard self.stage == .proxyHandshake, self.resolvingTarget else { return }
                self.resolvingTarget = false
                self.targetLookup = nil
                switch result {
                case .success(let addresses):
                    guard let address = addresses.first else {
                        self.failed(with: GatewayError(.resolve, "no address for '\(self.host)'"))
                        return
                    }
                    self.startProxyHandshake(proxy, target: .address(address))
                case .failure(let error):
                    self.failed(with: error)
                }
            }
        }
    }

    private func startProxyHandshake(_ proxy: ProxyURL, target: ProxyHandshake.Target) {
        let handshake = ProxyHandshake(proxy: proxy, target: target)
        proxyHandshake = handshake
        guard handshake.start().withUnsafeBytes({ bytes in sendThroughTunnel { $0.append(bytes) } }) else { return }
        flush()
    }

    /// What the proxy sent during the handshake.
    private func proxyAnswered(_ bytes: UnsafeRawBufferPointer) {
        guard var handshake = proxyHandshake else { return }  // socks5: still resolving; cannot happen
        var step: ProxyHandshake.Step
        do {
            step = try handshake.receive(bytes)
            while case .send(let answer) = step {
                guard answer.withUnsafeBytes({ bytes in sendThroughTunnel { $0.append(bytes) } }) else { return }
                step = try handshake.receive(UnsafeRawBufferPointer(start: nil, count: 0))
            }
        } catch {
            proxyHandshake = nil
            failed(with: error)
            return
        }
        proxyHandshake = handshake
        flush()
        guard stage == .proxyHandshake, case .open(let leftover) = step else { return }
        proxyHandshake = nil
        throughToTheGateway(leftover: leftover)
    }

    private func continueHandshake() {
        guard let tls else { return }
        do {
            let progress = try tls.handshake(host: host)
            guard sendThroughTunnel({ tls.takeCiphertext(into: &$0) }) else { return }
            flush()
            switch progress {
            case .done:
                becomeOpen()
                if stage == .open { readTLS() }
            case .wantsMoreInput:
                break
            case .closed:
                failed(with: GatewayError(.tls, "the server closed the connection during the TLS handshake"))
            }
        } catch {
            sendThroughTunnel { tls.takeCiphertext(into: &$0) }  // the alert, for the server's logs
            flush()
            failed(with: error)
        }
    }

    private func becomeOpen() {
        stage = .open
        updateInterest()
        delegate?.streamDidOpen(self)
    }

    // MARK: Events

    private func handle(_ events: UInt32) {
        if events & EPOLLOUT.rawValue != 0 {
            flush()
        }
        guard stage == .open || stage == .tlsHandshake || stage == .proxyHandshake else { return }
        if readingPaused && stage == .open {
            if events & (EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { stopWatching() }
            return
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
            readSocket()
        }
    }

    private func readSocket() {
        // A few reads per wake-up, then back to the loop so one busy peer cannot starve others
        // (epoll is level-triggered: it reports the rest next round).
        for _ in 0..<4 {
            guard stage == .tlsHandshake || stage == .proxyHandshake || (stage == .open && !readingPaused) else {
                return
            }
            let buffer = loop.readBuffer
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 {
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                if let proxyTLS {
                    receivedFromProxyTLS(bytes, proxyTLS)
                } else {
                    throughTheTunnel(bytes)
                }
                if n < buffer.count { return }
            } else if n == 0 {
                if readTLSBeforeTheEnd() { return }
                endOfStream()
                return
            } else {
                let code = errno
                if code == EINTR { return }
                if code == EAGAIN || code == EWOULDBLOCK {
                    // Everything the peer sent before a failure seen while paused is read now.
                    if let deferredError { failed(with: deferredError) }
                    return
                }
                if stage == .proxyHandshake {
                    let what = "\(SystemError.describe(code)) during its handshake"
                    failed(with: GatewayError(.proxy, "the proxy \(proxy?.redacted ?? ""): \(what)"))
                    return
                }
                let error =
                    deferredError ?? GatewayError(.io, "read from \(describePeer()): \(SystemError.describe(code))")
                if readTLSBeforeTheEnd() {
                    deferredError = error  // a reset is reported once by the socket: kept for later
                    return
                }
                failed(with: error)
                return
            }
        }
    }

    /// TLS: what OpenSSL already decrypted comes before the end of the stream (a close frame with
    /// a fatal code may be in it). True when reading paused again while it was delivered: the
    /// end waits, unwatched, until reading resumes.
    private func readTLSBeforeTheEnd() -> Bool {
        guard tls != nil, stage == .open else { return false }
        readTLS()
        guard stage == .open, readingPaused else { return false }
        stopWatching()
        return true
    }

    private func readTLS() {
        guard let tls else { return }
        let buffer = loop.plaintextBuffer
        while stage == .open && !readingPaused {
            do {
                guard let n = try tls.read(into: buffer) else {
                    endOfStream()
                    return
                }
                guard sendThroughTunnel({ tls.takeCiphertext(into: &$0) }) else { return }  // e.g. a key update answer
                if n == 0 { break }
                delegate?.stream(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            } catch {
                failed(with: error)
                return
            }
        }
        if pendingWriteCount > 0 { flush() }
    }

    private func endOfStream() {
        switch stage {
        case .proxyHandshake:
            failed(
                with: GatewayError(
                    .proxy, "the proxy \(proxy?.redacted ?? "") closed the connection during its handshake"))
        case .tlsHandshake:
            failed(with: GatewayError(.tls, "the server closed the connection during the TLS handshake with '\(host)'"))
        default:
            stage = .closed
            closeSocket()
            delegate?.stream(self, didCloseWith: deferredError)
        }
    }

    private func flush() {
        guard fd >= 0 else { return }
        while !outgoing.isEmpty {
            let n = outgoing.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                outgoing.removeFirst(n)
                continue
            }
            let code = errno
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) { break }
            if n < 0 && code == EINTR { continue }
            failed(with: GatewayError(.io, "write to \(describePeer()): \(SystemError.describe(code))"))
            return
        }
        outgoing.compact()
        if outgoing.isEmpty {
            let hadWaited = interest & EPOLLOUT.rawValue != 0
            if hadWaited && !closeWhenFlushed { delegate?.streamDidDrain(self) }
            if closeWhenFlushed && !lingering {
                guard lingerNanoseconds > 0 else {
                    abort()
                    return
                }
                lingering = true  // the timer armed by close(lingering:) ends the wait for the peer
            }
        }
        updateInterest()
    }

    private func updateInterest() {
        guard stage == .open || stage == .tlsHandshake || stage == .proxyHandshake else { return }
        var wanted: UInt32 = readingPaused && stage == .open ? 0 : EPOLLIN.rawValue
        if pendingWriteCount > 0 { wanted |= EPOLLOUT.rawValue }
        setInterest(wanted)
    }

    private func setInterest(_ events: UInt32) {
        guard let registration, events != interest else { return }
        interest = events
        loop.modify(registration, events: events)
    }

    private func describePeer() -> String {
        remoteAddress.map { "\(host) (\($0))" } ?? host
    }

    // MARK: Teardown

    /// The stream failed: the delegate hears why, unless reading is paused; then what was read
    /// before the failure is delivered first, once reading resumes.
    private func failed(with error: GatewayError) {
        guard stage != .closed else { return }
        if readingPaused && stage == .open && deferredError == nil {
            deferredError = error
            outgoing.removeAll()
            stopWatching()
            return
        }
        stage = .closed
        closeSocket()
        if writing {
            loop.execute { self.delegate?.stream(self, didCloseWith: error) }
        } else {
            delegate?.stream(self, didCloseWith: error)
        }
    }

    private func closeSocket() {
        loop.cancel(closeTimer)
        closeTimer = nil
        connector?.abort()
        connector = nil
        targetLookup?.cancel()
        targetLookup = nil
        resolvingTarget = false
        if let registration {
            loop.unregister(registration)
            self.registration = nil
        }
        interest = 0
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
        if stage == .closed {
            tls = nil
            proxyTLS = nil
            outgoing.removeAll()
        }
    }
}
