import Glibc

/// The common case of `JSONScanner`, in one tight pass: a compact gateway envelope, or one JSON
/// value, validated to RFC 8259 with the same limits. It answers only when it is sure: anything
/// it does not take on (an error of any kind, an escaped top-level key, a surrogate escape, a
/// wrong-typed envelope field, nesting past 63 levels) returns nil, and the general scanner then
/// decides and words the error. So it never accepts what `JSONScanner` rejects, and what it
/// accepts comes out the same (the fuzzer and `JSONScannerTests` compare the two).
///
/// Why a second scanner: validating every message is the library's promise (a host gets `d` as
/// valid JSON), and the general scanner's per-value bookkeeping made it a quarter of the cost of a
/// small event (docs/ARCHITECTURE.md, "JSON validation").
package struct FastJSONScanner {
    private let base: UnsafePointer<UInt8>
    private let end: Int
    private let maxDepth: Int

    /// A failed step: every position is otherwise at least 0.
    private static let failed = -1

    package init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONScanner.defaultMaxDepth) {
        // An empty buffer may have no address: every read is below `end` (0), so none happens.
        base = UnsafePointer(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) ?? UnsafePointer(bitPattern: 1)!
        end = bytes.count
        self.maxDepth = maxDepth
    }

    /// Whether the buffer is exactly one valid JSON value (whitespace around it allowed); nil when
    /// the general scanner has to decide.
    package func validate() -> Bool? {
        var escaped = false
        let p = skipValue(skipWhitespace(0), depth: 0, escaped: &escaped)
        guard p != Self.failed, skipWhitespace(p) == end else { return nil }
        return true
    }

    /// The envelope of a top-level object, as `JSONScanner.scanEnvelope` reads it; nil when the
    /// general scanner has to decide.
    package func scanEnvelope(knownName: String?) -> Envelope? {
        guard maxDepth >= 1 else { return nil }
        var p = skipWhitespace(0)
        guard p < end, base[p] == ASCII.openBrace else { return nil }
        p = skipWhitespace(p &+ 1)
        var op: Int?
        var e: Int?
        var t: (range: Range<Int>, escaped: Bool)?
        var m: (range: Range<Int>, escaped: Bool)?
        var d: Range<Int>?
        while true {
            guard p < end, base[p] == ASCII.quote else { return nil }
            let keyStart = p &+ 1
            var escaped = false
            p = skipValue(p, depth: 1, escaped: &escaped)
            guard p != Self.failed, !escaped else { return nil }
            let field = Self.field(base + keyStart, count: p &- 1 &- keyStart)
            p = skipWhitespace(p)
            guard p < end, base[p] == ASCII.colon else { return nil }
            p = skipWhitespace(p &+ 1)
            guard p < end else { return nil }
            let valueStart = p
            let isNull = base[p] == UInt8(ascii: "n")
            switch field {
            case .op:
                guard let value = integer(at: &p) else { return nil }
                op = value
            case .e:
                if isNull {
                    var escaped = false
                    p = skipValue(p, depth: 1, escaped: &escaped)  // null, or a bad literal
                    guard p != Self.failed else { return nil }
                    e = nil
                } else {
                    guard let value = integer(at: &p) else { return nil }
                    e = value
                }
            case .t, .m:
                guard isNull || base[p] == ASCII.quote else { return nil }
                var escaped = false
                p = skipValue(p, depth: 1, escaped: &escaped)
                guard p != Self.failed else { return nil }
                let string = isNull ? nil : (range: valueStart..<p, escaped: escaped)
                if field == .t { t = string } else { m = string }
            case .d, .other:
                var escaped = false
                p = skipValue(p, depth: 1, escaped: &escaped)
                guard p != Self.failed else { return nil }
                if field == .d { d = valueStart..<p }
            }
            p = skipWhitespace(p)
            guard p < end else { return nil }
            if base[p] == ASCII.comma {
                p = skipWhitespace(p &+ 1)
                continue
            }
            guard base[p] == ASCII.closeBrace else { return nil }
            p &+= 1
            break
        }
        guard skipWhitespace(p) == end, let op else { return nil }
        return Envelope(
            op: op, t: t.map { text($0.range, escaped: $0.escaped, reusing: knownName) }, e: e,
            m: m.map { text($0.range, escaped: $0.escaped, reusing: nil) }, d: d)
    }

    // MARK: Values

    /// Past one value starting at `start`, whose containers open at nesting level `depth` + 1;
    /// `escaped` is set when a string in it has an escape. All in one loop (keys are strings
    /// followed by a colon): on a small message, calls cost more than the bytes.
    private func skipValue(_ start: Int, depth outerDepth: Int, escaped: inout Bool) -> Int {
        var p = start
        var depth = 0
        var objects: UInt64 = 0  // bit n: level n + 1 is an object
        var expectKey = false
        while true {
            guard p < end else { return Self.failed }
            var byte = base[p]
            if byte == ASCII.quote {
                p &+= 1
                while true {
                    // Eight bytes at a time to the first byte that needs a look.
                    while p &+ 8 <= end {
                        let word = UInt64(littleEndian: UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self))
                        let flags = FastJSONScanner.attentionFlags(word)
                        if flags != 0 {
                            p &+= flags.trailingZeroBitCount &>> 3
                            break
                        }
                        p &+= 8
                    }
                    guard p < end else { return Self.failed }
                    byte = base[p]
                    if byte == ASCII.quote { break }
                    if byte == ASCII.backslash {
                        escaped = true
                        p = skipEscape(p)
                    } else if byte < 0x20 {
                        return Self.failed
                    } else if byte < 0x80 {
                        p &+= 1
                    } else {
                        p = skipNonASCII(p)
                    }
                    guard p != Self.failed else { return Self.failed }
                }
                p &+= 1
                if expectKey {
                    // Compact JSON has the colon and the value right there: no whitespace skip.
                    if p >= end || base[p] != ASCII.colon { p = skipWhitespace(p) }
                    guard p < end, base[p] == ASCII.colon else { return Self.failed }
                    p &+= 1
                    if p >= end || base[p] <= ASCII.space { p = skipWhitespace(p) }
                    expectKey = false
                    continue
                }
            } else {
                guard !expectKey else { return Self.failed }
                switch byte {
                case ASCII.openBrace, ASCII.openBracket:
                    guard depth < 63, outerDepth &+ depth < maxDepth else { return Self.failed }
                    let isObject = byte == ASCII.openBrace
                    let bit: UInt64 = 1 &<< UInt64(depth)
                    objects = isObject ? objects | bit : objects & ~bit
                    depth &+= 1
                    p = skipWhitespace(p &+ 1)
                    guard p < end else { return Self.failed }
                    guard base[p] == byte &+ 2 else {  // '}' and ']' are two past '{' and '['
                        expectKey = isObject
                        continue
                    }
                    p &+= 1
                    depth &-= 1
                case ASCII.minus, ASCII.zero...ASCII.nine:
                    p = skipNumber(p)
                case UInt8(ascii: "t"):
                    p = skipLiteral(p, "true")
                case UInt8(ascii: "f"):
                    p = skipLiteral(p, "false")
                case UInt8(ascii: "n"):
                    p = skipLiteral(p, "null")
                default:
                    return Self.failed
                }
                guard p != Self.failed else { return Self.failed }
            }
            // A value ended at p: close containers until another value is due.
            while true {
                if depth == 0 { return p }
                if p >= end || base[p] <= ASCII.space { p = skipWhitespace(p) }
                guard p < end else { return Self.failed }
                let inObject = objects & (1 &<< UInt64(depth &- 1)) != 0
                byte = base[p]
                if byte == ASCII.comma {
                    p &+= 1
                    if p >= end || base[p] <= ASCII.space { p = skipWhitespace(p) }
                    expectKey = inObject
                    break
                }
                guard byte == (inObject ? ASCII.closeBrace : ASCII.closeBracket) else { return Self.failed }
                p &+= 1
                depth &-= 1
            }
        }
    }

    /// Past one escape; a `\u` escape of a surrogate (valid only as a pair) is left to the general
    /// scanner.
    @inline(never)
    private func skipEscape(_ start: Int) -> Int {
        guard start &+ 1 < end else { return Self.failed }
        switch base[start &+ 1] {
        case ASCII.quote, ASCII.backslash, ASCII.slash, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
            UInt8(ascii: "r"), UInt8(ascii: "t"):
            return start &+ 2
        case UInt8(ascii: "u"):
            guard start &+ 6 <= end else { return Self.failed }
            var unit: UInt32 = 0
            for i in 2..<6 {
                guard let digit = FastJSONScanner.hexValue(base[start &+ i]) else { return Self.failed }
                unit = unit << 4 | digit
            }
            return (0xD800...0xDFFF).contains(unit) ? Self.failed : start &+ 6
        default:
            return Self.failed
        }
    }

    /// Past a run of non-ASCII bytes inside a string, which must be complete UTF-8 characters.
    @inline(never)
    private func skipNonASCII(_ start: Int) -> Int {
        var runEnd = start &+ 1
        while runEnd < end && base[runEnd] >= 0x80 { runEnd &+= 1 }
        let run = UnsafeRawBufferPointer(start: base + start, count: runEnd &- start)
        return UTF8Validator.firstInvalidOffset(run) == nil ? runEnd : Self.failed
    }

    /// Past a number of the RFC 8259 grammar.
    @inline(__always)
    private func skipNumber(_ start: Int) -> Int {
        var p = start
        if base[p] == ASCII.minus { p &+= 1 }
        guard p < end else { return Self.failed }
        if base[p] == ASCII.zero {
            p &+= 1
            if p < end && ASCII.isDigit(base[p]) { return Self.failed }
        } else {
            guard ASCII.isDigit(base[p]) else { return Self.failed }
            p = skipDigits(p &+ 1)
        }
        if p < end && base[p] == ASCII.dot {
            p &+= 1
            guard p < end, ASCII.isDigit(base[p]) else { return Self.failed }
            p = skipDigits(p &+ 1)
        }
        if p < end && base[p] | 0x20 == UInt8(ascii: "e") {
            p &+= 1
            if p < end && (base[p] == ASCII.plus || base[p] == ASCII.minus) { p &+= 1 }
            guard p < end, ASCII.isDigit(base[p]) else { return Self.failed }
            p = skipDigits(p &+ 1)
        }
        return p
    }

    @inline(__always)
    private func skipDigits(_ start: Int) -> Int {
        var p = start
        // Eight bytes at a time: a byte b is flagged when b - 0x30 or b + 0x46 has its high bit
        // set, that is when it is not '0'...'9'. Digits neither borrow nor carry, so the lowest
        // flagged byte is exact.
        while p &+ 8 <= end {
            let word = UInt64(littleEndian: UnsafeRawPointer(base + p).loadUnaligned(as: UInt64.self))
            let flags = ((word &- 0x3030_3030_3030_3030) | (word &+ 0x4646_4646_4646_4646)) & 0x8080_8080_8080_8080
            if flags != 0 { return p &+ flags.trailingZeroBitCount &>> 3 }
            p &+= 8
        }
        while p < end && ASCII.isDigit(base[p]) { p &+= 1 }
        return p
    }

    @inline(__always)
    private func skipLiteral(_ start: Int, _ literal: StaticString) -> Int {
        let count = literal.utf8CodeUnitCount
        guard start &+ count <= end, memcmp(base + start, literal.utf8Start, count) == 0 else { return Self.failed }
        return start &+ count
    }

    @inline(__always)
    private func skipWhitespace(_ start: Int) -> Int {
        var p = start
        while p < end {
            let byte = base[p]
            guard byte <= ASCII.space,
                byte == ASCII.space || byte == ASCII.lineFeed || byte == ASCII.tab || byte == ASCII.carriageReturn
            else { return p }
            p &+= 1
        }
        return p
    }

    // MARK: Envelope fields

    private enum Field { case op, t, e, m, d, other }

    @inline(__always)
    private static func field(_ key: UnsafePointer<UInt8>, count: Int) -> Field {
        if count == 1 {
            switch key[0] {
            case UInt8(ascii: "t"): return .t
            case UInt8(ascii: "d"): return .d
            case UInt8(ascii: "e"): return .e
            case UInt8(ascii: "m"): return .m
            default: return .other
            }
        }
        return count == 2 && key[0] == UInt8(ascii: "o") && key[1] == UInt8(ascii: "p") ? .op : .other
    }

    /// A plain integer that fits in `Int` at `p` (moved past it); nil for anything else.
    private func integer(at p: inout Int) -> Int? {
        let start = p
        let negative = base[start] == ASCII.minus
        guard negative || ASCII.isDigit(base[start]) else { return nil }
        var escaped = false
        let stop = skipValue(start, depth: 1, escaped: &escaped)
        guard stop != Self.failed else { return nil }
        p = stop
        // Accumulated as a negative number, so that Int.min fits; a fraction or an exponent is
        // not a digit.
        var value = 0
        for i in (negative ? start &+ 1 : start)..<stop {
            guard ASCII.isDigit(base[i]) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            let (difference, underflow) = product.subtractingReportingOverflow(Int(base[i] &- ASCII.zero))
            guard !overflow, !underflow else { return nil }
            value = difference
        }
        if negative { return value }
        return value == Int.min ? nil : -value
    }

    /// The text of a validated string value (quotes included in `range`).
    private func text(_ range: Range<Int>, escaped: Bool, reusing known: String?) -> String {
        let contents = UnsafeRawBufferPointer(start: base + (range.lowerBound &+ 1), count: range.count &- 2)
        return JSONString.text(contents, escaped: escaped, reusing: known)
    }

    // MARK: Bytes

    /// The high bit of each byte of `word` (little-endian) that is '"', '\', below 0x20 or 0x80 and
    /// above; zero when there is none. The lowest flagged byte is exact; borrows can flag bytes
    /// after it too.
    @inline(__always)
    static func attentionFlags(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let hasQuote = (quote &- ones) & ~quote
        let hasBackslash = (backslash &- ones) & ~backslash
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl | word) & highs
    }

    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case ASCII.zero...ASCII.nine: UInt32(byte - ASCII.zero)
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
