import Glibc

/// The proxy the environment asks for, read as curl and Python's requests read it
/// (docs/PROTOCOL.md, "Proxies"): `https_proxy`/`HTTPS_PROXY` for wss, `http_proxy`/`HTTP_PROXY`
/// for ws, then `all_proxy`/`ALL_PROXY`; the lowercase name first. `no_proxy`/`NO_PROXY` lists
/// where to go direct: `*`, host names (which also match their subdomains; a leading dot is the
/// same), IP addresses and CIDR ranges, separated by commas or spaces; a `:port` on an entry is
/// ignored. An empty variable counts as unset.
package enum ProxyEnvironment {
    /// The proxy for a connection to `host` (`secure`: wss), or nil to go direct. Throws when the
    /// variable that applies is not a proxy URL this library speaks (its name in the message).
    package static func proxy(
        host: String, secure: Bool, lookup: (String) -> String? = ProxyEnvironment.variable
    ) throws(GatewayError) -> ProxyURL? {
        let names =
            (secure ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy", "HTTP_PROXY"]) + ["all_proxy", "ALL_PROXY"]
        guard let name = names.first(where: { lookup($0) != nil }), let value = lookup(name) else { return nil }
        if let list = lookup("no_proxy") ?? lookup("NO_PROXY"), bypasses(host: host, list: list) { return nil }
        do {
            return try ProxyURL(parsing: value)
        } catch {
            throw GatewayError(.invalidArgument, "\(name): \(error.message)")
        }
    }

    /// A variable's value; nil when unset or empty.
    package static func variable(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// Whether `list` (a no_proxy value) sends `host` direct.
    package static func bypasses(host: String, list: String) -> Bool {
        let target = normalized(host)
        let targetAddress = IPAddress(target)
        for rawEntry in list.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
            var entry = normalized(String(rawEntry))
            if entry == "*" { return true }
            if let slash = entry.firstIndex(of: "/") {
                if let targetAddress, let network = IPAddress(String(entry[..<slash])),
                    let bits = Int(entry[entry.index(after: slash)...]),
                    targetAddress.isIn(network: network, prefixLength: bits)
                {
                    return true
                }
                continue
            }
            if let address = IPAddress(entry) {
                if address == targetAddress { return true }
                continue
            }
            // A name never matches an address (".0.1" is not a suffix of 10.0.0.1).
            if targetAddress != nil { continue }
            // host:port: the port is ignored (an IPv6 address was taken above).
            if let colon = entry.lastIndex(of: ":") { entry = String(entry[..<colon]) }
            if entry.hasPrefix(".") { entry.removeFirst() }
            guard !entry.isEmpty else { continue }
            if target == entry || target.hasSuffix("." + entry) { return true }
        }
        return false
    }

    /// Lowercase, without IPv6 brackets or a trailing dot.
    private static func normalized(_ name: String) -> String {
        var text = name.lowercased()
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if text.hasSuffix(".") && text.count > 1 { text.removeLast() }
        return text
    }
}

/// An IPv4 or IPv6 address as its bytes, for no_proxy's comparisons.
private struct IPAddress: Equatable {
    var bytes: [UInt8]

    init?(_ text: String) {
        if text.contains(":") {
            var address = in6_addr()
            guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &address) { Array($0) }
        } else {
            var address = in_addr()
            guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
            bytes = withUnsafeBytes(of: &address) { Array($0) }
        }
    }

    func isIn(network: IPAddress, prefixLength: Int) -> Bool {
        guard bytes.count == network.bytes.count, prefixLength >= 0, prefixLength <= bytes.count * 8 else {
            return false
        }
        for bit in 0..<prefixLength {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if bytes[bit / 8] & mask != network.bytes[bit / 8] & mask { return false }
        }
        return true
    }
}
