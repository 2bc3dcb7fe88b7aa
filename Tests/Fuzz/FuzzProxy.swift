// Fuzz target: the proxy handshakes (`ProxyHandshake`: HTTP CONNECT and SOCKS5 answers), the proxy
// URL parser and the no_proxy matcher.
//
// Input: byte 0 picks the handshake (HTTP CONNECT or SOCKS5, with or without credentials, a name or
// an address as target), byte 1 seeds the split; the rest is what the proxy answers. Checks:
// - no crash; an error is `.proxy`, starts with "the proxy " and never holds the password;
// - the answer fed whole and fed in random pieces ends the same way (the same error, or the tunnel
//   open with the same bytes left over, which are a suffix of the answer);
// - the answer, as text, parsed as a proxy URL: its redacted form holds no '@' and no password;
//   `ProxyEnvironment.bypasses` takes it as a host and as a list without crashing.
import UtilbotGateway

private let password = "fuzz-secret-password"

private enum Outcome: Equatable {
    case open([UInt8])
    case failed(String)
    case waiting
}

private func handshake(_ mode: UInt8) -> ProxyHandshake {
    let credentials = mode & 1 == 1
    let proxy = ProxyURL(
        kind: [ProxyURL.Kind.http, .socks5h, .socks5][Int(mode >> 1) % 3], host: "proxy.example", port: 3128,
        username: credentials ? "bot" : nil, password: credentials ? password : nil)
    if proxy.kind == .socks5, let address = try? Resolver.lookup(host: "127.0.0.1", port: 443, numericOnly: true).first
    {
        return ProxyHandshake(proxy: proxy, target: .address(address))
    }
    return ProxyHandshake(proxy: proxy, target: .name("gateway.example", port: 443))
}

private func run(_ mode: UInt8, _ answer: [UInt8], pieces: [Int]) -> Outcome {
    var machine = handshake(mode)
    _ = machine.start()
    var offset = 0
    for size in pieces + [answer.count] {
        let end = min(answer.count, offset + size)
        let chunk = Array(answer[offset..<end])
        offset = end
        let result: Result<ProxyHandshake.Step, GatewayError> = chunk.withUnsafeBytes { raw in
            Result { () throws(GatewayError) in
                var step = try machine.receive(raw)
                // After a send, what the proxy already answered is taken up (see ProxyHandshake).
                while case .send = step { step = try machine.receive(UnsafeRawBufferPointer(start: nil, count: 0)) }
                return step
            }
        }
        switch result {
        case .failure(let error):
            require(error.code == .proxy, "a proxy handshake error with code \(error.code)")
            require(error.message.hasPrefix("the proxy "), "an error that does not name the proxy: \(error.message)")
            require(!error.message.contains(password), "the password in an error: \(error.message)")
            return .failed(error.message)
        case .success(.open(let leftover)):
            // Whatever the split, what is left is the rest of the answer.
            let rest = Array(answer[offset...])
            return .open(leftover + rest)
        case .success(.send), .success(.needMore):
            break
        }
        if offset == answer.count { break }
    }
    return .waiting
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)
    guard bytes.count >= 2 else { return 0 }
    let mode = bytes[0] % 6
    var random = SplitMix(seed: UInt64(bytes[1]))
    let answer = Array(bytes[2...])
    var pieces: [Int] = []
    var total = 0
    while total < answer.count {
        let piece = Int(random.next() % 17) + 1
        pieces.append(piece)
        total += piece
    }
    let whole = run(mode, answer, pieces: [])
    let split = run(mode, answer, pieces: pieces)
    require(whole == split, "fed whole: \(whole); in pieces \(pieces): \(split)")
    if case .open(let leftover) = whole {
        require(answer.suffix(leftover.count).elementsEqual(leftover), "the leftover is not the end of the answer")
    }

    let text = String(decoding: answer, as: UTF8.self)
    if let url = try? ProxyURL(parsing: text) {
        // Made of the scheme, the host and the port only: no credentials can be in it.
        let host = url.host.contains(":") ? "[\(url.host)]" : url.host
        require(url.redacted == "\(url.kind.rawValue)://\(host):\(url.port)", "the redacted URL \(url.redacted)")
    }
    _ = ProxyEnvironment.bypasses(host: text, list: text)
    _ = ProxyEnvironment.bypasses(host: "gateway.example", list: text)
    return 0
}
