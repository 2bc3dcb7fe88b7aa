import COpenSSL

/// The client's side of the opening handshake (RFC 6455 §4.1): the request to send and the
/// check of the server's answer.
package struct Handshake {
    package static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    /// Responses with longer headers are refused (a hostile server cannot make us buffer more).
    package static let defaultMaxHeaderSize = 16384

    package let url: WebSocketURL
    /// The random 16-byte nonce, base64-encoded (§4.1, item 7).
    package let key: String
    package let maxHeaderSize: Int
    /// The HTTP status of the answer, once its status line has arrived.
    package private(set) var status: Int?
    private var buffer: [UInt8] = []

    package init(
        url: WebSocketURL, key: String = Base64.encode(SecureRandom.bytes(count: 16)),
        maxHeaderSize: Int = defaultMaxHeaderSize
    ) {
        self.url = url
        self.key = key
        self.maxHeaderSize = maxHeaderSize
    }

    package func request(userAgent: String, extraHeaders: [(String, String)] = []) -> [UInt8] {
        var text = "GET \(url.resource) HTTP/1.1\r\n"
        text += "Host: \(url.hostHeader)\r\n"
        text += "Upgrade: websocket\r\n"
        text += "Connection: Upgrade\r\n"
        text += "Sec-WebSocket-Key: \(key)\r\n"
        text += "Sec-WebSocket-Version: 13\r\n"
        text += "User-Agent: \(userAgent)\r\n"
        for (name, value) in extraHeaders { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    package static func acceptValue(for key: String) -> String {
        let input = Array((key + guid).utf8)
        var digest = [UInt8](repeating: 0, count: Int(SHA_DIGEST_LENGTH))
        _ = SHA1(input, input.count, &digest)
        return Base64.encode(digest)
    }

    /// Feeds bytes of the server's answer. Returns nil while the headers are incomplete, and the
    /// bytes that followed them (the first frames) once the upgrade is accepted.
    package mutating func receive(_ bytes: UnsafeRawBufferPointer) throws(GatewayError) -> [UInt8]? {
        let searchFrom = max(0, buffer.count - 3)
        buffer.append(contentsOf: bytes)
        guard let end = Self.headerEnd(buffer, from: searchFrom) else {
            if status == nil, let lineEnd = Self.find([13, 10], in: buffer, from: 0) {
                status = Self.parseStatusLine(buffer[..<lineEnd])
            }
            // The limit applies to the head without its blank line, which may still complete with up
            // to 3 more bytes: refuse only once the head can no longer end within the limit, so that
            // the verdict does not depend on how the answer is split into reads.
            if buffer.count > maxHeaderSize + 3 {
                throw GatewayError(.handshake, "handshake response headers exceed \(maxHeaderSize) bytes")
            }
            return nil
        }
        if end > maxHeaderSize {
            throw GatewayError(.handshake, "handshake response headers exceed \(maxHeaderSize) bytes")
        }
        try check(buffer[..<end])
        let leftover = Array(buffer[(end + 4)...])
        buffer = []
        return leftover
    }

    package mutating func receive(_ bytes: [UInt8]) throws(GatewayError) -> [UInt8]? {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(GatewayError) in try receive(raw) } }
        return try result.get()
    }

    private mutating func check(_ head: ArraySlice<UInt8>) throws(GatewayError) {
        var lines = Self.split(head)
        guard !lines.isEmpty, let code = Self.parseStatusLine(lines.removeFirst()[...]) else {
            throw GatewayError(.handshake, "the server's answer is not an HTTP/1.1 status line")
        }
        status = code
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw GatewayError(.handshake, "malformed header line in the handshake response")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingSpaces
            headers.append((name, value))
        }
        func values(_ name: String) -> [String] { headers.filter { $0.name == name }.map(\.value) }
        guard code == 101 else {
            throw GatewayError(.handshake, "the server answered HTTP \(code) instead of 101 Switching Protocols")
        }
        guard values("upgrade").contains(where: { $0.lowercased() == "websocket" }) else {
            throw GatewayError(.handshake, "the 101 answer has no 'Upgrade: websocket' header")
        }
        let connectionTokens = values("connection").flatMap {
            $0.split(separator: ",").map { $0.lowercased().trimmingSpaces }
        }
        guard connectionTokens.contains("upgrade") else {
            throw GatewayError(.handshake, "the 101 answer has no 'Connection: Upgrade' header")
        }
        let accept = values("sec-websocket-accept")
        guard accept.count == 1, accept[0] == Self.acceptValue(for: key) else {
            throw GatewayError(.handshake, "the 101 answer's Sec-WebSocket-Accept does not match our key")
        }
        if let ext = values("sec-websocket-extensions").first, !ext.isEmpty {
            throw GatewayError(.handshake, "the server chose the extension '\(ext)', which we did not offer")
        }
        if let proto = values("sec-websocket-protocol").first, !proto.isEmpty {
            throw GatewayError(.handshake, "the server chose the subprotocol '\(proto)', which we did not offer")
        }
    }

    private static func parseStatusLine(_ line: ArraySlice<UInt8>) -> Int? {
        let prefix = Array("HTTP/1.1 ".utf8)
        guard line.count >= prefix.count + 3, line.prefix(prefix.count).elementsEqual(prefix) else { return nil }
        let digits = line.dropFirst(prefix.count).prefix(3)
        guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let after = line.dropFirst(prefix.count + 3)
        guard after.isEmpty || after.first == UInt8(ascii: " ") else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func headerEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        find([13, 10, 13, 10], in: bytes, from: start)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= needle.count else { return nil }
        var i = start
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0] && bytes[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    private static func split(_ head: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = head.startIndex
        var i = head.startIndex
        while i < head.endIndex {
            if head[i] == 13, i + 1 < head.endIndex, head[i + 1] == 10 {
                lines.append(head[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        lines.append(head[start..<head.endIndex])
        return lines
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
