import CSystem
import Glibc

/// Opens a TCP connection: resolves the host off the loop, then tries every address in turn,
/// each attempt with its own timeout, and hands over the connected, non-blocking socket.
/// Confined to its loop's thread.
package final class Connector: @unchecked Sendable {
    /// Boxed (indirect): inline, this multi-payload enum tells `.resolved` apart by payload bytes
    /// it never writes, and valgrind reports every switch on it.
    package indirect enum Outcome {
        /// The name is resolved; connecting starts.
        case resolved
        /// The socket is connected; its descriptor now belongs to the receiver.
        case connected(fd: Int32, address: SocketAddress)
        /// Every address failed (each reason is in the message), or the name did not resolve.
        case failed(GatewayError)
    }

    private let loop: EventLoop
    private let host: String
    private let port: UInt16
    private let attemptTimeoutNanoseconds: UInt64
    /// Called on the loop thread: `.resolved` at most once, then one of the other two, unless
    /// `abort()` came first.
    private var report: ((Outcome) -> Void)?
    /// The host name lookup under way, cancelled if the attempt is given up first.
    private var lookup: LookupPool.Job?
    private var addresses: [SocketAddress] = []
    private var nextAddress = 0
    private var attemptFailures: [String] = []
    private var fd: Int32 = -1
    private var address: SocketAddress?
    private var registration: EventLoop.Registration?
    private var attemptTimer: EventLoop.TimerID?

    package init(
        loop: EventLoop, host: String, port: UInt16, attemptTimeoutNanoseconds: UInt64,
        report: @escaping (Outcome) -> Void
    ) {
        self.loop = loop
        self.host = host
        self.port = port
        self.attemptTimeoutNanoseconds = attemptTimeoutNanoseconds
        self.report = report
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    package func start() {
        lookup = Resolver.resolve(host: host, port: port, on: loop) { [weak self] result in
            guard let self, self.report != nil else { return }
            self.lookup = nil
            switch result {
            case .success(let addresses):
                self.addresses = addresses
                self.report?(.resolved)
                self.tryNextAddress()
            case .failure(let error):
                self.finish(.failed(error))
            }
        }
    }

    /// Gives up: the lookup is cancelled, the socket under way closed, nothing is reported.
    package func abort() {
        report = nil
        lookup?.cancel()
        lookup = nil
        closeAttempt()
    }

    private func tryNextAddress() {
        guard report != nil else { return }
        guard nextAddress < addresses.count else {
            let tried = attemptFailures.joined(separator: "; ")
            finish(.failed(GatewayError(.connect, "could not connect to \(host) port \(port): \(tried)")))
            return
        }
        let address = addresses[nextAddress]
        nextAddress += 1
        self.address = address
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
        do {
            registration = try loop.register(fd: fd, events: EPOLLOUT.rawValue) { [weak self] events in
                self?.handle(events)
            }
        } catch {
            attemptFailed("\(address): \(error.message)")
            return
        }
        attemptTimer = loop.schedule(afterNanoseconds: attemptTimeoutNanoseconds) { [weak self] in
            guard let self, self.fd >= 0 else { return }
            self.attemptFailed("\(address): timed out after \(self.attemptTimeoutNanoseconds / 1_000_000) ms")
        }
    }

    private func handle(_ events: UInt32) {
        guard fd >= 0, let address else { return }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        if error != 0 {
            attemptFailed("\(address): \(SystemError.describe(error))")
        } else if events & (EPOLLOUT.rawValue | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            let connected = fd
            fd = -1  // handed over, not closed
            closeAttempt()
            finish(.connected(fd: connected, address: address))
        }
    }

    private func attemptFailed(_ reason: String) {
        attemptFailures.append(reason)
        closeAttempt()
        tryNextAddress()
    }

    private func closeAttempt() {
        loop.cancel(attemptTimer)
        attemptTimer = nil
        if let registration {
            loop.unregister(registration)
            self.registration = nil
        }
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    private func finish(_ outcome: Outcome) {
        let report = self.report
        self.report = nil
        addresses = []
        attemptFailures = []
        report?(outcome)
    }
}
