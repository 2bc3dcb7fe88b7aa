// Fuzz target: the inflater followed by the envelope scanner, as a `compression=zlib` connection uses them.
//
// Input: byte 0 gives n = byte % 8, then n little-endian 16-bit message lengths, then the compressed bytes,
// cut into n + 1 messages: n of the given lengths (clamped to what is left; a zero length is an empty
// message) and the rest. One `Inflater(maxMessageSize: 1 << 20)` inflates the messages in order; each
// output goes to `JSONScanner.scanEnvelope`. Checks:
// - no crash; no output over the cap; errors are `.decompress` or `.messageTooLarge`; an empty message is
//   refused with `.decompress`;
// - a differential on the stream: when every message inflates, a second inflater given all the bytes as
//   one message produces their outputs concatenated (or refuses with `.messageTooLarge` exactly when the
//   total exceeds the cap); when the whole inflates, every message does. A payload split over messages
//   comes out with its last part: the whole ends incomplete exactly when the last message does.
import UtilbotGateway

private let cap = 1 << 20

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = inputBytes(data, size)
    guard let first = input.first else { return 0 }
    let count = Int(first % 8)
    guard input.count >= 1 + 2 * count else { return 0 }
    var lengths: [Int] = []
    for i in 0..<count {
        lengths.append(Int(input[1 + 2 * i]) | Int(input[2 + 2 * i]) << 8)
    }
    let stream = Array(input[(1 + 2 * count)...])
    var messages: [ArraySlice<UInt8>] = []
    var start = 0
    for length in lengths {
        let end = min(stream.count, start + length)
        messages.append(stream[start..<end])
        start = end
    }
    messages.append(stream[start...])

    let inflater: Inflater
    do {
        inflater = try Inflater(maxMessageSize: cap)
    } catch {
        violation("Inflater.init failed: \(error)")
    }
    var outputs: [UInt8] = []
    var allInflated = true
    var incomplete = false
    for message in messages {
        let result = inflate(message, with: inflater)
        switch result {
        case .success(nil):
            require(!message.isEmpty, "an empty message was taken as part of a payload")
            incomplete = true
        case .success(let output?):
            require(!message.isEmpty, "an empty message inflated")
            require(output.count <= cap, "inflated to \(output.count) bytes, over the cap")
            outputs += output
            incomplete = false
            // What a connection does next with the message; it must not crash.
            _ = try? JSONScanner.scanEnvelope(output)
        case .failure(let error):
            if message.isEmpty {
                require(error.code == .decompress, "an empty message refused with \(error.code)")
                continue  // zlib never saw it: the stream goes on
            }
            require(
                error.code == .decompress || error.code == .messageTooLarge, "inflate failed with \(error.code)")
            allInflated = false
        }
    }

    guard !stream.isEmpty else { return 0 }
    let single: Inflater
    do {
        single = try Inflater(maxMessageSize: cap)
    } catch {
        violation("Inflater.init failed: \(error)")
    }
    let whole = inflate(stream[...], with: single)
    switch whole {
    case .success(nil):
        require(allInflated, "the stream inflates in one message but not in \(messages.count)")
        require(incomplete, "the stream as one message is incomplete, its last message completes it")
    case .success(let output?):
        require(output.count <= cap, "inflated to \(output.count) bytes, over the cap")
        require(allInflated, "the stream inflates in one message but not in \(messages.count)")
        require(!incomplete, "the stream as one message is complete, its last message leaves it incomplete")
        require(output == outputs, "one message gives \(output.count) bytes, \(messages.count) give \(outputs.count)")
    case .failure(let error):
        require(
            error.code == .decompress || error.code == .messageTooLarge, "inflate failed with \(error.code)")
        if allInflated {
            require(
                // An incomplete last payload counts toward the single message's cap, not the outputs.
                error.code == .messageTooLarge && (outputs.count > cap || incomplete),
                "\(messages.count) messages inflate to \(outputs.count) bytes, one message fails: \(error)")
        }
    }
    return 0
}

/// One message through the inflater: its payload's bytes, nil while the payload is incomplete.
private func inflate(_ message: ArraySlice<UInt8>, with inflater: Inflater) -> Result<[UInt8]?, GatewayError> {
    message.withUnsafeBytes { bytes in
        Result { () throws(GatewayError) -> [UInt8]? in try inflater.inflateIntoBuffer(bytes).map { Array($0) } }
    }
}
