import CSystem
import Glibc
import Testing
import UtilbotGateway

/// A listening socket on loopback that the test thread drives by hand (blocking, with poll
/// deadlines), as the far end of a `SocketStream`.
final class TestListener {
    private(set) var fd: Int32
    let port: UInt16

    init(ipv6: Bool, backlog: Int32 = 16) throws {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var storage = sockaddr_storage()
        var length: socklen_t
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            withUnsafeBytes(of: address) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
            withUnsafeBytes(of: address) { src in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: src) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else { throw GatewayError(.io, "bind/listen: \(errno)") }
        withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = withUnsafeBytes(of: storage) { raw in UInt16(raw[2]) << 8 | UInt16(raw[3]) }
    }

    deinit { stop() }

    /// Stops listening: connections to the port are then refused.
    func stop() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    /// Accepts one connection within `seconds`.
    func accept(within seconds: Int32 = 5) -> Int32? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, seconds * 1000) == 1 else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        return client >= 0 ? client : nil
    }
}

func readExactly(_ fd: Int32, _ count: Int, within seconds: Int32 = 5) -> [UInt8] {
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while out.count < count {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, seconds * 1000) == 1 else { break }
        let n = recv(fd, &buffer, min(buffer.count, count - out.count), 0)
        if n <= 0 { break }
        out += buffer[0..<n]
    }
    return out
}

/// Records what a SocketStream reports, for the test thread to wait on.
final class StreamRecorder: SocketStreamDelegate, @unchecked Sendable {
    enum Event: Equatable, Sendable {
        case open
        case data([UInt8])
        case closed(GatewayError?)
    }
    let events = Latched<Event>()

    func streamDidOpen(_ stream: SocketStream) { events.push(.open) }
    func stream(_ stream: SocketStream, didRead bytes: UnsafeRawBufferPointer) {
        events.push(.data(Array(bytes)))
    }
    func stream(_ stream: SocketStream, didCloseWith error: GatewayError?) { events.push(.closed(error)) }
    func streamDidDrain(_ stream: SocketStream) {}
}

/// An append-only list with a waiting read.
final class Latched<T: Sendable>: @unchecked Sendable {
    private let recorder = Latch<Bool>()
    private var lock = pthread_mutex_t()
    private var items: [T] = []
    private var taken = 0
    init() { pthread_mutex_init(&lock, nil) }
    func push(_ item: T) {
        pthread_mutex_lock(&lock)
        items.append(item)
        pthread_mutex_unlock(&lock)
    }
    func next(seconds: Double = 5) -> T? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            pthread_mutex_lock(&lock)
            if taken < items.count {
                let item = items[taken]
                taken += 1
                pthread_mutex_unlock(&lock)
                return item
            }
            pthread_mutex_unlock(&lock)
            usleep(500)
        }
        return nil
    }
}

@Suite(.timeLimit(.minutes(1)))
struct SocketStreamTests {
    private func connect(_ host: String, _ port: UInt16, attemptMilliseconds: UInt64 = 5000)
        throws -> (EventLoop, SocketStream, StreamRecorder)
    {
        let loop = try EventLoop()
        try loop.start()
        let recorder = StreamRecorder()
        let connection = SocketStream(
            loop: loop, host: host, port: port, tls: nil,
            attemptTimeoutNanoseconds: attemptMilliseconds * 1_000_000)
        connection.delegate = recorder
        loop.execute { connection.start() }
        return (loop, connection, recorder)
    }

    @Test(arguments: [true, false])
    func carriesBytesBothWaysOverIPv6AndIPv4(ipv6: Bool) throws {
        let listener = try TestListener(ipv6: ipv6)
        let (loop, connection, recorder) = try connect(ipv6 ? "::1" : "127.0.0.1", listener.port)
        defer { loop.close(); withExtendedLifetime(connection) {} }
        let peer = try #require(listener.accept())
        defer { close(peer) }
        #expect(recorder.events.next() == .open)
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        loop.execute { connection.write(payload) }
        #expect(readExactly(peer, payload.count) == payload)
        _ = send(peer, "pong", 4, 0)
        #expect(recorder.events.next() == .data(Array("pong".utf8)))
        close(peer)
        #expect(recorder.events.next() == .closed(nil))
    }

    /// A busy loop may not have read a socket yet: the bytes waiting there are seen (a sign of
    /// life for the heartbeat check) without being taken.
    @Test func bytesWaitingUnreadAreSeenWithoutTakingThem() throws {
        let listener = try TestListener(ipv6: false)
        let (loop, connection, recorder) = try connect("127.0.0.1", listener.port)
        defer { loop.close(); withExtendedLifetime(connection) {} }
        let peer = try #require(listener.accept())
        defer { close(peer) }
        #expect(recorder.events.next() == .open)
        let answers = Latched<Bool>()
        loop.execute {
            connection.pauseReading()
            answers.push(connection.hasUnreadBytes)
        }
        #expect(answers.next() == false)
        _ = send(peer, "ack", 3, 0)
        var seen = false
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while !seen && monotonicNanoseconds() < deadline {
            loop.execute { answers.push(connection.hasUnreadBytes) }
            seen = answers.next() ?? false
            if !seen { usleep(1000) }
        }
        #expect(seen)
        loop.execute { connection.resumeReading() }
        #expect(recorder.events.next() == .data(Array("ack".utf8)))
    }
}
