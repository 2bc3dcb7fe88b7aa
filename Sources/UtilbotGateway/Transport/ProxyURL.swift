/// A proxy to reach the gateway through (docs/PROTOCOL.md, "Proxies"): `http://` (HTTP CONNECT),
/// `https://` (the same inside TLS with the proxy), `socks5://` (SOCKS5, this client resolves
/// the gateway's name) or `socks5h://` (the proxy resolves it), each with optional
/// `user:password@` credentials (percent-encoded).
package struct ProxyURL: Equatable, Sendable {
    package enum Kind: String, Sendable {
        case http
        case https
        case socks5
        case socks5h
    }

    package var kind: Kind
    package var host: String
    package var port: UInt16
    package var username: String?
    package var password: String?

    package init(kind: Kind, host: String, port: UInt16, username: String? = nil, password: String? = nil) {
        self.kind = kind
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }

    /// Parses a proxy URL. A value without a scheme (`proxy:3128`) is taken as `http://`, as curl
    /// and Python's requests take the environment's. Errors never repeat the credentials.
    package init(parsing text: String) throws(GatewayError) {
        var rest = Substring(text)
        var scheme = "http"
        let bytes = Array(text.utf8)
        if let at = (0..<max(0, bytes.count - 2)).first(where: { bytes[$0..<$0 + 3].elementsEqual("://".utf8) }) {
            scheme = String(decoding: bytes[..<at], as: UTF8.self).lowercased()
            rest = Substring(String(decoding: bytes[(at + 3)...], as: UTF8.self))
        }
        switch scheme {
        case "http": kind = .http
        case "https": kind = .https
        case "socks5": kind = .socks5
        case "socks5h": kind = .socks5h
        default:
            throw GatewayError(
                .invalidArgument, "unsupported proxy scheme '\(scheme)' (http, https, socks5 and socks5h are)")
        }
        // The authority ends at the first '/', '?' or '#'; only a lone '/' may follow it.
        let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        guard rest[end...].isEmpty || rest[end...] == "/" else {
            throw GatewayError(.invalidArgument, "a proxy URL has no path, query or fragment")
        }
        var authority = rest[..<end]
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let colon = userinfo.firstIndex(of: ":")
            username = try ProxyURL.percentDecoded(userinfo[..<(colon ?? userinfo.endIndex)])
            password = try colon.map { c throws(GatewayError) in
                try ProxyURL.percentDecoded(userinfo[userinfo.index(after: c)...])
            }
        }
        let defaultPort: UInt16 = [.http: 80, .https: 443][kind] ?? 1080
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw GatewayError(.invalidArgument, "unclosed '[' in the proxy's IPv6 address")
            }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            port = try ProxyURL.port(after, default: defaultPort)
        } else {
            let colon = authority.lastIndex(of: ":")
            host = String(authority[..<(colon ?? authority.endIndex)])
            port = try ProxyURL.port(colon.map { authority[$0...] } ?? "", default: defaultPort)
        }
        guard !host.isEmpty, !host.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw GatewayError(.invalidArgument, "the proxy URL has no valid host")
        }
    }

    /// `scheme://host:port`, for messages: never the credentials.
    package var redacted: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(kind.rawValue)://\(shownHost):\(port)"
    }

    private static func port(_ text: Substring, default defaultPort: UInt16) throws(GatewayError) -> UInt16 {
        guard !text.isEmpty else { return defaultPort }
        guard text.first == ":", let port = UInt16(text.dropFirst()), port > 0 else {
            throw GatewayError(.invalidArgument, "the proxy URL's port must be a number from 1 to 65535")
        }
        return port
    }

    private static func percentDecoded(_ text: Substring) throws(GatewayError) -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let digits = Array(utf8.prefix(2))
            guard digits.count == 2, let high = FastJSONScanner.hexValue(digits[0]),
                let low = FastJSONScanner.hexValue(digits[1])
            else {
                throw GatewayError(.invalidArgument, "a bad percent escape in the proxy's credentials")
            }
            bytes.append(UInt8(high << 4 | low))
            utf8 = utf8.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
