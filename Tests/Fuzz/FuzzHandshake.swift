// Fuzz target: the handshake response parser (`Handshake.receive`).
//
// Input: byte 0 holds flags, byte 1 the split position, byte 2 the header limit, the rest the response.
// - flags bit 0: the response is a valid 101 head for the handshake's key (which the fuzzer could not
//   guess) followed by the fuzz bytes, which then act as extra header lines, the blank line and leftover;
// - flags bits 1-2: the header limit: the default (16 KiB), or 16-271, 16-1039 or 256-4351 bytes from
//   byte 2, so that the limit is within reach of small inputs.
// The response is fed whole, split in two at the position from byte 1, and (when short) byte by byte.
// Checks: no crash; all three give the same result (same leftover, or the same error); success is
// possible only when the head (up to the first blank line, within the limit) starts with an
// `HTTP/1.1 101` status line and carries `Upgrade: websocket`, `Connection: upgrade` and the right
// `Sec-WebSocket-Accept`, and the leftover is exactly what follows the blank line; a valid head followed
// directly by the blank line always succeeds.
import UtilbotGateway

private let key = "dGhlIHNhbXBsZSBub25jZQ=="
private let accept = Handshake.acceptValue(for: key)
private let url = WebSocketURL(secure: true, host: "gateway.example")
private let validHead = Array(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n"
        .utf8)

private enum Outcome: Equatable {
    case accepted(leftover: [UInt8])
    case failed(GatewayError)
    case incomplete
}

/// Feeds `pieces` in order; after the upgrade is accepted, the rest belongs to the leftover.
private func run(_ pieces: [ArraySlice<UInt8>], maxHeaderSize: Int) -> (Outcome, status: Int?) {
    var handshake = Handshake(url: url, key: key, maxHeaderSize: maxHeaderSize)
    for (index, piece) in pieces.enumerated() {
        do {
            if var leftover = try handshake.receive(Array(piece)) {
                for rest in pieces[(index + 1)...] { leftover += rest }
                return (.accepted(leftover: leftover), handshake.status)
            }
        } catch {
            return (.failed(error), handshake.status)
        }
    }
    return (.incomplete, handshake.status)
}

private func find(_ needle: [UInt8], in bytes: [UInt8]) -> Int? {
    guard bytes.count >= needle.count else { return nil }
    for start in 0...(bytes.count - needle.count) where bytes[start..<(start + needle.count)].elementsEqual(needle) {
        return start
    }
    return nil
}

private func asciiLowercased<C: Collection<UInt8>>(_ bytes: C) -> [UInt8] {
    bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
}

private func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var value = bytes
    while let first = value.first, first == 0x20 || first == 0x09 { value.removeFirst() }
    while let last = value.last, last == 0x20 || last == 0x09 { value.removeLast() }
    return value
}

/// The header lines of `head` as (lowercased name, trimmed value), with the status line first.
private func lines(_ head: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    var result: [ArraySlice<UInt8>] = []
    var start = head.startIndex
    var index = head.startIndex
    while index + 1 < head.endIndex {
        if head[index] == 13 && head[index + 1] == 10 {
            result.append(head[start..<index])
            start = index + 2
            index += 2
        } else {
            index += 1
        }
    }
    result.append(head[start...])
    return result
}

/// Necessary conditions for an accepted upgrade, checked independently of the parser.
private func checkAccepted(_ response: [UInt8], leftover: [UInt8], maxHeaderSize: Int) {
    guard let end = find([13, 10, 13, 10], in: response) else {
        violation("accepted a response without a blank line: \(show(response))")
    }
    require(end <= maxHeaderSize, "accepted a head of \(end) bytes over the limit of \(maxHeaderSize)")
    require(
        leftover.elementsEqual(response[(end + 4)...]),
        "the leftover is not what follows the head: \(show(leftover)) vs \(show(response[(end + 4)...]))")
    let headLines = lines(response[..<end])
    let statusLine = headLines[0]
    let prefix = Array("HTTP/1.1 101".utf8)
    require(
        statusLine.starts(with: prefix) && (statusLine.count == prefix.count || statusLine[prefix.count] == 0x20),
        "accepted a response whose status line is not HTTP/1.1 101: \(show(statusLine))")
    var upgrade = false
    var connection = false
    var acceptCount = 0
    var acceptMatches = false
    for line in headLines.dropFirst() {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            violation("accepted a head with a header line without a colon: \(show(line))")
        }
        let name = asciiLowercased(line[..<colon])
        let value = trimmed(line[(colon + 1)...])
        switch String(decoding: name, as: UTF8.self) {
        case "upgrade":
            upgrade = upgrade || asciiLowercased(value) == Array("websocket".utf8)
        case "connection":
            let tokens = value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            connection = connection || tokens.contains { asciiLowercased(trimmed($0)) == Array("upgrade".utf8) }
        case "sec-websocket-accept":
            acceptCount += 1
            acceptMatches = value.elementsEqual(accept.utf8)
        default:
            break
        }
    }
    require(upgrade, "accepted a response without Upgrade: websocket: \(show(response))")
    require(connection, "accepted a response without Connection: upgrade: \(show(response))")
    require(
        acceptCount == 1 && acceptMatches, "accepted a response without exactly one matching Sec-WebSocket-Accept")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = inputBytes(data, size)
    guard input.count >= 3 else { return 0 }
    let flags = input[0]
    let body = Array(input[3...])
    let response = flags & 1 != 0 ? validHead + body : body
    let limitByte = Int(input[2])
    let maxHeaderSize: Int
    switch (flags >> 1) & 3 {
    case 0: maxHeaderSize = Handshake.defaultMaxHeaderSize
    case 1: maxHeaderSize = 16 + limitByte
    case 2: maxHeaderSize = 16 + limitByte * 4
    default: maxHeaderSize = 256 + limitByte * 16
    }

    let (whole, wholeStatus) = run([response[...]], maxHeaderSize: maxHeaderSize)
    let splitAt = response.count * Int(input[1]) / 255
    let (split, _) = run([response[..<splitAt], response[splitAt...]], maxHeaderSize: maxHeaderSize)
    require(split == whole, "split at \(splitAt) gives \(split), whole gives \(whole): \(show(response))")
    if response.count <= 2048 {
        let (bytewise, _) = run(response.indices.map { response[$0...$0] }, maxHeaderSize: maxHeaderSize)
        require(bytewise == whole, "byte by byte gives \(bytewise), whole gives \(whole): \(show(response))")
    }

    switch whole {
    case .accepted(let leftover):
        require(wholeStatus == 101, "accepted with status \(String(describing: wholeStatus))")
        checkAccepted(response, leftover: leftover, maxHeaderSize: maxHeaderSize)
    case .failed(let error):
        require(error.code == .handshake, "a handshake failure with the code \(error.code)")
    case .incomplete:
        require(find([13, 10, 13, 10], in: response) == nil, "a complete head left the handshake incomplete")
        require(response.count <= maxHeaderSize + 3, "buffered \(response.count) bytes over the limit")
    }
    if flags & 1 != 0 && body.starts(with: [13, 10]) && validHead.count <= maxHeaderSize {
        require(whole == .accepted(leftover: Array(body.dropFirst(2))), "a valid head was refused: \(whole)")
    }
    return 0
}
