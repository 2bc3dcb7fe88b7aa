import Testing
import UtilbotGateway

/// The client against a real, independent server: Python's `websockets` (Tests/Peers).
@Suite(.timeLimit(.minutes(1)))
struct WebSocketConnectionIntegrationTests {
    static let sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20]

    private func open(_ path: String, secure: Bool = false, options: WebSocketOptions = WebSocketOptions()) throws
        -> ClientHarness
    {
        let peer = try Peer.get()
        var options = options
        if secure && options.tls.caFile == nil { options.tls.caFile = peer.caFile }
        let url = secure ? "wss://localhost:\(peer.wss)\(path)" : "ws://127.0.0.1:\(peer.ws)\(path)"
        let harness = try ClientHarness(url: url, options: options)
        harness.connect()
        try harness.expectOpen()
        return harness
    }

    private func pattern(_ count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
    }

    private func text(_ count: Int) -> String {
        let unit = "gateway ✓ 😀 "  // mixes 1-, 3- and 4-byte characters
        var s = String(repeating: unit, count: count / unit.utf8.count + 1)
        while s.utf8.count > count { s.removeLast() }
        return s
    }

    @Test(arguments: [false, true])
    func echoesBinaryOfEveryLengthForm(secure: Bool) throws {
        let harness = try open(
            "/echo", secure: secure,
            options: {
                var o = WebSocketOptions()
                o.maxMessageSize = 2 << 20
                return o
            }())
        for size in Self.sizes {
            let payload = pattern(size)
            #expect(harness.sendBinary(payload))
            #expect(try harness.nextMessage() == .binary(payload[...]), "binary of \(size) bytes")
        }
        harness.close()
        let info = try harness.nextClose()
        #expect(info.code == 1000)
        #expect(info.error == nil)
        #expect(info.closedByServer == false)
    }

    @Test(arguments: [false, true])
    func echoesTextOfEveryLengthForm(secure: Bool) throws {
        let harness = try open(
            "/echo", secure: secure,
            options: {
                var o = WebSocketOptions()
                o.maxMessageSize = 2 << 20
                return o
            }())
        for size in Self.sizes {
            let message = text(size)
            #expect(harness.sendText(message))
            #expect(try harness.nextMessage() == .text(ArraySlice(message.utf8)), "text of \(size) bytes")
        }
        harness.close(code: 1000, reason: "done")
        #expect(try harness.nextClose().code == 1000)
    }

    @Test func manyMessagesInFlightArriveInOrder() throws {
        let harness = try open("/echo")
        for i in 0..<500 { #expect(harness.sendText("message \(i)")) }
        for i in 0..<500 { #expect(try harness.nextMessage() == .text(ArraySlice("message \(i)".utf8))) }
        harness.close()
        _ = try harness.nextClose()
    }

    @Test func answersTheServersPingWithItsPayload() throws {
        let harness = try open("/ping")
        #expect(try harness.nextMessage() == .ping(ArraySlice("hello-ping".utf8)))
        #expect(try harness.nextMessage() == .text(ArraySlice("pong:hello-ping".utf8)))
        harness.close()
        _ = try harness.nextClose()
    }

    @Test func ourPingIsAnsweredWithAPong() throws {
        let harness = try open("/echo")
        #expect(harness.onLoop { $0.sendPing(Array("are you there".utf8)) })
        #expect(try harness.nextMessage() == .pong(ArraySlice("are you there".utf8)))
        harness.close()
        _ = try harness.nextClose()
    }

    @Test(arguments: [1000, 1001, 3000, 4001, 4006, 4999])
    func serverCloseIsReportedWithItsCodeAndEchoed(code: Int) throws {
        let harness = try open("/close/\(code)")
        let info = try harness.nextClose()
        #expect(info.code == UInt16(code))
        #expect(info.reason == "bye \(code)")
        #expect(info.closedByServer)
        #expect(info.error == nil)
    }

    @Test func reassemblesAFragmentedTextMessage() throws {
        let harness = try open("/send-fragmented")
        #expect(try harness.nextMessage() == .text(ArraySlice("héllo wörld 😀".utf8)))
        harness.close()
        _ = try harness.nextClose()
    }

    @Test func sendsHostWithPortPathQueryAndUserAgent() throws {
        let peer = try Peer.get()
        let harness = try open("/headers?v=1&compression=zlib")
        guard case .text(let bytes) = try harness.nextMessage() else {
            Issue.record("expected the headers as text")
            return
        }
        let json = String(decoding: bytes, as: UTF8.self)
        #expect(json.contains("\"path\": \"/headers?v=1&compression=zlib\""))
        #expect(json.contains("\"host\": \"127.0.0.1:\(peer.ws)\""))
        #expect(json.contains("\"user_agent\": \"utilbot-gateway/\(libraryVersion)"))
        #expect(json.contains("\"version\": \"13\""))
        harness.close()
        _ = try harness.nextClose()
    }

    @Test(arguments: [403, 404, 500])
    func refusedUpgradeReportsTheHTTPStatus(status: Int) throws {
        let peer = try Peer.get()
        let harness = try ClientHarness(url: "ws://127.0.0.1:\(peer.ws)/status/\(status)")
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.code == 1006)
        #expect(info.httpStatus == status)
        #expect(info.error?.code == .handshake)
        #expect(info.error?.message.contains("HTTP \(status)") == true)
    }

    @Test func wrongAcceptValueIsRefused() throws {
        let peer = try Peer.get()
        let harness = try ClientHarness(url: "ws://127.0.0.1:\(peer.ws)/bad-accept")
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.error?.code == .handshake)
        #expect(info.error?.message.contains("Sec-WebSocket-Accept") == true)
        #expect(info.httpStatus == nil)
    }

    @Test func droppedConnectionIsReportedAs1006() throws {
        let harness = try open("/drop")
        let info = try harness.nextClose()
        #expect(info.code == 1006)
        #expect(info.error?.code == .protocolViolation)
    }

    @Test func unansweredCloseTimesOut() throws {
        var options = WebSocketOptions()
        options.closeTimeoutNanoseconds = 300_000_000
        let harness = try open("/stall-close", options: options)
        harness.close(code: 1000)
        let info = try harness.nextClose(timeout: 5)
        #expect(info.code == 1006)
        #expect(info.error?.code == .timeout)
    }

    @Test func tlsIsRefusedForAnUntrustedCA() throws {
        let peer = try Peer.get()
        // No CA file: the system trust store, which does not know the peer's test CA.
        let harness = try ClientHarness(url: "wss://localhost:\(peer.wss)/echo")
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.code == 1006)
        #expect(info.error?.code == .tls)
        let message = info.error?.message ?? ""
        #expect(message.contains("certificate verification failed"), "\(message)")
        #expect(message.contains("self-signed") || message.contains("local issuer"), "\(message)")
    }

    @Test func tlsIsRefusedForAnotherHostName() throws {
        let peer = try Peer.get()
        var options = WebSocketOptions()
        options.tls.caFile = peer.caFile
        let harness = try ClientHarness(url: "wss://localhost:\(peer.wssWrongHost)/echo", options: options)
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.error?.code == .tls)
        #expect(info.error?.message.contains("hostname mismatch") == true, "\(info.error?.message ?? "")")
    }

    @Test func insecureOptOutAcceptsTheUntrustedCertificate() throws {
        let peer = try Peer.get()
        var options = WebSocketOptions()
        options.tls.insecureSkipVerify = true
        let harness = try ClientHarness(url: "wss://localhost:\(peer.wssWrongHost)/echo", options: options)
        harness.connect()
        try harness.expectOpen()
        harness.close()
        _ = try harness.nextClose()
    }

    @Test func negotiatesTLS12OrNewer() throws {
        let harness = try open("/echo", secure: true)
        let version = harness.onLoop { $0.tlsVersion }
        #expect(version == "TLSv1.3" || version == "TLSv1.2")
        harness.close()
        _ = try harness.nextClose()
    }

    @Test func connectionRefusedNamesTheAddress() throws {
        // A port nothing listens on: bind one, read its number, close it.
        let harness = try ClientHarness(url: "ws://127.0.0.1:1/echo")
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.error?.code == .connect)
        #expect(info.error?.message.contains("127.0.0.1:1") == true)
        #expect(info.error?.message.contains("refused") == true)
    }

    @Test func unknownHostIsAResolveError() throws {
        let harness = try ClientHarness(url: "ws://no-such-host.invalid/echo")
        harness.connect()
        let info = try harness.nextClose()
        #expect(info.error?.code == .resolve)
        #expect(info.error?.message.contains("no-such-host.invalid") == true)
    }
}
