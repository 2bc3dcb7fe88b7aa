import Testing
import UtilbotGateway

// MARK: - Helpers

private func isValid(_ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { UTF8Validator.isValid($0) }
}

private func feed(_ validator: inout UTF8Validator, _ bytes: [UInt8]) -> Bool {
    bytes.withUnsafeBytes { validator.feed($0) }
}

/// Feeds `chunks` one after another; returns each feed's result and the final `isComplete`.
private func feedChunks(_ chunks: [[UInt8]]) -> (results: [Bool], complete: Bool) {
    var validator = UTF8Validator()
    let results = chunks.map { feed(&validator, $0) }
    return (results, validator.isComplete)
}

/// Swift's own encoding of `scalar`.
private func utf8(_ scalar: Unicode.Scalar) -> [UInt8] {
    Array(UTF8.encode(scalar)!)
}

/// Reference for early failure, built from Swift's own UTF-8 encoder: the set of all proper prefixes
/// (1 to 3 bytes) of encodings of Unicode scalars. A byte makes input invalid exactly when the bytes of the
/// current character so far are neither a complete encoding nor such a prefix.
private let properPrefixes: Set<[UInt8]> = {
    var prefixes = Set<[UInt8]>()
    // Proper prefixes never include the last byte, which carries the low 6 bits, so every 64th
    // scalar suffices (all encoding-length and surrogate boundaries are multiples of 64).
    for value in stride(from: UInt32(0x80), through: 0x10FFFF, by: 64) {
        guard let scalar = Unicode.Scalar(value) else {
            continue
        }
        let encoded = utf8(scalar)
        for length in 1..<encoded.count {
            prefixes.insert(Array(encoded[..<length]))
        }
    }
    return prefixes
}()

/// Index of the byte at which `bytes` stops being a prefix of valid UTF-8 (nil if it never does), and
/// whether it ends on a character boundary.
private func referenceScan(_ bytes: [UInt8]) -> (errorIndex: Int?, complete: Bool) {
    var current: [UInt8] = []
    for (index, byte) in bytes.enumerated() {
        current.append(byte)
        if String(validating: current, as: UTF8.self) != nil {
            current.removeAll()
        } else if !properPrefixes.contains(current) {
            return (index, false)
        }
    }
    return (nil, current.isEmpty)
}

// MARK: - Valid input

@Test func validSamples() {
    let samples: [[UInt8]] = [
        [],
        Array("plain ASCII, with punctuation! ~\u{7F}\u{0}".utf8),
        [0x24],  // $
        [0xC2, 0x80],  // U+0080, smallest 2-byte
        [0xC2, 0xA2],  // ¢
        [0xDF, 0xBF],  // U+07FF, largest 2-byte
        [0xE0, 0xA0, 0x80],  // U+0800, smallest 3-byte
        [0xE2, 0x82, 0xAC],  // €
        [0xED, 0x9F, 0xBF],  // U+D7FF, just below the surrogates
        [0xEE, 0x80, 0x80],  // U+E000, just above the surrogates
        [0xEF, 0xBB, 0xBF],  // BOM U+FEFF
        [0xEF, 0xBF, 0xBF],  // U+FFFF
        [0xF0, 0x90, 0x80, 0x80],  // U+10000, smallest 4-byte
        [0xF0, 0x9F, 0x98, 0x80],  // 😀
        [0xF4, 0x8F, 0xBF, 0xBF],  // U+10FFFF, the maximum
        Array("Grüße, 你好, こんにちは, 😀👍🏽 and ASCII after".utf8),
    ]
    for sample in samples {
        #expect(isValid(sample), "\(sample)")
        let (results, complete) = feedChunks([sample])
        #expect(results == [true])
        #expect(complete)
    }
}

@Test func everyScalarIsValidWholeAndSplitInTwo() {
    var failures = 0
    for value in UInt32(0)...0x10FFFF {
        guard let scalar = Unicode.Scalar(value) else {
            continue
        }
        let encoded = utf8(scalar)
        if !isValid(encoded) {
            failures += 1
        }
        for split in 1..<max(encoded.count, 1) {
            let (results, complete) = feedChunks([Array(encoded[..<split]), Array(encoded[split...])])
            if results != [true, true] || !complete {
                failures += 1
            }
        }
    }
    #expect(failures == 0)
}

@Test func multiByteSequencesSplitAcrossThreeFeeds() {
    // Every split into three feeds (empty pieces included) of sequences around every boundary.
    let scalars: [UInt32] = [
        0x80, 0xFF, 0x100, 0x7FF, 0x800, 0xFFF, 0x1000, 0xCFFF, 0xD000, 0xD7FF, 0xE000, 0xFEFF, 0xFFFD, 0xFFFF,
        0x10000, 0x1F600, 0x3FFFF, 0x40000, 0xFFFFF, 0x100000, 0x10FFFF,
    ]
    for value in scalars {
        let encoded = utf8(Unicode.Scalar(value)!)
        for first in 0...encoded.count {
            for second in first...encoded.count {
                let chunks = [Array(encoded[..<first]), Array(encoded[first..<second]), Array(encoded[second...])]
                let (results, complete) = feedChunks(chunks)
                #expect(results == [true, true, true], "U+\(String(value, radix: 16)) split \(first) \(second)")
                #expect(complete, "U+\(String(value, radix: 16)) split \(first) \(second)")
            }
        }
    }
}

@Test func validCharacterAtEveryOffsetOfAnASCIIRun() {
    // Exercises the 8-byte fast path at every alignment, before and after the multi-byte character.
    for offset in 0...24 {
        for character in [[0xC3, 0xA9], [0xE2, 0x82, 0xAC], [0xF0, 0x9F, 0x98, 0x80]] as [[UInt8]] {
            let bytes = [UInt8](repeating: 0x61, count: offset) + character + [UInt8](repeating: 0x62, count: 19)
            #expect(isValid(bytes), "offset \(offset)")
        }
    }
}

// MARK: - Invalid input

@Test(
    arguments: [
        // (bytes, index of the first byte that cannot be valid)
        ([0x80], 0),  // stray continuation
        ([0xBF], 0),
        ([0x61, 0x62, 0x80], 2),
        ([0xC2, 0xA9, 0xA9], 2),  // continuation after a complete character
        ([0xC0, 0x80], 0),  // C0 and C1 are always overlong
        ([0xC0, 0xAF], 0),
        ([0xC1, 0xBF], 0),
        ([0xE0, 0x80, 0x80], 1),  // overlong 3-byte
        ([0xE0, 0x9F, 0xBF], 1),
        ([0xF0, 0x80, 0x80, 0x80], 1),  // overlong 4-byte
        ([0xF0, 0x8F, 0xBF, 0xBF], 1),
        ([0xED, 0xA0, 0x80], 1),  // UTF-16 surrogates D800, DBFF, DC00, DFFF
        ([0xED, 0xAF, 0xBF], 1),
        ([0xED, 0xB0, 0x80], 1),
        ([0xED, 0xBF, 0xBF], 1),
        ([0xF4, 0x90, 0x80, 0x80], 1),  // above U+10FFFF
        ([0xF4, 0xBF, 0xBF, 0xBF], 1),
        ([0xF5, 0x80, 0x80, 0x80], 0),  // F5..FF never occur
        ([0xF7, 0xBF, 0xBF, 0xBF], 0),
        ([0xF8, 0x88, 0x80, 0x80, 0x80], 0),
        ([0xFC, 0x84, 0x80, 0x80, 0x80, 0x80], 0),
        ([0xFE], 0),
        ([0xFF], 0),
        ([0xC2, 0x41], 1),  // ASCII where a continuation byte is due
        ([0xE2, 0x82, 0x41], 2),
        ([0xF0, 0x9F, 0x98, 0x41], 3),
        ([0xC2, 0xC2, 0x80], 1),  // a lead byte where a continuation byte is due
        ([0xE2, 0xE2, 0x82, 0xAC], 1),
        ([0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xFF], 9),  // after the fast path
    ] as [([UInt8], Int)])
func invalidSequences(bytes: [UInt8], errorIndex: Int) {
    #expect(!isValid(bytes))
    #expect(referenceScan(bytes).errorIndex == errorIndex)
    // Fed byte by byte, the failure shows on exactly the offending byte and then sticks.
    var validator = UTF8Validator()
    var results: [Bool] = []
    for byte in bytes + [0x41] {
        results.append(feed(&validator, [byte]))
    }
    let expected = (0..<bytes.count + 1).map { $0 < errorIndex }
    #expect(results == expected)
    #expect(!validator.isComplete)
}

@Test func invalidIsDetectedEarlyAndSticks() {
    var validator = UTF8Validator()
    #expect(feed(&validator, [0x68, 0x69, 0xE0]))  // "hi" and the start of a 3-byte character
    #expect(!validator.isComplete)
    #expect(!feed(&validator, [0x80]))  // E0 80 is an overlong prefix: fail now, not at the end
    #expect(!validator.isComplete)
    #expect(!feed(&validator, Array("perfectly valid".utf8)))
    #expect(!feed(&validator, []))
    #expect(!validator.isComplete)
    validator.reset()
    #expect(validator.isComplete)
    #expect(feed(&validator, [0xE0, 0xA0]))
    #expect(feed(&validator, [0x80]))
    #expect(validator.isComplete)

    var surrogate = UTF8Validator()
    #expect(feed(&surrogate, [0xED]))
    #expect(!feed(&surrogate, [0xA0]))

    var tooLarge = UTF8Validator()
    #expect(feed(&tooLarge, [0xF4]))
    #expect(!feed(&tooLarge, [0x90]))
}

@Test func truncatedSequencesAreIncompleteButNotInvalid() {
    let truncated: [[UInt8]] = [
        [0xC2],
        [0xDF],
        [0xE0],
        [0xE0, 0xA0],
        [0xED, 0x9F],
        [0xEF, 0xBF],
        [0xF0],
        [0xF0, 0x90],
        [0xF0, 0x90, 0x80],
        [0xF4, 0x8F, 0xBF],
        Array("abc".utf8) + [0xE2, 0x82],
        Array("12345678".utf8) + [0xF0, 0x9F, 0x98],
    ]
    for bytes in truncated {
        var validator = UTF8Validator()
        #expect(feed(&validator, bytes), "\(bytes)")
        #expect(!validator.isComplete, "\(bytes)")
        #expect(!isValid(bytes), "\(bytes)")
    }
}

@Test func invalidByteAtEveryOffsetOfAnASCIIRun() {
    for offset in 0...24 {
        let bytes = [UInt8](repeating: 0x61, count: offset) + [0xC0, 0x80] + [UInt8](repeating: 0x62, count: 11)
        #expect(!isValid(bytes), "offset \(offset)")
        #expect(referenceScan(bytes).errorIndex == offset)
    }
}

// MARK: - Cross-check against Swift's decoder

@Test func randomBytesAgreeWithSwiftDecoding() {
    var generator = SplitMix64(seed: 0x5EED_0F_C0DEC)
    var validCount = 0
    let iterations = 20_000
    for _ in 0..<iterations {
        var bytes: [UInt8] = []
        let length = Int.random(in: 0...24, using: &generator)
        while bytes.count < length {
            switch Int.random(in: 0..<8, using: &generator) {
            case 0, 1:
                bytes.append(UInt8.random(in: 0...0x7F, using: &generator))
            case 2:
                bytes.append(UInt8.random(in: 0x80...0xBF, using: &generator))
            case 3:
                bytes.append(UInt8.random(in: 0xC0...0xFF, using: &generator))
            case 4:
                // Interesting lead bytes next to their edge-case continuation bytes.
                bytes.append([0xE0, 0xED, 0xF0, 0xF4, 0xC2, 0xC1, 0xF5].randomElement(using: &generator)!)
                bytes.append([0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF].randomElement(using: &generator)!)
            default:
                // A valid character, mostly multi-byte.
                var value = UInt32.random(in: 0x80...0x10FFFF, using: &generator)
                if (0xD800...0xDFFF).contains(value) {
                    value = 0xFFFD
                }
                bytes += utf8(Unicode.Scalar(value)!)
            }
        }
        let expectedValid = String(validating: bytes, as: UTF8.self) != nil
        if expectedValid {
            validCount += 1
        }
        #expect(isValid(bytes) == expectedValid, "\(bytes)")

        // Fed in random chunks, the first `false` comes from the chunk holding the offending byte.
        let reference = referenceScan(bytes)
        #expect((reference.errorIndex == nil && reference.complete) == expectedValid, "\(bytes)")
        var validator = UTF8Validator()
        var start = 0
        var firstFailingChunkEnd: Int?
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 0...9, using: &generator))
            if !feed(&validator, Array(bytes[start..<end])) && firstFailingChunkEnd == nil {
                firstFailingChunkEnd = end
                #expect(reference.errorIndex.map { start <= $0 && $0 < end } == true, "\(bytes) chunk \(start)")
            }
            start = end
        }
        if firstFailingChunkEnd == nil {
            #expect(reference.errorIndex == nil, "\(bytes)")
        }
        #expect(validator.isComplete == expectedValid, "\(bytes)")
    }
    // The generator must produce a fair share of both outcomes for the cross-check to mean something.
    #expect(validCount > iterations / 10)
    #expect(validCount < iterations * 9 / 10)
}
