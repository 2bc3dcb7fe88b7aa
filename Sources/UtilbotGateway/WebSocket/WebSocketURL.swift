/// A `ws://` or `wss://` URL split into what connecting needs (RFC 6455 §3).
package struct WebSocketURL: Equatable, Sendable, CustomStringConvertible {
    package var secure: Bool
    /// The host as written, without IPv6 brackets.
    package var host: String
    package var port: UInt16
    /// Path and query, never empty ("/" at least). Fragments are not allowed.
    package var resource: String

    package var isDefaultPort: Bool { port == (secure ? 443 : 80) }

    /// The Host header value (§4.1): brackets for IPv6, the port only when not the default.
    package var hostHeader: String {
        let h = host.unicodeScalars.contains(":") ? "[\(host)]" : host
        return isDefaultPort ? h : "\(h):\(port)"
    }

    package var description: String { "\(secure ? "wss" : "ws")://\(hostHeader)\(resource)" }

    package init(secure: Bool, host: String, port: UInt16? = nil, resource: String = "/") {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 443 : 80)
        self.resource = resource
    }

    package init(parsing text: String) throws(GatewayError) {
        func bad(_ why: String) -> GatewayError {
            GatewayError(.invalidArgument, "invalid WebSocket URL '\(text)': \(why)")
        }
        let bytes = Array(text.utf8)
        guard bytes.count <= 8192 else { throw bad("longer than 8192 bytes") }
        guard !bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw bad("contains spaces or control characters")
        }
        let lower = text.lowercased()
        // The delimiters are looked for among Unicode scalars: among Characters, a combining mark after a
        // "/", "#", "@" or ":" would merge with it and hide it.
        let rest: Substring.UnicodeScalarView
        if lower.hasPrefix("wss://") {
            secure = true
            rest = text.dropFirst(6).unicodeScalars
        } else if lower.hasPrefix("ws://") {
            secure = false
            rest = text.dropFirst(5).unicodeScalars
        } else {
            throw bad("the scheme must be ws or wss")
        }
        guard !rest.contains("#") else { throw bad("fragments are not allowed") }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var resource = String(Substring(rest[authorityEnd...]))
        if resource.isEmpty {
            resource = "/"
        } else if resource.unicodeScalars.first == "?" {
            resource = "/" + resource
        }
        self.resource = resource
        guard !authority.contains("@") else { throw bad("user information is not allowed") }
        var hostPart: Substring.UnicodeScalarView
        var portPart: Substring.UnicodeScalarView?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { throw bad("unterminated IPv6 address") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw bad("unexpected characters after the IPv6 address") }
                portPart = after.dropFirst()
            }
            guard hostPart.contains(":") else { throw bad("brackets around a host that is not an IPv6 address") }
        } else {
            if let colon = authority.firstIndex(of: ":") {
                hostPart = authority[..<colon]
                portPart = authority[authority.index(after: colon)...]
            } else {
                hostPart = authority
            }
        }
        guard !hostPart.isEmpty else { throw bad("no host") }
        host = String(Substring(hostPart)).lowercased()
        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ ("0"..."9").contains($0) }),
                let value = Int(String(Substring(portPart))), value > 0, value <= 65535
            else { throw bad("the port must be a number from 1 to 65535") }
            port = UInt16(value)
        } else {
            port = secure ? 443 : 80
        }
        // The limit also holds for the URL as printed ("?" gains a "/", lowercasing can lengthen the
        // host), so that `description` always parses back.
        guard description.utf8.count <= 8192 else { throw bad("longer than 8192 bytes once normalized") }
    }
}
