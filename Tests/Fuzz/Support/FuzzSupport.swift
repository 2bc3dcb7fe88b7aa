// Helpers compiled into every fuzz target (scripts/fuzz.sh builds each target as its own
// executable from this file, the target's file and the UtilbotGateway library).

/// Stops the run with a message; libFuzzer reports the trap as a crash and saves the input.
func violation(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant violated: \(message())", file: file, line: line)
}

/// Checks an invariant of the code under test.
func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID,
    line: UInt = #line
) {
    if !condition() {
        violation(message(), file: file, line: line)
    }
}

/// The fuzzer's input as an array (libFuzzer may pass a null pointer for the empty input).
func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// A small deterministic generator (SplitMix64) for chunk sizes and split points, seeded from input bytes.
struct SplitMix {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `range` (which must not be empty).
    mutating func next(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
}

/// Splits `bytes` into consecutive chunks whose sizes come from `seed`. `style` picks the shape: tiny
/// chunks (1-3 bytes), small ones (1-16), mixed (1-300) or single bytes. Empty chunks appear too when
/// `allowEmpty` is set.
func chunks(of bytes: [UInt8], seed: UInt8, allowEmpty: Bool = false) -> [ArraySlice<UInt8>] {
    var random = SplitMix(seed: UInt64(seed) &* 0x1234_5678_9ABC_DEF1 &+ UInt64(bytes.count))
    let maxChunk: Int
    switch seed & 3 {
    case 0: maxChunk = 3
    case 1: maxChunk = 16
    case 2: maxChunk = 300
    default: maxChunk = 1
    }
    var result: [ArraySlice<UInt8>] = []
    var start = 0
    while start < bytes.count {
        let size = random.next(in: (allowEmpty ? 0 : 1)...maxChunk)
        let end = min(bytes.count, start + size)
        result.append(bytes[start..<end])
        start = end
    }
    return result
}

/// Whether `bytes` are valid UTF-8 according to the standard library (the second opinion).
func swiftAcceptsUTF8<C: Collection<UInt8>>(_ bytes: C) -> Bool {
    String(validating: bytes, as: UTF8.self) != nil
}

/// A readable rendering of bytes for failure messages (truncated).
func show<C: Collection<UInt8>>(_ bytes: C, limit: Int = 64) -> String {
    let hexDigits = Array("0123456789abcdef")
    var text = ""
    for byte in bytes.prefix(limit) {
        text.append(hexDigits[Int(byte >> 4)])
        text.append(hexDigits[Int(byte & 0xF)])
    }
    return bytes.count > limit ? text + "...(\(bytes.count) bytes)" : text
}
