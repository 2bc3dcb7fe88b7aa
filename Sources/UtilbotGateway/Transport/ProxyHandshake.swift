import Glibc

/// The tunnel through a proxy to the gateway, as a plain value fed the proxy's bytes
/// (docs/PROTOCOL.md, "Proxies"): HTTP CONNECT (RFC 9110 §9.3.6, Basic credentials per RFC 7617)
/// or SOCKS5 (RFC 1928, username and password per RFC 1929). `start()` gives the first bytes to
/// send; each `receive` says what to send next, to wait, or that the tunnel is open (with any
/// bytes that came after the proxy's last answer, which belong to the tunnel). After `.send`, call
/// `receive` again with no bytes until it says something else: a proxy may have answered ahead.
/// Errors name the proxy (never its credentials) and its answer.
package struct ProxyHandshake {
    package enum Step: Equatable {
        case send([UInt8])
        case needMore
        case open(leftover: [UInt8])
    }

    /// Where the tunnel goes: a name (HTTP CONNECT and socks5h pass it on) or, for socks5, the
    /// address this client resolved.
    package enum Target: Sendable {
        case name(String, port: UInt16)
        case address(SocketAddress)
    }

    /// The longest CONNECT answer head accepted.
    package static let maxHeaderSize = 16 * 1024

    private enum Phase {
        case httpAnswer
        case socksMethod
        case socksAuthentication
        case socksReply
        case open
    }

    private let proxy: ProxyURL
    private let target: Target
    private var phase: Phase
    private var input: [UInt8] = []
    /// HTTP: how much of `input` has been searched for the end of the head.
    private var searchedUpTo = 0

    package init(proxy: ProxyURL, target: Target) {
        self.proxy = proxy
        self.target = target
        phase = proxy.kind == .http || proxy.kind == .https ? .httpAnswer : .socksMethod
    }

    /// The bytes that open the exchange.
    package func start() -> [UInt8] {
        switch proxy.kind {
        case .http, .https:
            let authority = targetAuthority
            var request = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
            if let username = proxy.username {
                let credentials = Array((username + ":" + (proxy.password ?? "")).utf8)
                request += "Proxy-Authorization: Basic \(Base64.encode(credentials))\r\n"
            }
            return Array((request + "\r\n").utf8)
        case .socks5, .socks5h:
            // Version 5; no authentication, and username/password when there are credentials.
            return proxy.username == nil ? [5, 1, 0] : [5, 2, 0, 2]
        }
    }

    package mutating func receive(_ bytes: UnsafeRawBufferPointer) throws(GatewayError) -> Step {
        input.append(contentsOf: bytes)
        switch phase {
        case .httpAnswer: return try httpAnswer()
        case .socksMethod: return try socksMethod()
        case .socksAuthentication: return try socksAuthentication()
        case .socksReply: return try socksReply()
        case .open: return .open(leftover: take(input.count))
        }
    }

    // MARK: HTTP CONNECT

    private var targetAuthority: String {
        switch target {
        case .name(let host, let port): return (host.contains(":") ? "[\(host)]" : host) + ":\(port)"
        case .address(let address): return address.description
        }
    }

    private mutating func httpAnswer() throws(GatewayError) -> Step {
        let terminator: [UInt8] = [13, 10, 13, 10]
        // From where the last search stopped (a proxy may trickle its answer), within the limit.
        let from = max(0, searchedUpTo - 3)
        let found = input.indices[from...].dropLast(3).first { input[$0..<$0 + 4].elementsEqual(terminator) }
        searchedUpTo = input.count
        guard let end = found, end + 4 <= Self.maxHeaderSize else {
            if input.count > Self.maxHeaderSize || found != nil {
                throw failure("answered CONNECT with a head longer than \(Self.maxHeaderSize) bytes")
            }
            return .needMore
        }
        let head = String(decoding: input[..<end], as: UTF8.self)
        let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.first.map(String.init) ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            throw failure("is not an HTTP proxy: it answered CONNECT with \(Self.quoted(statusLine))")
        }
        let reason = parts.count > 2 ? " " + Self.printable(String(parts[2])) : ""
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((line[..<colon].lowercased(), String(line[line.index(after: colon)...]).trimmed))
        }
        func header(_ name: String) -> String? { headers.last { $0.name == name }?.value }
        switch status {
        case 200..<300:
            // RFC 9110 §9.3.6: a 2xx answer to CONNECT has no body; one that announces a body is
            // not a tunnel this client can trust.
            if let length = header("content-length"), length != "0" {
                throw failure("answered CONNECT with \(status) and a body (Content-Length: \(Self.printable(length)))")
            }
            if header("transfer-encoding") != nil {
                throw failure("answered CONNECT with \(status) and a body (Transfer-Encoding)")
            }
            _ = take(end + 4)
            phase = .open
            return .open(leftover: take(input.count))
        case 407, 401:
            // 407 is the standard answer; tinyproxy answers wrong credentials with 401.
            let scheme = header("proxy-authenticate").map {
                Self.printable(String($0.split(separator: " ").first ?? ""))
            }
            let asked = scheme.map { " (it asks for \($0) credentials)" } ?? ""
            let given = proxy.username == nil ? "none were given" : "the ones given were refused"
            throw failure("requires authentication: \(status)\(reason)\(asked); \(given)")
        default:
            throw failure("refused the tunnel to \(targetAuthority): HTTP \(status)\(reason)")
        }
    }

    // MARK: SOCKS5

    private mutating func socksMethod() throws(GatewayError) -> Step {
        guard input.count >= 2 else { return .needMore }
        try checkSocksVersion(input[0])
        let method = input[1]
        _ = take(2)
        switch method {
        case 0:
            return try sendSocksRequest()
        case 2 where proxy.username != nil:
            let username = Array((proxy.username ?? "").utf8)
            let password = Array((proxy.password ?? "").utf8)
            guard username.count <= 255, password.count <= 255 else {
                throw failure("cannot take a username or password longer than 255 bytes (RFC 1929)")
            }
            phase = .socksAuthentication
            return .send([1, UInt8(username.count)] + username + [UInt8(password.count)] + password)
        case 0xFF:
            let offered = proxy.username == nil ? "none (no credentials were given)" : "none or username/password"
            throw failure("accepts none of the authentication methods offered: \(offered)")
        default:
            throw failure("chose an authentication method that was not offered (0x\(Self.hex(method)))")
        }
    }

    private mutating func socksAuthentication() throws(GatewayError) -> Step {
        guard input.count >= 2 else { return .needMore }
        let (version, status) = (input[0], input[1])
        _ = take(2)
        guard version == 1 else {
            throw failure("answered the username and password with version byte 0x\(Self.hex(version)), not 0x01")
        }
        guard status == 0 else { throw failure("refused the username or password (status \(status))") }
        return try sendSocksRequest()
    }

    private mutating func sendSocksRequest() throws(GatewayError) -> Step {
        phase = .socksReply
        var request: [UInt8] = [5, 1, 0]  // version, CONNECT, reserved
        let port: UInt16
        switch target {
        case .name(let host, let targetPort):
            let name = Array(host.utf8)
            guard !name.isEmpty, name.count <= 255 else {
                throw failure("cannot take a host name longer than 255 bytes (RFC 1928)")
            }
            request += [3, UInt8(name.count)] + name
            port = targetPort
        case .address(let address):
            var storage = address.storage
            switch address.family {
            case AF_INET:
                request.append(1)
                port = withUnsafeBytes(of: &storage) { raw in
                    let ip = raw.load(as: sockaddr_in.self)
                    request += withUnsafeBytes(of: ip.sin_addr) { Array($0) }
                    return UInt16(bigEndian: ip.sin_port)
                }
            default:
                request.append(4)
                port = withUnsafeBytes(of: &storage) { raw in
                    let ip = raw.load(as: sockaddr_in6.self)
                    request += withUnsafeBytes(of: ip.sin6_addr) { Array($0) }
                    return UInt16(bigEndian: ip.sin6_port)
                }
            }
        }
        request += [UInt8(port >> 8), UInt8(port & 0xFF)]
        return .send(request)
    }

    private mutating func socksReply() throws(GatewayError) -> Step {
        guard input.count >= 5 else { return .needMore }
        try checkSocksVersion(input[0])
        let reply = input[1]
        guard reply == 0 else {
            throw failure("refused the tunnel to \(targetAuthority): \(Self.socksReplyName(reply))")
        }
        let addressLength: Int
        switch input[3] {
        case 1: addressLength = 4
        case 4: addressLength = 16
        case 3: addressLength = 1 + Int(input[4])
        default: throw failure("sent a reply with an unknown address type \(input[3])")
        }
        let length = 4 + addressLength + 2
        guard input.count >= length else { return .needMore }
        _ = take(length)
        phase = .open
        return .open(leftover: take(input.count))
    }

    private func checkSocksVersion(_ version: UInt8) throws(GatewayError) {
        guard version == 5 else {
            throw failure("is not a SOCKS5 proxy: it answered with version byte 0x\(Self.hex(version))")
        }
    }

    /// The name RFC 1928 §6 gives a reply code.
    package static func socksReplyName(_ code: UInt8) -> String {
        switch code {
        case 1: "general SOCKS server failure"
        case 2: "connection not allowed by ruleset"
        case 3: "network unreachable"
        case 4: "host unreachable"
        case 5: "connection refused"
        case 6: "TTL expired"
        case 7: "command not supported"
        case 8: "address type not supported"
        default: "unknown reply code \(code)"
        }
    }

    // MARK: Helpers

    private mutating func take(_ count: Int) -> [UInt8] {
        let taken = Array(input.prefix(count))
        input.removeFirst(min(count, input.count))
        return taken
    }

    private func failure(_ what: String) -> GatewayError {
        GatewayError(.proxy, "the proxy \(proxy.redacted) \(what)")
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    /// Text from the proxy for a message: printable ASCII only, at most 80 characters.
    private static func printable(_ text: String) -> String {
        let shown = text.unicodeScalars.prefix(80).map {
            $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?"
        }
        return String(shown) + (text.unicodeScalars.count > 80 ? "..." : "")
    }

    /// A status line for a message, quoted: printable ASCII only, at most 80 characters.
    private static func quoted(_ text: String) -> String { "'" + printable(text) + "'" }
}

extension String {
    fileprivate var trimmed: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
            let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })
        else { return "" }
        return String(scalars[first...last])
    }
}
