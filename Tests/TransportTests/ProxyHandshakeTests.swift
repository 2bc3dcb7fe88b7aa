import Glibc
import Testing
import UtilbotGateway

/// The proxy URL, the environment's choice and the tunnel handshakes, as plain values: no socket.
@Suite struct ProxyURLTests {
    @Test func parsesEveryKindWithItsDefaultPortAndCredentials() throws {
        #expect(
            try ProxyURL(parsing: "http://proxy.example:3128")
                == ProxyURL(kind: .http, host: "proxy.example", port: 3128))
        #expect(try ProxyURL(parsing: "proxy.example") == ProxyURL(kind: .http, host: "proxy.example", port: 80))
        #expect(try ProxyURL(parsing: "SOCKS5H://[::1]/") == ProxyURL(kind: .socks5h, host: "::1", port: 1080))
        #expect(
            try ProxyURL(parsing: "https://proxy.example") == ProxyURL(kind: .https, host: "proxy.example", port: 443))
        let withCredentials = try ProxyURL(parsing: "socks5://us%40er:p%3Ass@10.0.0.1:1081")
        #expect(
            withCredentials
                == ProxyURL(kind: .socks5, host: "10.0.0.1", port: 1081, username: "us@er", password: "p:ss"))
        #expect(withCredentials.redacted == "socks5://10.0.0.1:1081")
    }

    @Test(
        arguments: [
            ("ftp://proxy", "unsupported proxy scheme 'ftp' (http, https, socks5 and socks5h are)"),
            ("http://proxy:0", "the proxy URL's port must be a number from 1 to 65535"),
            ("http://proxy:99999", "the proxy URL's port must be a number from 1 to 65535"),
            ("http://:8080", "the proxy URL has no valid host"),
            ("http://proxy/path", "a proxy URL has no path, query or fragment"),
            ("http://user:%zz@proxy", "a bad percent escape in the proxy's credentials"),
            ("http://[::1", "unclosed '[' in the proxy's IPv6 address"),
        ])
    func refusesWhatItCannotUse(text: String, message: String) {
        #expect(throws: GatewayError(.invalidArgument, message)) { try ProxyURL(parsing: text) }
    }
}

@Suite struct ProxyEnvironmentTests {
    private func proxy(_ variables: [String: String], host: String = "gateway.example", secure: Bool = true) throws
        -> ProxyURL?
    {
        try ProxyEnvironment.proxy(host: host, secure: secure) { variables[$0] }
    }

    @Test func picksTheVariableOfTheSchemeThenAllProxyLowercaseFirst() throws {
        let all = [
            "https_proxy": "http://s:1", "HTTPS_PROXY": "http://S:1", "http_proxy": "http://h:1",
            "ALL_PROXY": "socks5h://a:1",
        ]
        #expect(try proxy(all)?.host == "s")
        #expect(try proxy(all, secure: false)?.host == "h")
        #expect(try proxy(["HTTPS_PROXY": "http://S:1"])?.host == "S")
        #expect(try proxy(["ALL_PROXY": "socks5h://a:1"], secure: false)?.kind == .socks5h)
        #expect(try proxy(["http_proxy": "http://h:1"]) == nil)  // wss does not take the ws variable
        #expect(try proxy([:]) == nil)
    }

    @Test func aBadVariableIsAnErrorNamingIt() {
        #expect(
            throws: GatewayError(
                .invalidArgument, "https_proxy: unsupported proxy scheme 'gopher' (http, https, socks5 and socks5h are)"
            )
        ) {
            try proxy(["https_proxy": "gopher://x"])
        }
    }

    @Test(
        arguments: [
            ("gateway.example", "*", true),
            ("gateway.example", "ample", false),
            ("gateway.example", "example.com, gateway.example", true),
            ("api.gateway.example", "gateway.example", true),
            ("api.gateway.example", ".gateway.example", true),
            ("gateway.example", ".gateway.example", true),
            ("notgateway.example", "gateway.example", false),
            ("GATEWAY.example.", "gateway.EXAMPLE", true),
            ("gateway.example", "gateway.example:443", true),
            ("10.1.2.3", "10.0.0.0/8", true),
            ("11.1.2.3", "10.0.0.0/8", false),
            ("10.1.2.3", "10.1.2.3", true),
            ("::1", "::1", true),
            ("[2001:db8::5]", "2001:db8::/32", true),
            ("2001:db9::5", "2001:db8::/32", false),
            ("10.1.2.3", "", false),
            ("10.0.0.1", ".0.1", false),
            ("10.0.0.1", "0.0.1", false),
        ])
    func noProxyMatchesNamesSuffixesAddressesAndRanges(host: String, list: String, bypassed: Bool) {
        #expect(ProxyEnvironment.bypasses(host: host, list: list) == bypassed)
    }

    @Test func noProxyWinsOverTheProxyVariables() throws {
        #expect(try proxy(["https_proxy": "http://s:1", "no_proxy": "ample"], host: "gateway.example") != nil)
        #expect(try proxy(["https_proxy": "http://s:1", "NO_PROXY": "gateway.example"]) == nil)
    }
}

@Suite struct ProxyHandshakeTests {
    private func feed(_ handshake: inout ProxyHandshake, _ bytes: [UInt8]) throws(GatewayError) -> ProxyHandshake.Step {
        let result: Result<ProxyHandshake.Step, GatewayError> = bytes.withUnsafeBytes { raw in
            Result { () throws(GatewayError) in try handshake.receive(raw) }
        }
        return try result.get()
    }

    private func feed(_ handshake: inout ProxyHandshake, _ text: String) throws(GatewayError) -> ProxyHandshake.Step {
        try feed(&handshake, Array(text.utf8))
    }

    @Test func connectWithBasicCredentialsOpensOnA200AndKeepsWhatFollows() throws {
        let proxy = ProxyURL(kind: .http, host: "p", port: 3128, username: "bot", password: "s3cret")
        var handshake = ProxyHandshake(proxy: proxy, target: .name("gateway.example", port: 443))
        #expect(
            String(decoding: handshake.start(), as: UTF8.self)
                == "CONNECT gateway.example:443 HTTP/1.1\r\nHost: gateway.example:443\r\n"
                + "Proxy-Authorization: Basic Ym90OnMzY3JldA==\r\n\r\n")
        #expect(try feed(&handshake, "HTTP/1.1 200 Connection established\r\n") == .needMore)
        #expect(try feed(&handshake, "Proxy-Agent: test\r\n\r\nHE") == .open(leftover: Array("HE".utf8)))
    }

    @Test(
        arguments: [
            (
                "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
                "the proxy http://p:3128 requires authentication: 407 Proxy Authentication Required (it asks for Basic credentials); none were given"
            ),
            (
                "HTTP/1.0 403 Forbidden\r\n\r\n",
                "the proxy http://p:3128 refused the tunnel to [::1]:8080: HTTP 403 Forbidden"
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                "the proxy http://p:3128 answered CONNECT with 200 and a body (Content-Length: 5)"
            ),
            (
                "SSH-2.0-OpenSSH\r\n\r\n",
                "the proxy http://p:3128 is not an HTTP proxy: it answered CONNECT with 'SSH-2.0-OpenSSH'"
            ),
        ])
    func connectFailuresSayWhatTheProxyAnswered(answer: String, message: String) throws {
        var handshake = ProxyHandshake(
            proxy: ProxyURL(kind: .http, host: "p", port: 3128), target: .name("::1", port: 8080))
        #expect(String(decoding: handshake.start(), as: UTF8.self).hasPrefix("CONNECT [::1]:8080 HTTP/1.1\r\n"))
        #expect(throws: GatewayError(.proxy, message)) { try feed(&handshake, answer) }
    }

    @Test func anEndlessConnectAnswerIsRefused() throws {
        var handshake = ProxyHandshake(proxy: ProxyURL(kind: .http, host: "p", port: 1), target: .name("g", port: 1))
        let line = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Pad: 0123456789\r\n", count: 1000)
        #expect(throws: GatewayError.self) { try feed(&handshake, line) }
    }

    @Test func aConnectHeadOverTheLimitIsRefusedEvenWhenItEnds() throws {
        var handshake = ProxyHandshake(proxy: ProxyURL(kind: .http, host: "p", port: 1), target: .name("g", port: 1))
        let head = "HTTP/1.1 200 OK\r\nX-Pad: " + String(repeating: "x", count: 20_000) + "\r\n\r\n"
        #expect(
            throws: GatewayError(.proxy, "the proxy http://p:1 answered CONNECT with a head longer than 16384 bytes")
        ) {
            try feed(&handshake, head)
        }
    }

    @Test func aConnectHeadTrickledByteByByteOpens() throws {
        var handshake = ProxyHandshake(proxy: ProxyURL(kind: .http, host: "p", port: 1), target: .name("g", port: 1))
        var last = ProxyHandshake.Step.needMore
        for byte in Array("HTTP/1.1 200 Connection established\r\n\r\n".utf8) { last = try feed(&handshake, [byte]) }
        #expect(last == .open(leftover: []))
    }

    @Test func aUsernamePasswordAnswerOfAnotherVersionIsRefused() throws {
        let proxy = ProxyURL(kind: .socks5h, host: "p", port: 1080, username: "u", password: "pw")
        var handshake = ProxyHandshake(proxy: proxy, target: .name("gw", port: 1))
        _ = try feed(&handshake, [5, 2])
        #expect(
            throws: GatewayError(
                .proxy, "the proxy socks5h://p:1080 answered the username and password with version byte 0x05, not 0x01"
            )
        ) {
            try feed(&handshake, [5, 0])
        }
    }

    @Test func socks5hWithCredentialsSendsTheNameAndOpens() throws {
        let proxy = ProxyURL(kind: .socks5h, host: "p", port: 1080, username: "u", password: "pw")
        var handshake = ProxyHandshake(proxy: proxy, target: .name("gw", port: 443))
        #expect(handshake.start() == [5, 2, 0, 2])
        #expect(try feed(&handshake, [5, 2]) == .send([1, 1, 0x75, 2, 0x70, 0x77]))
        #expect(try feed(&handshake, [1, 0]) == .send([5, 1, 0, 3, 2, 0x67, 0x77, 0x01, 0xBB]))
        #expect(try feed(&handshake, [5, 0, 0, 1, 127, 0]) == .needMore)
        #expect(try feed(&handshake, [0, 1, 0x1F, 0x90, 0x16]) == .open(leftover: [0x16]))
    }

    @Test func socks5SendsTheAddressThisClientResolved() throws {
        let address = try #require(try Resolver.lookup(host: "127.0.0.1", port: 8080, numericOnly: true).first)
        var handshake = ProxyHandshake(proxy: ProxyURL(kind: .socks5, host: "p", port: 1080), target: .address(address))
        #expect(handshake.start() == [5, 1, 0])
        #expect(try feed(&handshake, [5, 0]) == .send([5, 1, 0, 1, 127, 0, 0, 1, 0x1F, 0x90]))
        #expect(try feed(&handshake, [5, 0, 0, 3, 4, 0x68, 0x6F, 0x73, 0x74, 0, 80]) == .open(leftover: []))
    }

    @Test(
        arguments: [
            (
                [UInt8]([5, 0xFF]),
                "accepts none of the authentication methods offered: none (no credentials were given)"
            ),
            ([0x48, 0x54], "is not a SOCKS5 proxy: it answered with version byte 0x48"),
            ([5, 2], "chose an authentication method that was not offered (0x02)"),
        ])
    func socksMethodFailuresAreNamed(answer: [UInt8], message: String) {
        var handshake = ProxyHandshake(
            proxy: ProxyURL(kind: .socks5h, host: "p", port: 1080), target: .name("gw", port: 1))
        #expect(throws: GatewayError(.proxy, "the proxy socks5h://p:1080 " + message)) { try feed(&handshake, answer) }
    }

    @Test(arguments: UInt8(1)...UInt8(9))
    func everySocksReplyCodeIsNamed(code: UInt8) throws {
        var handshake = ProxyHandshake(
            proxy: ProxyURL(kind: .socks5h, host: "p", port: 1080), target: .name("gw", port: 443))
        _ = try feed(&handshake, [5, 0])
        let name = ProxyHandshake.socksReplyName(code)
        #expect(throws: GatewayError(.proxy, "the proxy socks5h://p:1080 refused the tunnel to gw:443: \(name)")) {
            try feed(&handshake, [5, code, 0, 1, 0, 0, 0, 0, 0, 0])
        }
        #expect(code == 9 ? name == "unknown reply code 9" : !name.hasPrefix("unknown"))
    }

    @Test func wrongSocksCredentialsAreRefusedByName() throws {
        let proxy = ProxyURL(kind: .socks5, host: "p", port: 1080, username: "u", password: "bad")
        var handshake = ProxyHandshake(proxy: proxy, target: .name("gw", port: 1))
        _ = try feed(&handshake, [5, 2])
        #expect(throws: GatewayError(.proxy, "the proxy socks5://p:1080 refused the username or password (status 1)")) {
            try feed(&handshake, [1, 1])
        }
    }
}
