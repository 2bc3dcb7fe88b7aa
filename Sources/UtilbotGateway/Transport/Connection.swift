import CSystem
import Glibc

package protocol ConnectionDelegate: AnyObject {
    /// TCP is connected and, for TLS, the handshake and verification succeeded.
    func connectionDidOpen(_ connection: Connection)
    /// Bytes from the peer (decrypted for TLS), valid only during the call.
    func connection(_ connection: Connection, didRead bytes: UnsafeRawBufferPointer)
    /// Everything written so far has been handed to the kernel (after some of it had to wait).
    func connectionDidDrain(_ connection: Connection)
    /// The connection ended by itself: `nil` for an orderly end of stream, else why it failed.
    /// Called at most once, and never after the owner called `close()`.
    func connection(_ connection: Connection, didCloseWith error: GatewayError?)
}

/// A non-blocking TCP connection, optionally with TLS, driven by an `EventLoop`.
///
/// It resolves the host off the loop, tries every address in turn (each attempt with its own
/// timeout), then runs the TLS handshake. Confined to its loop's thread after creation.
package final class Connection: @unchecked Sendable {
    package enum Stage: String, Sendable {
        case idle = "idle"
        case resolving = "resolving the host name"
        case connecting = "connecting"
        case tlsHandshake = "doing the TLS handshake"
        case open = "open"
        case closed = "closed"
    }

    package weak var delegate: ConnectionDelegate?
    package private(set) var stage: Stage = .idle
    package let loop: EventLoop
    package let host: String
    package let port: UInt16
    /// The address of the attempt under way or of the open connection.
    package private(set) var remoteAddress: SocketAddress?

    private let tlsContext: TLSContext?
    private let attemptTimeoutNanoseconds: UInt64
    private var addresses: [SocketAddress] = []
    private var nextAddress = 0
    private var attemptFailures: [String] = []
    private var fd: Int32 = -1
    private var registration: EventLoop.Registration?
    private var interest: UInt32 = 0
    private var attemptTimer: EventLoop.TimerID?
    /// The host name lookup under way, cancelled if the connection ends first.
    private var lookup: LookupPool.Job?
    private var tls: TLSSession?
    private var outgoing: [UInt8] = []
    private var outgoingOffset = 0
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

    package init(loop: EventLoop, host: String, port: UInt16, tls: TLSContext?, attemptTimeoutNanoseconds: UInt64) {
        self.loop = loop
        self.host = host
        self.port = port
        self.tlsContext = tls
        self.attemptTimeoutNanoseconds = attemptTimeoutNanoseconds
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Bytes queued but not yet accepted by the kernel.
    package var pendingWriteCount: Int { outgoing.count - outgoingOffset }

    /// The connection failed while reading was paused; it only waits to deliver what it read.
    package var isBroken: Bool { deferredError != nil }

    package var tlsVersion: String? { tls?.protocolVersion }

    package func start() {
        precondition(stage == .idle)
        stage = .resolving
        lookup = Resolver.resolve(host: host, port: port, on: loop) { [weak self] result in
            guard let self, self.stage == .resolving else { return }
            self.lookup = nil
            switch result {
            case .success(let addresses):
                self.addresses = addresses
                self.stage = .connecting
                self.tryNextAddress()
            case .failure(let error):
                self.fail(error)
            }
        }
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
                fail(error)
                return
            }
            tls.takeCiphertext(into: &outgoing)
        } else {
            outgoing.append(contentsOf: bytes)
        }
        flush()
    }

    package func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    /// Closes at once, discarding unsent bytes. The delegate is not called.
    package func close() {
        guard stage != .closed else { return }
        stage = .closed
        release()
    }

    /// Closes once every queued byte is sent (or sending fails). With a linger time it then
    /// waits, up to that long, for the peer to close first, discarding what it still sends: a
    /// WebSocket client should let the server close the TCP connection (RFC 6455 §7.1.1).
    /// The delegate is not called.
    package func closeAfterFlush(lingerNanoseconds: UInt64 = 0) {
        guard stage != .closed else { return }
        guard stage == .open else {
            close()
            return
        }
        closeWhenFlushed = true
        self.lingerNanoseconds = lingerNanoseconds
        // A peer that stopped reading must not keep the socket and its buffer forever.
        loop.cancel(attemptTimer)
        attemptTimer = loop.schedule(afterNanoseconds: max(lingerNanoseconds, Self.flushLimitNanoseconds)) {
            self.close()
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
                fail(error)
                return
            }
        }
        updateInterest()
        // Plaintext OpenSSL already decrypted does not make the socket readable again.
        if stage == .open, tls != nil { loop.execute { self.readTLS() } }
    }

    /// Paused, and the peer hung up or the socket failed: stop watching until reading resumes.
    private func stopWatching() {
        guard let registration else { return }
        loop.unregister(registration)
        self.registration = nil
        interest = 0
        unwatched = true
    }

    // MARK: Connecting

    private func tryNextAddress() {
        guard nextAddress < addresses.count else {
            let tried = attemptFailures.joined(separator: "; ")
            fail(GatewayError(.connect, "could not connect to \(host) port \(port): \(tried)"))
            return
        }
        let address = addresses[nextAddress]
        nextAddress += 1
        remoteAddress = address
        let socketFD = socket(
            address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
            0)
        guard socketFD >= 0 else {
            attemptFailed("\(address): socket: \(SystemError.describe(errno))")
            return
        }
        fd = socketFD
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socketFD, $0, address.length) }
        }
        let code = errno
        if rc != 0 && code != EINPROGRESS {
            attemptFailed("\(address): \(SystemError.describe(code))")
            return
        }
        // The loop holds the connection until `release()` unregisters it.
        do {
            registration = try loop.register(fd: fd, events: 0) { events in self.handle(events) }
        } catch {
            attemptFailed("\(address): \(error.message)")
            return
        }
        setInterest(EPOLLOUT.rawValue)
        attemptTimer = loop.schedule(afterNanoseconds: attemptTimeoutNanoseconds) { [weak self] in
            guard let self, self.stage == .connecting else { return }
            self.attemptFailed("\(address): timed out after \(self.attemptTimeoutNanoseconds / 1_000_000) ms")
        }
    }

    private func attemptFailed(_ reason: String) {
        attemptFailures.append(reason)
        release()
        tryNextAddress()
    }

    private func connected() {
        loop.cancel(attemptTimer)
        attemptTimer = nil
        // Only needed to try the next one: an idle connection keeps none of them.
        addresses = []
        attemptFailures = []
        guard let tlsContext else {
            becomeOpen()
            return
        }
        stage = .tlsHandshake
        do {
            tls = try TLSSession(context: tlsContext, host: host)
        } catch {
            fail(error)
            return
        }
        continueHandshake()
    }

    private func continueHandshake() {
        guard let tls else { return }
        do {
            let progress = try tls.handshake(host: host)
            tls.takeCiphertext(into: &outgoing)
            flush()
            switch progress {
            case .done:
                becomeOpen()
                if stage == .open { readTLS() }
            case .wantsMoreInput:
                break
            case .closed:
                fail(GatewayError(.tls, "the server closed the connection during the TLS handshake"))
            }
        } catch {
            tls.takeCiphertext(into: &outgoing)  // the alert, for the server's logs
            flush()
            fail(error)
        }
    }

    private func becomeOpen() {
        stage = .open
        updateInterest()
        delegate?.connectionDidOpen(self)
    }

    // MARK: Events

    private func handle(_ events: UInt32) {
        if stage == .connecting {
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                attemptFailed("\(remoteAddress.map { "\($0)" } ?? host): \(SystemError.describe(error))")
            } else if events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                connected()
            }
            return
        }
        if events & EPOLLOUT.rawValue != 0 {
            flush()
        }
        guard stage == .open || stage == .tlsHandshake else { return }
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
            guard stage == .tlsHandshake || (stage == .open && !readingPaused) else { return }
            let buffer = loop.readBuffer
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n > 0 {
                bytesRead &+= UInt64(n)
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                if let tls {
                    tls.receiveCiphertext(bytes)
                    if stage == .tlsHandshake { continueHandshake() } else { readTLS() }
                } else {
                    delegate?.connection(self, didRead: bytes)
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
                    if let deferredError { fail(deferredError) }
                    return
                }
                let error =
                    deferredError ?? GatewayError(.io, "read from \(describePeer()): \(SystemError.describe(code))")
                if readTLSBeforeTheEnd() {
                    deferredError = error  // a reset is reported once by the socket: kept for later
                    return
                }
                fail(error)
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
                tls.takeCiphertext(into: &outgoing)  // e.g. a key update answer
                if n == 0 { break }
                delegate?.connection(self, didRead: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            } catch {
                fail(error)
                return
            }
        }
        if pendingWriteCount > 0 { flush() }
    }

    private func endOfStream() {
        switch stage {
        case .tlsHandshake:
            fail(GatewayError(.tls, "the server closed the connection during the TLS handshake with '\(host)'"))
        default:
            stage = .closed
            release()
            delegate?.connection(self, didCloseWith: deferredError)
        }
    }

    private func flush() {
        guard fd >= 0 else { return }
        while outgoingOffset < outgoing.count {
            let n = outgoing.withUnsafeBytes { all in
                send(fd, all.baseAddress! + outgoingOffset, all.count - outgoingOffset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                outgoingOffset += n
                continue
            }
            let code = errno
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) { break }
            if n < 0 && code == EINTR { continue }
            fail(GatewayError(.io, "write to \(describePeer()): \(SystemError.describe(code))"))
            return
        }
        if outgoingOffset == outgoing.count {
            let hadWaited = interest & EPOLLOUT.rawValue != 0
            outgoing.removeAll(keepingCapacity: outgoing.capacity <= 1 << 16)
            outgoingOffset = 0
            if hadWaited && !closeWhenFlushed { delegate?.connectionDidDrain(self) }
            if closeWhenFlushed && !lingering {
                guard lingerNanoseconds > 0 else {
                    close()
                    return
                }
                lingering = true  // the timer armed by closeAfterFlush ends the wait for the peer
            }
        } else if outgoingOffset >= 1 << 16 && outgoingOffset * 2 >= outgoing.count {
            outgoing.removeSubrange(0..<outgoingOffset)
            outgoingOffset = 0
        }
        updateInterest()
    }

    private func updateInterest() {
        guard stage == .open || stage == .tlsHandshake else { return }
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

    private func fail(_ error: GatewayError) {
        guard stage != .closed else { return }
        if readingPaused && stage == .open && deferredError == nil {
            deferredError = error
            outgoing = []
            outgoingOffset = 0
            stopWatching()
            return
        }
        stage = .closed
        release()
        if writing {
            loop.execute { self.delegate?.connection(self, didCloseWith: error) }
        } else {
            delegate?.connection(self, didCloseWith: error)
        }
    }

    private func release() {
        loop.cancel(attemptTimer)
        attemptTimer = nil
        lookup?.cancel()
        lookup = nil
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
            outgoing = []
            outgoingOffset = 0
        }
    }
}
