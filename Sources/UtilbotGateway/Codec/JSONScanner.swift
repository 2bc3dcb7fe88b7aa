import Glibc

/// The fields of a Utilbot gateway message, read from the top-level object.
///
/// `d` is not decoded: it is the byte range of its raw JSON text inside the scanned buffer, so it can be
/// handed on (or parsed later) without a copy.
package struct Envelope: Equatable, Sendable {
    /// The opcode; required, a plain JSON integer (no fraction, no exponent) that fits in `Int`.
    package var op: Int
    /// The event name, unescaped; nil when absent or JSON null.
    package var t: String?
    /// The error code of an error message; nil when absent or JSON null.
    package var e: Int?
    /// The error message, unescaped; nil when absent or JSON null.
    package var m: String?
    /// Byte offsets of the raw JSON value of "d" inside the input (a `null` value included); nil when absent.
    package var d: Range<Int>?

    package init(op: Int, t: String? = nil, e: Int? = nil, m: String? = nil, d: Range<Int>? = nil) {
        self.op = op
        self.t = t
        self.e = e
        self.m = m
        self.d = d
    }
}

/// A single-pass, non-recursive JSON validator (RFC 8259) that can also pick out the gateway envelope.
///
/// Accepted: exactly one JSON value of any type surrounded by optional whitespace (space, tab, LF, CR).
/// Rejected: anything else, notably a byte order mark, comments, trailing commas, NaN/Infinity, single
/// quotes, numbers outside the grammar (leading zeros, `+1`, `.5`, `1.`), raw control characters in
/// strings, bad escapes, unpaired surrogate escapes (`"\ud800"`), invalid UTF-8 inside strings and
/// containers nested deeper than `maxDepth`. Numbers are checked against the grammar only, so `1e999999`
/// and integers of any length are valid JSON.
///
/// Nesting is tracked with a depth counter and a bit stack (one bit per level, held inline for the first
/// 64 levels), never with recursion, so hostile input such as 100 000 `[` fails with an error.
///
/// Errors are `GatewayError(.invalidJSON, "invalid JSON at byte N: ...")` for syntax errors and
/// `GatewayError(.invalidJSON, "invalid envelope...")` for a well-formed document that is not a valid
/// envelope; syntax errors are reported first, since the document is validated to its end before the
/// envelope fields are checked.
package enum JSONScanner {
    package static let defaultMaxDepth = 64

    /// Validates `bytes` as one complete JSON document.
    package static func validate(
        _ bytes: UnsafeRawBufferPointer,
        maxDepth: Int = defaultMaxDepth
    ) throws(GatewayError) {
        if FastJSONScanner(bytes, maxDepth: maxDepth).validate() == true { return }
        var scanner = Scanner(bytes, maxDepth: maxDepth, envelope: false)
        try scanner.run()
    }

    /// Validates `bytes` as one complete JSON document whose top-level value is an object, and reads the
    /// top-level keys op, t, e, m and d.
    ///
    /// Keys are compared after unescaping (`"\u006fp"` is op); when a key occurs twice the last one wins;
    /// unknown keys and keys of nested objects are ignored. op must be a plain integer: `"5"`, `1.5`, `1e2`
    /// and `1.0` are rejected even where their value is integral. t and m must be strings or null, e an
    /// integer or null.
    ///
    /// When t equals `knownName` (a caller's cache of the name it saw last), that string is
    /// returned instead of a new one: event names repeat, and a name longer than 15 bytes would
    /// otherwise cost an allocation per message.
    ///
    /// `fastPath: false` skips `FastJSONScanner`, for tests that compare the two.
    package static func scanEnvelope(
        _ bytes: UnsafeRawBufferPointer,
        maxDepth: Int = defaultMaxDepth,
        knownName: String? = nil,
        fastPath: Bool = true
    ) throws(GatewayError) -> Envelope {
        if fastPath, let envelope = FastJSONScanner(bytes, maxDepth: maxDepth).scanEnvelope(knownName: knownName) {
            return envelope
        }
        var scanner = Scanner(bytes, maxDepth: maxDepth, envelope: true)
        try scanner.run()
        return try scanner.makeEnvelope(knownName: knownName)
    }

    package static func validate(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(GatewayError) {
        let result: Result<Void, GatewayError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(GatewayError) in try validate(buffer, maxDepth: maxDepth) }
        }
        try result.get()
    }

    package static func scanEnvelope(
        _ bytes: ArraySlice<UInt8>,
        maxDepth: Int = defaultMaxDepth,
        knownName: String? = nil,
        fastPath: Bool = true
    ) throws(GatewayError) -> Envelope {
        // The fast path first, outside the `Result` the general one needs: wrapping an envelope
        // in it copies the envelope through generic code, which costs more than a scan.
        if fastPath,
            let envelope = bytes.withUnsafeBytes({
                FastJSONScanner($0, maxDepth: maxDepth).scanEnvelope(knownName: knownName)
            })
        {
            return envelope
        }
        let result: Result<Envelope, GatewayError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(GatewayError) in
                try scanEnvelope(buffer, maxDepth: maxDepth, knownName: knownName, fastPath: false)
            }
        }
        return try result.get()
    }

    package static func scanEnvelope(
        _ bytes: [UInt8],
        maxDepth: Int = defaultMaxDepth,
        knownName: String? = nil,
        fastPath: Bool = true
    ) throws(GatewayError) -> Envelope {
        try scanEnvelope(bytes[...], maxDepth: maxDepth, knownName: knownName, fastPath: fastPath)
    }
}

// MARK: - Scanner

enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let one = UInt8(ascii: "1")
    static let nine = UInt8(ascii: "9")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let lineFeed = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")

    static func isDigit(_ byte: UInt8) -> Bool { byte &- zero < 10 }
}

/// One bit per nesting level: set for an object, clear for an array.
private struct ContainerStack {
    private var inline: UInt64 = 0
    private var overflow: [UInt64] = []

    /// Records the container kind of level `depth` (1-based).
    mutating func set(depth: Int, isObject: Bool) {
        let level = depth - 1
        if level < 64 {
            let mask: UInt64 = 1 << UInt64(level)
            inline = isObject ? inline | mask : inline & ~mask
            return
        }
        let word = (level - 64) >> 6
        let mask: UInt64 = 1 << UInt64((level - 64) & 63)
        if word == overflow.count {
            overflow.append(0)
        }
        overflow[word] = isObject ? overflow[word] | mask : overflow[word] & ~mask
    }

    func isObject(depth: Int) -> Bool {
        let level = depth - 1
        if level < 64 {
            return inline & (1 << UInt64(level)) != 0
        }
        return overflow[(level - 64) >> 6] & (1 << UInt64((level - 64) & 63)) != 0
    }
}

private enum Field {
    case op, t, e, m, d

    var name: String {
        switch self {
        case .op: "op"
        case .t: "t"
        case .e: "e"
        case .m: "m"
        case .d: "d"
        }
    }
}

private enum ValueKind {
    case string, integer, number, bool, null, object, array

    var article: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .number: "a number with a fraction or exponent"
        case .bool: "a boolean"
        case .null: "null"
        case .object: "an object"
        case .array: "an array"
        }
    }
}

/// Where a top-level field's value sits in the input.
private struct FieldValue {
    var kind: ValueKind
    /// The raw JSON text of the value (quotes included for strings).
    var range: Range<Int>
    /// For strings: whether the contents contain a backslash escape.
    var escaped: Bool
}

private struct Scanner {
    let bytes: UnsafeRawBufferPointer
    let count: Int
    let maxDepth: Int
    /// Whether to record the top-level fields op, t, e, m and d.
    let envelope: Bool

    var pos = 0
    var depth = 0
    var stack = ContainerStack()

    // Envelope state.
    var topLevelIsObject = false
    /// The field whose value starts at `fieldValueStart`, while that value (at depth 1) is being scanned.
    var currentField: Field?
    var fieldValueStart = 0
    /// Kind of the value completed last, and for a string whether it had escapes.
    var lastKind = ValueKind.null
    var lastEscaped = false
    var fields: (op: FieldValue?, t: FieldValue?, e: FieldValue?, m: FieldValue?, d: FieldValue?)

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int, envelope: Bool) {
        self.bytes = bytes
        self.count = bytes.count
        self.maxDepth = maxDepth
        self.envelope = envelope
    }

    // MARK: Structure

    mutating func run() throws(GatewayError) {
        skipWhitespace()
        topLevelIsObject = pos < count && bytes[pos] == ASCII.openBrace
        valueLoop: while true {
            // A value is expected at `pos` (whitespace already skipped).
            guard pos < count else {
                throw error("expected a value")
            }
            switch bytes[pos] {
            case ASCII.openBrace:
                try open(isObject: true)
                skipWhitespace()
                if pos < count && bytes[pos] == ASCII.closeBrace {
                    pos += 1
                    close(kind: .object)
                } else {
                    try scanKey(expecting: "a string key or '}'")
                    continue valueLoop
                }
            case ASCII.openBracket:
                try open(isObject: false)
                skipWhitespace()
                if pos < count && bytes[pos] == ASCII.closeBracket {
                    pos += 1
                    close(kind: .array)
                } else {
                    continue valueLoop
                }
            case ASCII.quote:
                lastEscaped = try scanString()
                lastKind = .string
            case ASCII.minus, ASCII.zero...ASCII.nine:
                lastKind = try scanNumber() ? .integer : .number
            case UInt8(ascii: "t"):
                try scanLiteral("true")
                lastKind = .bool
            case UInt8(ascii: "f"):
                try scanLiteral("false")
                lastKind = .bool
            case UInt8(ascii: "n"):
                try scanLiteral("null")
                lastKind = .null
            default:
                throw error("expected a value")
            }

            // A value ends at `pos`: record it if it is a top-level field, then close containers until
            // another value is due.
            while true {
                if depth == 1, let field = currentField {
                    record(field)
                }
                skipWhitespace()
                if depth == 0 {
                    if pos == count {
                        return
                    }
                    throw error("expected end of input after the top-level value")
                }
                let byte: UInt8? = pos < count ? bytes[pos] : nil
                if stack.isObject(depth: depth) {
                    if byte == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        try scanKey(expecting: "a string key")
                        continue valueLoop
                    }
                    if byte == ASCII.closeBrace {
                        pos += 1
                        close(kind: .object)
                        continue
                    }
                    throw error("expected ',' or '}' after an object member")
                } else {
                    if byte == ASCII.comma {
                        pos += 1
                        skipWhitespace()
                        continue valueLoop
                    }
                    if byte == ASCII.closeBracket {
                        pos += 1
                        close(kind: .array)
                        continue
                    }
                    throw error("expected ',' or ']' after an array element")
                }
            }
        }
    }

    mutating func open(isObject: Bool) throws(GatewayError) {
        guard depth < maxDepth else {
            throw error("nesting deeper than the limit of \(maxDepth)", found: false)
        }
        depth += 1
        stack.set(depth: depth, isObject: isObject)
        pos += 1
    }

    mutating func close(kind: ValueKind) {
        depth -= 1
        lastKind = kind
        lastEscaped = false
    }

    /// Scans `"key"` `:` and the whitespace before the value; `pos` is at the expected opening quote.
    mutating func scanKey(expecting expected: String) throws(GatewayError) {
        guard pos < count && bytes[pos] == ASCII.quote else {
            throw error("expected \(expected)")
        }
        let start = pos
        let escaped = try scanString()
        let topLevelKey = envelope && depth == 1
        if topLevelKey {
            currentField = matchField(start + 1..<pos - 1, escaped: escaped)
        }
        skipWhitespace()
        guard pos < count && bytes[pos] == ASCII.colon else {
            throw error("expected ':' after an object key")
        }
        pos += 1
        skipWhitespace()
        if topLevelKey {
            fieldValueStart = pos
        }
    }

    mutating func skipWhitespace() {
        while pos < count {
            switch bytes[pos] {
            case ASCII.space, ASCII.tab, ASCII.lineFeed, ASCII.carriageReturn:
                pos += 1
            default:
                return
            }
        }
    }

    // MARK: Scalars

    mutating func scanLiteral(_ literal: StaticString) throws(GatewayError) {
        let start = pos
        let text = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        for (offset, expected) in text.enumerated() {
            guard start + offset < count && bytes[start + offset] == expected else {
                pos = start + offset
                throw error("expected the literal '\(literal)'")
            }
        }
        pos = start + text.count
    }

    /// Scans a number per the RFC 8259 grammar; returns true when it has neither fraction nor exponent.
    mutating func scanNumber() throws(GatewayError) -> Bool {
        if bytes[pos] == ASCII.minus {
            pos += 1
        }
        guard pos < count && ASCII.isDigit(bytes[pos]) else {
            throw error("expected a digit")
        }
        if bytes[pos] == ASCII.zero {
            pos += 1
            if pos < count && ASCII.isDigit(bytes[pos]) {
                throw error("leading zeros are not allowed", found: false)
            }
        } else {
            skipDigits()
        }
        var integer = true
        if pos < count && bytes[pos] == ASCII.dot {
            integer = false
            pos += 1
            guard pos < count && ASCII.isDigit(bytes[pos]) else {
                throw error("expected a digit after '.'")
            }
            skipDigits()
        }
        if pos < count && (bytes[pos] | 0x20) == UInt8(ascii: "e") {
            integer = false
            pos += 1
            if pos < count && (bytes[pos] == ASCII.plus || bytes[pos] == ASCII.minus) {
                pos += 1
            }
            guard pos < count && ASCII.isDigit(bytes[pos]) else {
                throw error("expected a digit in the exponent")
            }
            skipDigits()
        }
        return integer
    }

    mutating func skipDigits() {
        while pos < count && ASCII.isDigit(bytes[pos]) {
            pos += 1
        }
    }

    /// Scans a string starting at the opening quote; returns whether it contains escapes.
    mutating func scanString() throws(GatewayError) -> Bool {
        let start = pos
        pos += 1
        var escaped = false
        while true {
            // Fast path: 8 bytes at a time, straight to the first '"', '\', control character or
            // non-ASCII byte (the lowest flagged byte of a word is exact; only bytes after it can be
            // flagged falsely).
            while pos + 8 <= count {
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt64.self))
                let flags = FastJSONScanner.attentionFlags(word)
                if flags != 0 {
                    pos += flags.trailingZeroBitCount >> 3
                    break
                }
                pos += 8
            }
            guard pos < count else {
                throw error("expected '\"' to close the string that starts at byte \(start)")
            }
            let byte = bytes[pos]
            if byte == ASCII.quote {
                pos += 1
                return escaped
            }
            if byte == ASCII.backslash {
                escaped = true
                try scanEscape()
                continue
            }
            if byte < 0x20 {
                throw error("control characters must be escaped in strings")
            }
            if byte < 0x80 {
                pos += 1
                continue
            }
            // A run of non-ASCII bytes must consist of complete UTF-8 characters.
            let runStart = pos
            var runEnd = pos + 1
            while runEnd < count && bytes[runEnd] >= 0x80 {
                runEnd += 1
            }
            let run = UnsafeRawBufferPointer(rebasing: bytes[runStart..<runEnd])
            if let bad = UTF8Validator.firstInvalidOffset(run) {
                pos = runStart + bad
                throw error(bad == run.count ? "truncated UTF-8 sequence in string" : "invalid UTF-8 in string")
            }
            pos = runEnd
        }
    }

    /// Scans one escape sequence starting at the backslash, including a surrogate pair's second half.
    mutating func scanEscape() throws(GatewayError) {
        let start = pos
        pos += 1
        guard pos < count else {
            throw error("expected an escape character after '\\'")
        }
        switch bytes[pos] {
        case ASCII.quote, ASCII.backslash, ASCII.slash, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
            UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos += 1
        case UInt8(ascii: "u"):
            pos += 1
            let unit = try scanHex4()
            switch unit {
            case 0xD800...0xDBFF:
                guard pos + 1 < count && bytes[pos] == ASCII.backslash && bytes[pos + 1] == UInt8(ascii: "u") else {
                    pos = start
                    throw error("unpaired high surrogate escape", found: false)
                }
                let secondStart = pos
                pos += 2
                let low = try scanHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    pos = secondStart
                    throw error("expected a low surrogate escape after a high surrogate", found: false)
                }
            case 0xDC00...0xDFFF:
                pos = start
                throw error("unpaired low surrogate escape", found: false)
            default:
                break
            }
        default:
            throw error("invalid escape character; expected one of \" \\ / b f n r t u")
        }
    }

    mutating func scanHex4() throws(GatewayError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard pos < count, let digit = FastJSONScanner.hexValue(bytes[pos]) else {
                throw error("expected a hex digit in a '\\u' escape")
            }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    // MARK: Errors

    /// An error at `pos`; with `found`, the message also names what is there.
    func error(_ expected: String, found: Bool = true) -> GatewayError {
        let suffix = found ? ", found \(describeByte(at: pos))" : ""
        return GatewayError(.invalidJSON, "invalid JSON at byte \(pos): \(expected)\(suffix)")
    }

    func describeByte(at offset: Int) -> String {
        guard offset < count else {
            return "end of input"
        }
        let byte = bytes[offset]
        if byte > 0x20 && byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))'"
        }
        return "byte 0x" + Scanner.hex2(byte)
    }

    static func hex2(_ byte: UInt8) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
    }

    // MARK: Envelope

    mutating func record(_ field: Field) {
        let value = FieldValue(kind: lastKind, range: fieldValueStart..<pos, escaped: lastEscaped)
        switch field {
        case .op: fields.op = value
        case .t: fields.t = value
        case .e: fields.e = value
        case .m: fields.m = value
        case .d: fields.d = value
        }
        currentField = nil
    }

    /// Identifies a key by its unescaped contents (which have been validated).
    func matchField(_ contents: Range<Int>, escaped: Bool) -> Field? {
        var first: UInt32 = 0
        var second: UInt32 = 0
        var length = 0
        var position = contents.lowerBound
        while position < contents.upperBound {
            let (scalar, next) =
                escaped ? JSONString.scalar(in: bytes, at: position) : (UInt32(bytes[position]), position + 1)
            length += 1
            if length > 2 || scalar >= 0x80 {
                return nil
            }
            if length == 1 {
                first = scalar
            } else {
                second = scalar
            }
            position = next
        }
        switch (length, first, second) {
        case (2, 0x6F, 0x70): return .op
        case (1, 0x74, _): return .t
        case (1, 0x65, _): return .e
        case (1, 0x6D, _): return .m
        case (1, 0x64, _): return .d
        default: return nil
        }
    }

    /// Unescapes validated string contents, reusing `known` when it is the same text.
    func makeString(_ value: FieldValue, reusing known: String? = nil) -> String {
        let contents = value.range.lowerBound + 1..<value.range.upperBound - 1
        return JSONString.text(
            UnsafeRawBufferPointer(rebasing: bytes[contents]), escaped: value.escaped, reusing: known)
    }

    func envelopeError(_ field: Field, _ value: FieldValue, _ problem: String) -> GatewayError {
        GatewayError(
            .invalidJSON,
            "invalid envelope at byte \(value.range.lowerBound): \"\(field.name)\" \(problem)"
        )
    }

    func integer(_ field: Field, _ value: FieldValue) throws(GatewayError) -> Int {
        switch value.kind {
        case .integer:
            guard let result = parseInteger(value.range) else {
                throw envelopeError(field, value, "is out of range for a 64-bit integer")
            }
            return result
        case .number:
            throw envelopeError(field, value, "must be a plain integer without fraction or exponent")
        default:
            throw envelopeError(field, value, "must be an integer, found \(value.kind.article)")
        }
    }

    func parseInteger(_ range: Range<Int>) -> Int? {
        var position = range.lowerBound
        let negative = bytes[position] == ASCII.minus
        if negative {
            position += 1
        }
        // Accumulate as a negative number so that Int.min fits.
        var value = 0
        while position < range.upperBound {
            let (product, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (difference, overflow2) = product.subtractingReportingOverflow(Int(bytes[position] - ASCII.zero))
            if overflow1 || overflow2 {
                return nil
            }
            value = difference
            position += 1
        }
        if negative {
            return value
        }
        let (result, overflow) = 0.subtractingReportingOverflow(value)
        return overflow ? nil : result
    }

    func optionalString(_ field: Field, _ value: FieldValue?, reusing known: String? = nil) throws(GatewayError)
        -> String?
    {
        guard let value, value.kind != .null else {
            return nil
        }
        guard value.kind == .string else {
            throw envelopeError(field, value, "must be a string or null, found \(value.kind.article)")
        }
        return makeString(value, reusing: known)
    }

    func makeEnvelope(knownName: String?) throws(GatewayError) -> Envelope {
        guard topLevelIsObject else {
            throw GatewayError(.invalidJSON, "invalid envelope: the top-level value must be an object")
        }
        guard let opValue = fields.op else {
            throw GatewayError(.invalidJSON, "invalid envelope: missing required field \"op\"")
        }
        var envelope = Envelope(op: try integer(.op, opValue))
        envelope.t = try optionalString(.t, fields.t, reusing: knownName)
        if let value = fields.e, value.kind != .null {
            guard value.kind == .integer || value.kind == .number else {
                throw envelopeError(.e, value, "must be an integer or null, found \(value.kind.article)")
            }
            envelope.e = try integer(.e, value)
        }
        envelope.m = try optionalString(.m, fields.m)
        envelope.d = fields.d?.range
        return envelope
    }
}
