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
        return contents.withUnsafeBytes { JSONString.unescape($0) }
    }
}
