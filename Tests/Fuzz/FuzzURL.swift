// Fuzz target: the URL parsers, `WebSocketURL(parsing:)` and `GatewayURL(_:compression:)`.
//
// Input: any bytes, decoded as UTF-8 (invalid sequences become U+FFFD). Checks, for a URL that parses:
// - the port is in 1...65535, the host is not empty, the resource starts with "/" (the scalar: "/" and a
//   combining mark make one Character) and has no fragment;
// - `description` parses back to an equal value (and prints the same again);
// - the opening request it gives has exactly its 8 CRLF-terminated lines (nothing in the URL can inject a
//   header) and carries the resource and the Host header;
// - `GatewayURL`, with and without compression: the resource starts with "/" and has a query naming v;
//   compression is on iff asked for or `compression=zlib` is in the query; when its description is
//   within the 8192-byte input limit, it parses back and applying `GatewayURL` to it changes nothing.
// The text is also parsed with an upper-case scheme, which must give the same URL.
import UtilbotGateway

private func parse(_ text: String) -> WebSocketURL? {
    try? WebSocketURL(parsing: text)
}

/// Checks a parsed URL; `reparse` also requires its description to parse back to it.
private func checkParsed(_ url: WebSocketURL, from text: String, reparse: Bool = true) {
    require(url.port >= 1, "port 0 from '\(text)'")
    require(!url.host.isEmpty, "an empty host from '\(text)'")
    require(
        url.resource.unicodeScalars.first == "/", "the resource '\(url.resource)' from '\(text)' does not start with /")
    require(!url.resource.unicodeScalars.contains("#"), "a fragment in the resource from '\(text)'")
    let description = url.description
    if reparse {
        guard let again = parse(description) else {
            violation("'\(description)' (from '\(text)') does not parse")
        }
        require(again == url, "'\(description)' (from '\(text)') parses as \(again), not \(url)")
        require(
            again.description == description, "the description changes: '\(description)' -> '\(again.description)'")
    }

    let handshake = Handshake(url: url, key: "dGhlIHNhbXBsZSBub25jZQ==")
    let request = handshake.request(userAgent: "fuzz")
    var lines: [ArraySlice<UInt8>] = []
    var start = 0
    for index in request.indices.dropFirst() where request[index - 1] == 13 && request[index] == 10 {
        lines.append(request[start..<(index - 1)])
        start = index + 1
    }
    require(start == request.count, "the request does not end with CRLF")
    require(lines.count == 8 && lines[7].isEmpty, "the request has \(lines.count) lines for '\(text)'")
    require(
        lines.allSatisfy { !$0.contains(13) && !$0.contains(10) }, "a bare CR or LF in the request for '\(text)'")
    require(
        lines[0].elementsEqual("GET \(url.resource) HTTP/1.1".utf8), "the request line for '\(text)' is wrong")
    require(lines[1].elementsEqual("Host: \(url.hostHeader)".utf8), "the Host header for '\(text)' is wrong")
}

/// The query's items, split on Unicode scalars as GatewayURL does (a delimiter followed by a
/// combining mark is still a delimiter).
private func queryItems(_ resource: String) -> [String]? {
    let scalars = resource.unicodeScalars
    guard let mark = scalars.firstIndex(of: "?") else { return nil }
    return scalars[scalars.index(after: mark)...].split(separator: "&").map { String($0) }
}

/// Whether a query item is `name` or `name=...`, compared as bytes.
private func isItem(_ item: String, named name: String) -> Bool {
    let bytes = Array(item.utf8)
    let key = Array(name.utf8)
    return bytes == key || bytes.starts(with: key + [UInt8(ascii: "=")])
}

private func checkGateway(_ text: String, compression requested: Bool) {
    let gateway: GatewayURL
    do {
        gateway = try GatewayURL(text, compression: requested)
    } catch {
        require(error.code == .invalidArgument, "GatewayURL failed with \(error.code)")
        return
    }
    guard let plain = parse(text) else {
        violation("GatewayURL accepted '\(text)', which WebSocketURL refuses")
    }
    let url = gateway.webSocketURL
    require(
        url.secure == plain.secure && url.host == plain.host && url.port == plain.port,
        "GatewayURL changed the scheme, host or port of '\(text)'")
    // GatewayURL adds to the query after parsing, so its URL may exceed WebSocketURL's 8192-byte limit on
    // input (harmless: it is never parsed again); only a URL within the limit must parse back.
    let withinLimit = url.description.utf8.count <= 8192
    checkParsed(url, from: text, reparse: withinLimit)
    guard let items = queryItems(url.resource) else {
        violation("the gateway URL '\(url)' has no query")
    }
    require(items.contains { isItem($0, named: "v") }, "the gateway URL '\(url)' has no v")
    let given = queryItems(plain.resource) ?? []
    let givenCompression = given.last { isItem($0, named: "compression") }
    require(
        gateway.compression == (requested || givenCompression == "compression=zlib"),
        "compression \(gateway.compression) for '\(text)' asked \(requested)")
    guard withinLimit else { return }
    do {
        let again = try GatewayURL(url.description, compression: requested)
        require(again == gateway, "GatewayURL is not idempotent: '\(url)' -> '\(again.webSocketURL)'")
    } catch {
        violation("GatewayURL refuses its own result '\(url)': \(error)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: inputBytes(data, size), as: UTF8.self)
    let result = Result { () throws(GatewayError) in try WebSocketURL(parsing: text) }
    switch result {
    case .success(let url):
        checkParsed(url, from: text)
    case .failure(let error):
        require(error.code == .invalidArgument, "WebSocketURL failed with \(error.code)")
    }

    // The scheme is case-insensitive.
    let lower = text.utf8.prefix(6).map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
    for scheme in ["ws://", "wss://"] where lower.starts(with: scheme.utf8) {
        let upper = scheme.uppercased() + String(text.unicodeScalars.dropFirst(scheme.count))
        require(parse(upper) == (try? result.get()), "'\(upper)' and '\(text)' parse differently")
    }

    checkGateway(text, compression: false)
    checkGateway(text, compression: true)
    return 0
}
