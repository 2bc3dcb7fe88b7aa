// Fuzz target: the JSON scanner (`JSONScanner.validate`, `scanEnvelope`), with `JSONObjectReader` and
// `JSONWriter` on the side.
//
// Input: the JSON text. Checks:
// - no crash, for nesting limits 64 (the default), 3 and 100;
// - validation agrees with an independent recursive-descent validator written from RFC 8259 (below),
//   and a syntax error is reported identically by `validate` and `scanEnvelope`;
// - `scanEnvelope` with its fast path (FastJSONScanner) and without agree exactly;
// - `scanEnvelope` agrees with the same reference on the top-level fields (keys compared after
//   unescaping, the last of a repeated key wins, op/e plain integers fitting Int, t/m strings or null, the
//   byte range of d), and the range of d re-validates as JSON on its own;
// - the envelope written back with `JSONWriter` (op, t, e, m, raw d) scans to the same envelope, and
//   `JSONWriter.payload` scans to the same op, t and d;
// - `JSONObjectReader.members` of a valid object equals the reference's top-level members.
import UtilbotGateway

// MARK: - The reference

private enum Kind: Equatable {
    case string([Unicode.Scalar])
    case integer
    case number
    case bool
    case null
    case object
    case array
}

private struct Member {
    var key: [Unicode.Scalar]
    var range: Range<Int>
    var kind: Kind
}

private struct ReferenceError: Error {}

/// RFC 8259, by recursive descent, written for clarity rather than speed.
private struct Reference {
    let bytes: [UInt8]
    let maxDepth: Int
    var pos = 0
    /// The members of the top-level value when it is an object.
    var topMembers: [Member]?

    init(_ bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func document() throws(ReferenceError) -> Kind {
        whitespace()
        let kind = try value(depth: 0, top: true)
        whitespace()
        guard pos == bytes.count else { throw ReferenceError() }
        return kind
    }

    mutating func whitespace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { pos += 1 }
    }

    mutating func expect(_ byte: UInt8) throws(ReferenceError) {
        guard peek == byte else { throw ReferenceError() }
        pos += 1
    }

    mutating func value(depth: Int, top: Bool = false) throws(ReferenceError) -> Kind {
        guard let byte = peek else { throw ReferenceError() }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw ReferenceError() }
            pos += 1
            var members: [Member] = []
            whitespace()
            if peek == UInt8(ascii: "}") {
                pos += 1
            } else {
                while true {
                    whitespace()
                    guard peek == UInt8(ascii: "\"") else { throw ReferenceError() }
                    guard case .string(let key) = try string() else { throw ReferenceError() }
                    whitespace()
                    try expect(UInt8(ascii: ":"))
                    whitespace()
                    let start = pos
                    let kind = try value(depth: depth + 1)
                    members.append(Member(key: key, range: start..<pos, kind: kind))
                    whitespace()
                    if peek == UInt8(ascii: ",") {
                        pos += 1
                        continue
                    }
                    try expect(UInt8(ascii: "}"))
                    break
                }
            }
            if top { topMembers = members }
            return .object
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw ReferenceError() }
            pos += 1
            whitespace()
            if peek == UInt8(ascii: "]") {
                pos += 1
                return .array
            }
            while true {
                whitespace()
                _ = try value(depth: depth + 1)
                whitespace()
                if peek == UInt8(ascii: ",") {
                    pos += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return .array
            }
        case UInt8(ascii: "\""):
            return try string()
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            return try number()
        }
    }

    mutating func literal(_ text: String) throws(ReferenceError) {
        for byte in text.utf8 { try expect(byte) }
    }

    mutating func digits() throws(ReferenceError) {
        guard let byte = peek, byte >= 0x30 && byte <= 0x39 else { throw ReferenceError() }
        while let byte = peek, byte >= 0x30 && byte <= 0x39 { pos += 1 }
    }

    /// number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
    mutating func number() throws(ReferenceError) -> Kind {
        if peek == UInt8(ascii: "-") { pos += 1 }
        if peek == UInt8(ascii: "0") {
            pos += 1
        } else {
            try digits()
        }
        var plain = true
        if peek == UInt8(ascii: ".") {
            pos += 1
            try digits()
            plain = false
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            pos += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { pos += 1 }
            try digits()
            plain = false
        }
        return plain ? .integer : .number
    }

    mutating func hex4() throws(ReferenceError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = peek else { throw ReferenceError() }
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw ReferenceError()
            }
            value = value * 16 + digit
            pos += 1
        }
        return value
    }

    /// A string, decoded; raw bytes must be valid UTF-8 (checked by the standard library) and not control
    /// characters, escapes must be one of the nine forms, surrogates must pair up.
    mutating func string() throws(ReferenceError) -> Kind {
        pos += 1
        var scalars: [Unicode.Scalar] = []
        var raw: [UInt8] = []
        func flush() throws(ReferenceError) {
            guard let text = String(validating: raw, as: UTF8.self) else { throw ReferenceError() }
            scalars += text.unicodeScalars
            raw = []
        }
        while true {
            guard let byte = peek else { throw ReferenceError() }
            pos += 1
            switch byte {
            case UInt8(ascii: "\""):
                try flush()
                return .string(scalars)
            case UInt8(ascii: "\\"):
                try flush()
                guard let escape = peek else { throw ReferenceError() }
                pos += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(Unicode.Scalar(escape))
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    let unit = try hex4()
                    if unit >= 0xD800 && unit <= 0xDBFF {
                        try expect(UInt8(ascii: "\\"))
                        try expect(UInt8(ascii: "u"))
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw ReferenceError() }
                        scalars.append(Unicode.Scalar(0x10000 + (unit - 0xD800) * 0x400 + (low - 0xDC00))!)
                    } else {
                        guard let scalar = Unicode.Scalar(unit) else { throw ReferenceError() }  // lone low
                        scalars.append(scalar)
                    }
                default:
                    throw ReferenceError()
                }
            default:
                guard byte >= 0x20 else { throw ReferenceError() }
                raw.append(byte)
            }
        }
    }
}

private func referenceValidate(_ bytes: [UInt8], maxDepth: Int) -> Reference? {
    var reference = Reference(bytes, maxDepth: maxDepth)
    do {
        _ = try reference.document()
        return reference
    } catch {
        return nil
    }
}

private func referenceInteger(_ bytes: ArraySlice<UInt8>) -> Int? {
    Int(String(decoding: bytes, as: UTF8.self))
}

/// The envelope the reference expects, or nil when scanEnvelope must refuse the document.
private func expectedEnvelope(_ bytes: [UInt8], members: [Member]?) -> Envelope? {
    guard let members else { return nil }
    func last(_ name: String) -> Member? {
        members.last { $0.key.elementsEqual(name.unicodeScalars) }
    }
    guard let op = last("op"), op.kind == .integer, let opValue = referenceInteger(bytes[op.range]) else {
        return nil
    }
    var envelope = Envelope(op: opValue)
    for name in ["t", "m"] {
        guard let member = last(name) else { continue }
        switch member.kind {
        case .null: break
        case .string(let scalars):
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            if name == "t" { envelope.t = text } else { envelope.m = text }
        default: return nil
        }
    }
    if let e = last("e"), e.kind != .null {
        guard e.kind == .integer, let value = referenceInteger(bytes[e.range]) else { return nil }
        envelope.e = value
    }
    envelope.d = last("d")?.range
    return envelope
}

// MARK: - The checks

private func validation(_ bytes: [UInt8], maxDepth: Int) -> GatewayError? {
    do {
        try JSONScanner.validate(bytes, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

private func envelope(_ bytes: [UInt8]) -> Result<Envelope, GatewayError> {
    Result { () throws(GatewayError) in try JSONScanner.scanEnvelope(bytes) }
}

/// Equal envelopes, comparing strings scalar by scalar (String's == is canonical equivalence).
private func same(_ a: Envelope, _ b: Envelope, dOf aBytes: [UInt8], _ bBytes: [UInt8]) -> Bool {
    func scalars(_ s: String?) -> [Unicode.Scalar]? { s.map { Array($0.unicodeScalars) } }
    let aD = a.d.map { Array(aBytes[$0]) }
    let bD = b.d.map { Array(bBytes[$0]) }
    return a.op == b.op && a.e == b.e && scalars(a.t) == scalars(b.t) && scalars(a.m) == scalars(b.m) && aD == bD
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = inputBytes(data, size)

    var reference: Reference?
    for maxDepth in [JSONScanner.defaultMaxDepth, 3, 100] {
        let error = validation(bytes, maxDepth: maxDepth)
        let expected = referenceValidate(bytes, maxDepth: maxDepth)
        require(
            (error == nil) == (expected != nil),
            "maxDepth \(maxDepth): the scanner says \(String(describing: error)), the reference "
                + (expected != nil ? "valid" : "invalid") + ": \(show(bytes))")
        if let error {
            require(error.code == .invalidJSON, "a validation error with the code \(error.code)")
        }
        if maxDepth == JSONScanner.defaultMaxDepth { reference = expected }
    }

    let scanned = envelope(bytes)
    // FastJSONScanner answers only when sure; the general scanner alone must come to the same.
    let general = Result { () throws(GatewayError) in try JSONScanner.scanEnvelope(bytes, fastPath: false) }
    switch (scanned, general) {
    case (.success(let fast), .success(let slow)):
        require(same(fast, slow, dOf: bytes, bytes) && fast.d == slow.d, "fast path \(fast), general \(slow)")
    case (.failure(let fast), .failure(let slow)):
        require(fast == slow, "fast path error \(fast), general \(slow)")
    default:
        violation("the fast path says \(scanned), the general scanner \(general): \(show(bytes))")
    }
    guard let reference else {
        guard case .failure(let error) = scanned else {
            violation("scanEnvelope accepted a document that validate refused: \(show(bytes))")
        }
        require(
            error == validation(bytes, maxDepth: JSONScanner.defaultMaxDepth),
            "scanEnvelope and validate report different syntax errors")
        return 0
    }

    let expected = expectedEnvelope(bytes, members: reference.topMembers)
    switch (scanned, expected) {
    case (.success(let got), .some(let want)):
        require(
            same(got, want, dOf: bytes, bytes) && got.d == want.d,
            "envelope \(got), the reference \(want): \(show(bytes))")
        // A cached name (the driver passes the last one it saw) changes nothing but identity:
        // the same name, a different one, a prefix of it.
        for known in [got.t, "x", got.t.map { String($0.unicodeScalars.dropLast()) }] {
            let rescanned = Result { () throws(GatewayError) in try JSONScanner.scanEnvelope(bytes, knownName: known) }
            guard case .success(let again) = rescanned else {
                violation("scanEnvelope with knownName refused what it accepted without: \(show(bytes))")
            }
            require(same(again, got, dOf: bytes, bytes), "knownName \(String(describing: known)) changed \(got)")
        }
    case (.success(let got), .none):
        violation("scanEnvelope accepted \(got), the reference refuses: \(show(bytes))")
    case (.failure(let error), .some(let want)):
        violation("scanEnvelope refused (\(error)), the reference expects \(want): \(show(bytes))")
    case (.failure(let error), .none):
        require(error.code == .invalidJSON, "an envelope error with the code \(error.code)")
    }

    if case .success(let got) = scanned {
        var d: [UInt8]?
        if let range = got.d {
            require(range.lowerBound >= 0 && range.upperBound <= bytes.count, "d out of bounds: \(range)")
            d = Array(bytes[range])
            require(validation(d!, maxDepth: JSONScanner.defaultMaxDepth) == nil, "d does not re-validate")
        }
        // Written back with JSONWriter, the envelope scans the same.
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("op")
        writer.int(got.op)
        if let t = got.t {
            writer.key("t")
            writer.string(t)
        }
        if let e = got.e {
            writer.key("e")
            writer.int(e)
        }
        if let m = got.m {
            writer.key("m")
            writer.string(m)
        }
        if let d {
            writer.key("d")
            d.withUnsafeBytes { writer.raw($0) }
        }
        writer.endObject()
        switch envelope(writer.bytes) {
        case .success(let again):
            require(same(got, again, dOf: bytes, writer.bytes), "the rewritten envelope scans as \(again)")
        case .failure(let error):
            violation("the rewritten envelope is refused: \(error): \(show(writer.bytes))")
        }
        // JSONWriter.payload (what the client sends) keeps op, t and d.
        let payload =
            if let d {
                d.withUnsafeBytes { JSONWriter.payload(op: got.op, t: got.t, d: $0) }
            } else {
                JSONWriter.payload(op: got.op, t: got.t, d: nil)
            }
        switch envelope(payload) {
        case .success(let again):
            let want = Envelope(op: got.op, t: got.t, d: got.d)
            require(same(want, again, dOf: bytes, payload), "JSONWriter.payload scans as \(again)")
        case .failure(let error):
            violation("JSONWriter.payload is refused: \(error): \(show(payload))")
        }
    }

    if let members = reference.topMembers {
        let read = JSONObjectReader.members(bytes[...])
        require(read.count == members.count, "JSONObjectReader found \(read.count) members, expected \(members.count)")
        for (got, want) in zip(read, members) {
            require(
                got.key.unicodeScalars.elementsEqual(want.key) && got.value == want.range,
                "JSONObjectReader member \(got) differs from the reference: \(show(bytes))")
        }
    }
    return 0
}
