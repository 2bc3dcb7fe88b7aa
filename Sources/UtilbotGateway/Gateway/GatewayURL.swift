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
        let parts = url.resource.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts[0])
        var query = parts.count > 1 ? parts[1].split(separator: "&").map(String.init) : []
        func value(_ name: String) -> String? {
            query.last { $0 == name || $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
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
