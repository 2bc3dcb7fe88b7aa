/// Reads the members of a JSON object that `JSONScanner` has already validated: each key
/// (unescaped) with the byte range of its raw value. Only what the gateway needs from small
/// objects such as Hello's `d`; it does not re-validate.
package enum JSONObjectReader {
    package static func members(_ bytes: ArraySlice<UInt8>) -> [(key: String, value: Range<Int>)] {
        var result: [(String, Range<Int>)] = []
        var i = bytes.startIndex
        func skipSpace() {
            while i < bytes.endIndex, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D {
                i += 1
            }
        }
        skipSpace()
        guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "{") else { return [] }
        i += 1
        while true {
            skipSpace()
            guard i < bytes.endIndex, bytes[i] == UInt8(ascii: "\"") else { return result }
            let keyRange = skipString(bytes, &i)
            let key = decodeString(bytes[keyRange])
            skipSpace()
            i += 1  // ':'
            skipSpace()
            let start = i
            skipValue(bytes, &i)
            result.append((key, start..<i))
            skipSpace()
            guard i < bytes.endIndex, bytes[i] == UInt8(ascii: ",") else { return result }
            i += 1
        }
    }

    /// The integer value of `key`, when it is a plain integer.
    package static func integer(_ key: String, in bytes: ArraySlice<UInt8>) -> Int? {
        guard let member = members(bytes).last(where: { $0.key == key }) else { return nil }
        let digits = bytes[member.value]
        guard !digits.isEmpty, digits.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "-") }) else {
            return nil
        }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// The unescaped value of `key`, when it is a string.
    package static func string(_ key: String, in bytes: ArraySlice<UInt8>) -> String? {
        guard let member = members(bytes).last(where: { $0.key == key }) else { return nil }
        var i = member.value.lowerBound
        guard i < member.value.upperBound, bytes[i] == UInt8(ascii: "\"") else { return nil }
        let contents = skipString(bytes, &i)
        return decodeString(bytes[contents])
    }

    /// The raw bytes of the value of `key`.
    package static func raw(_ key: String, in bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        members(bytes).last(where: { $0.key == key }).map { bytes[$0.value] }
    }

    /// Moves past a string starting at its opening quote; returns the range of its contents.
    private static func skipString(_ bytes: ArraySlice<UInt8>, _ i: inout Int) -> Range<Int> {
        i += 1
        let start = i
        while i < bytes.endIndex, bytes[i] != UInt8(ascii: "\"") {
            i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1
        }
        let end = min(i, bytes.endIndex)
        i += 1
        return start..<end
    }

    private static func skipValue(_ bytes: ArraySlice<UInt8>, _ i: inout Int) {
        var depth = 0
        while i < bytes.endIndex {
            switch bytes[i] {
            case UInt8(ascii: "\""):
                _ = skipString(bytes, &i)
                if depth == 0 { return }
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return }
                depth -= 1
                if depth == 0 {
                    i += 1
                    return
                }
            case UInt8(ascii: ","):
                if depth == 0 { return }
            case 0x20, 0x09, 0x0A, 0x0D:
                if depth == 0 { return }
            default:
                break
            }
            i += 1
        }
    }

    /// Unescapes the contents of a validated JSON string.
    private static func decodeString(_ contents: ArraySlice<UInt8>) -> String {
        guard contents.contains(UInt8(ascii: "\\")) else { return String(decoding: contents, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var i = contents.startIndex
        func flush() {
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll()
        }
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for b in contents[at..<(at + 4)] {
                v = v << 4 | UInt32(b <= 0x39 ? b - 0x30 : (b | 0x20) - 0x61 + 10)
            }
            return v
        }
        while i < contents.endIndex {
            let b = contents[i]
            guard b == UInt8(ascii: "\\") else {
                utf8.append(b)
                i += 1
                continue
            }
            let e = contents[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): utf8.append(0x0A)
            case UInt8(ascii: "t"): utf8.append(0x09)
            case UInt8(ascii: "r"): utf8.append(0x0D)
            case UInt8(ascii: "b"): utf8.append(0x08)
            case UInt8(ascii: "f"): utf8.append(0x0C)
            case UInt8(ascii: "u"):
                flush()
                var value = hex4(i)
                i += 4
                if value >= 0xD800 && value < 0xDC00 {
                    let low = hex4(i + 2)
                    value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            default: utf8.append(e)
            }
        }
        flush()
        return String(scalars)
    }
}
