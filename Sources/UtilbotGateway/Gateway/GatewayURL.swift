/// The gateway URL as the session uses it: the host's URL kept as given, with `v=1` added when
/// the query has no `v`, and `compression=zlib` added when compression is asked for and the
/// query does not name a compression already. A `compression=zlib` in the given query turns
/// compression on.
package struct GatewayURL: Equatable, Sendable {
    package static let defaultURL = "wss://gateway.utilbot.co/?v=1"

    package let webSocketURL: WebSocketURL
    package let compression: Bool

    package init(_ text: String, compression requested: Bool) throws(GatewayError) {
        var url = try WebSocketURL(parsing: text)
        // Split on Unicode scalars and compare bytes: as Characters, a delimiter followed by a
        // combining mark would not be a delimiter (found by the URL fuzzer).
        let scalars = url.resource.unicodeScalars
        let mark = scalars.firstIndex(of: "?")
        let path = String(scalars[..<(mark ?? scalars.endIndex)])
        let rest = mark.map { String(scalars[scalars.index(after: $0)...]) } ?? ""
        var query = rest.unicodeScalars.split(separator: "&").map { String($0) }
        func value(_ name: String) -> String? {
            let key = Array(name.utf8)
            return query.last { item in
                let bytes = Array(item.utf8)
                return bytes == key || bytes.starts(with: key + [UInt8(ascii: "=")])
            }.map { item in String(decoding: Array(item.utf8).dropFirst(key.count + 1), as: UTF8.self) }
        }
        if value("v") == nil { query.insert("v=1", at: 0) }
        switch value("compression") {
        case nil:
            if requested { query.append("compression=zlib") }
            compression = requested
        case "zlib":
            compression = true
        case let other?:
            throw GatewayError(.invalidArgument, "unsupported compression '\(other)' in the URL (only zlib exists)")
        }
        url.resource = path + "?" + query.joined(separator: "&")
        webSocketURL = url
    }
}
