/// Incremental UTF-8 validation per RFC 3629 for text messages that arrive in pieces.
///
/// RFC 6455 §8.1 asks an endpoint to fail the connection as soon as the bytes of a text message can no
/// longer be valid UTF-8, so `feed` rejects a byte the moment it is impossible: a stray continuation byte,
/// C0/C1 and F5...FF (never valid), an overlong prefix (E0 80...E0 9F, F0 80...F0 8F), a UTF-16 surrogate
/// (ED A0...ED BF) or a code point above U+10FFFF (F4 90...F4 BF), and an ASCII byte where a continuation
/// byte was expected. A sequence that is merely cut off by the end of a fragment is not an error;
/// `isComplete` tells whether the input ends on a character boundary.
///
/// The state is the number of continuation bytes still expected plus the allowed range of the next one
/// (Unicode 15, table 3-7, "well-formed UTF-8 byte sequences"). Runs of ASCII are skipped eight bytes at a
/// time. Nothing is allocated.
package struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current character.
    private var pending: UInt8 = 0
    /// Allowed range of the next continuation byte; only the first continuation byte of E0, ED, F0 and F4
    /// sequences is narrower than 80...BF.
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF
    private var failed = false

    package init() {}

    /// Feeds more bytes; returns false once the input so far can no longer be valid UTF-8 (and stays false).
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        feedLocatingError(bytes) == nil
    }

    /// True when everything fed so far is valid and ends on a character boundary.
    package var isComplete: Bool { !failed && pending == 0 }

    package mutating func reset() {
        self = UTF8Validator()
    }

    /// One-shot check of a complete buffer.
    package static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        firstInvalidOffset(bytes) == nil
    }

    /// The offset of the first byte at which `bytes` stops being valid UTF-8, `bytes.count` when it is
    /// valid but ends inside a character, or nil when it is valid and complete.
    static func firstInvalidOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var validator = UTF8Validator()
        if let offset = validator.feedLocatingError(bytes) {
            return offset
        }
        return validator.pending == 0 ? nil : bytes.count
    }

    /// Like `feed`, but returns the offset within `bytes` of the byte that made the input invalid
    /// (0 when the validator had already failed before this call), or nil when the input is still valid.
    mutating func feedLocatingError(_ bytes: UnsafeRawBufferPointer) -> Int? {
        if failed {
            return 0
        }
        guard let base = bytes.baseAddress else {
            return nil
        }
        let count = bytes.count
        var index = 0
        var pending = self.pending
        var lower = self.lower
        var upper = self.upper

        while index < count {
            if pending == 0 {
                // Fast path: skip ASCII eight bytes at a time.
                while index &+ 8 <= count {
                    let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                    if word & 0x8080_8080_8080_8080 != 0 {
                        break
                    }
                    index &+= 8
                }
                if index >= count {
                    break
                }
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                if byte < 0x80 {
                    index &+= 1
                    continue
                }
                switch byte {
                case 0xC2...0xDF:
                    pending = 1
                    lower = 0x80
                    upper = 0xBF
                case 0xE0:
                    pending = 2
                    lower = 0xA0  // E0 80...E0 9F would be overlong
                    upper = 0xBF
                case 0xE1...0xEC, 0xEE...0xEF:
                    pending = 2
                    lower = 0x80
                    upper = 0xBF
                case 0xED:
                    pending = 2
                    lower = 0x80
                    upper = 0x9F  // ED A0...ED BF would encode a surrogate
                case 0xF0:
                    pending = 3
                    lower = 0x90  // F0 80...F0 8F would be overlong
                    upper = 0xBF
                case 0xF1...0xF3:
                    pending = 3
                    lower = 0x80
                    upper = 0xBF
                case 0xF4:
                    pending = 3
                    lower = 0x80
                    upper = 0x8F  // F4 90 and above would exceed U+10FFFF
                default:
                    // 80...BF without a lead byte, C0/C1 (always overlong), F5...FF (beyond U+10FFFF).
                    failed = true
                    return index
                }
                index &+= 1
            } else {
                let byte = base.load(fromByteOffset: index, as: UInt8.self)
                if byte < lower || byte > upper {
                    failed = true
                    return index
                }
                pending &-= 1
                lower = 0x80
                upper = 0xBF
                index &+= 1
            }
        }
        self.pending = pending
        self.lower = lower
        self.upper = upper
        return nil
    }
}
