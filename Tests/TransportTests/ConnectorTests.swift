import CSystem
import Glibc
import Testing
import UtilbotGateway

/// What a `Connector` reports, as values the test thread can compare.
enum ConnectorReport: Equatable, Sendable {
    case resolved
    case connected(fd: Int32, address: String)
    case failed(GatewayError)
}

@Suite(.timeLimit(.minutes(1)))
struct ConnectorTests {
    private func connect(_ host: String, _ port: UInt16, attemptMilliseconds: UInt64 = 5000)
        throws -> (EventLoop, Connector, Latched<ConnectorReport>)
    {
        let loop = try EventLoop()
        try loop.start()
        let reports = Latched<ConnectorReport>()
        let connector = Connector(
            loop: loop, host: host, port: port, attemptTimeoutNanoseconds: attemptMilliseconds * 1_000_000
        ) { outcome in
            switch outcome {
            case .resolved: reports.push(.resolved)
            case .connected(let fd, let address): reports.push(.connected(fd: fd, address: "\(address)"))
            case .failed(let error): reports.push(.failed(error))
            }
        }
        loop.execute { connector.start() }
        return (loop, connector, reports)
    }

    /// The connected socket is handed over, not closed: it carries bytes to the peer. "localhost"
    /// resolves to ::1 and 127.0.0.1 and only the IPv4 one listens: every address is tried in turn.
    @Test(arguments: ["127.0.0.1", "localhost"])
    func handsOverTheConnectedSocket(host: String) throws {
        let listener = try TestListener(ipv6: false)
        let (loop, connector, reports) = try connect(host, listener.port)
        defer { loop.close(); withExtendedLifetime(connector) {} }
        let peer = try #require(listener.accept())
        defer { close(peer) }
        #expect(reports.next() == .resolved)
        guard case .connected(let fd, let address) = reports.next() else {
            Issue.record("expected a connected socket")
            return
        }
        defer { close(fd) }
        #expect(address == "127.0.0.1:\(listener.port)")
        #expect(send(fd, "hi", 2, Int32(MSG_NOSIGNAL)) == 2)
        #expect(readExactly(peer, 2) == Array("hi".utf8))
    }

    /// Given up mid-attempt: nothing is reported, not even the attempt's timeout.
    @Test func anAbortedAttemptReportsNothingAndLetsGoOfItsSocket() throws {
        // A listener whose accept queue is full drops further SYNs, so connect() hangs.
        let listener = try TestListener(ipv6: false, backlog: 0)
        let fillers = fillAcceptQueue(of: listener)
        defer { fillers.forEach { close($0) } }
        let (loop, connector, reports) = try connect("127.0.0.1", listener.port, attemptMilliseconds: 300)
        defer { loop.close(); withExtendedLifetime(connector) {} }
        #expect(reports.next() == .resolved)
        let done = Latched<Bool>()
        loop.execute {
            connector.abort()
            done.push(true)
        }
        #expect(done.next() == true)
        // Past the attempt's timeout: a live attempt would have failed (and said so) by now.
        #expect(reports.next(seconds: 1) == nil)
    }

    @Test func refusedConnectionNamesTheAddressAndReason() throws {
        let listener = try TestListener(ipv6: false)
        let port = listener.port
        listener.stop()
        let (loop, connector, reports) = try connect("127.0.0.1", port)
        defer { loop.close(); withExtendedLifetime(connector) {} }
        #expect(reports.next() == .resolved)
        guard case .failed(let error) = reports.next() else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .connect)
        #expect(error.message.contains("127.0.0.1:\(port)"))
        #expect(error.message.contains("Connection refused"))
    }

    @Test func anAttemptThatNeverCompletesTimesOut() throws {
        let listener = try TestListener(ipv6: false, backlog: 0)
        let fillers = fillAcceptQueue(of: listener)
        defer { fillers.forEach { close($0) } }
        let start = monotonicNanoseconds()
        let (loop, connector, reports) = try connect("127.0.0.1", listener.port, attemptMilliseconds: 300)
        defer { loop.close(); withExtendedLifetime(connector) {} }
        #expect(reports.next() == .resolved)
        guard case .failed(let error) = reports.next() else {
            Issue.record("expected a timeout")
            return
        }
        #expect(error.code == .connect)
        #expect(error.message.contains("timed out after 300 ms"))
        #expect(monotonicNanoseconds() - start >= 300_000_000)
    }
}

/// Fills a backlog-0 listener's accept queue, so that the next connect() to it hangs.
private func fillAcceptQueue(of listener: TestListener) -> [Int32] {
    var fillers: [Int32] = []
    for _ in 0..<8 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = listener.port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        fillers.append(fd)
    }
    return fillers
}
