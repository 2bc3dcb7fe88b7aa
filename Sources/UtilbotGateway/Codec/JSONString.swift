import Glibc

/// The contents of a JSON string that `JSONScanner` has validated: its scalars and its unescaped
/// text. The one place that decodes escapes, for the scanner's envelope fields and for
/// `JSONObjectReader`.
enum JSONString {
    /// The scalar at `position` of validated string contents, and where the next one starts.
    static func scalar(in bytes: UnsafeRawBufferPointer, at position: Int) -> (UInt32, Int) {
        let byte = bytes[position]
        if byte == UInt8(ascii: "\\") {
            let escape = bytes[position + 1]
            switch escape {
            case UInt8(ascii: "b"): return (0x08, position + 2)
            case UInt8(ascii: "f"): return (0x0C, position + 2)
            case UInt8(ascii: "n"): return (0x0A, position + 2)
            case UInt8(ascii: "r"): return (0x0D, position + 2)
            case UInt8(ascii: "t"): return (0x09, position + 2)
            case UInt8(ascii: "u"):
                let unit = hex4(in: bytes, at: position + 2)
                if unit >= 0xD800 && unit < 0xDC00 {
                    let low = hex4(in: bytes, at: position + 8)
                    return (0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00), position + 12)
                }
                return (unit, position + 6)
            default:
                return (UInt32(escape), position + 2)
            }
        }
        if byte < 0x80 {
            return (UInt32(byte), position + 1)
        }
        if byte < 0xE0 {
            return (UInt32(byte & 0x1F) << 6 | UInt32(bytes[position + 1] & 0x3F), position + 2)
        }
        if byte < 0xF0 {
            let scalar =
                UInt32(byte & 0x0F) << 12 | UInt32(bytes[position + 1] & 0x3F) << 6
                | UInt32(bytes[position + 2] & 0x3F)
            return (scalar, position + 3)
        }
        let scalar =
            UInt32(byte & 0x07) << 18 | UInt32(bytes[position + 1] & 0x3F) << 12
            | UInt32(bytes[position + 2] & 0x3F) << 6 | UInt32(bytes[position + 3] & 0x3F)
        return (scalar, position + 4)
    }

    /// The text of validated string contents; `known` itself when it is the same text (event
    /// names repeat, and one longer than 15 bytes would otherwise cost an allocation).
    static func text(_ contents: UnsafeRawBufferPointer, escaped: Bool, reusing known: String?) -> String {
        if escaped { return unescape(contents) }
        if var known, known.utf8.count == contents.count {
            if contents.isEmpty { return known }
            let same = known.withUTF8 { memcmp($0.baseAddress!, contents.baseAddress!, contents.count) == 0 }
            if same { return known }
        }
        return String(decoding: contents, as: UTF8.self)
    }

    /// Unescapes validated string contents; the result is never longer than the escaped text.
    static func unescape(_ contents: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: contents.count) { output in
            var written = 0
            var position = 0
            while position < contents.count {
                let byte = contents[position]
                if byte != UInt8(ascii: "\\") {
                    output[written] = byte
                    written += 1
                    position += 1
                    continue
                }
                let (scalar, next) = Self.scalar(in: contents, at: position)
                position = next
                for unit in UTF8.encode(Unicode.Scalar(scalar) ?? "\u{FFFD}")! {
                    output[written] = unit
                    written += 1
                }
            }
            return written
        }
    }

    private static func hex4(in bytes: UnsafeRawBufferPointer, at position: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[position + offset]
            value = value << 4 | UInt32(byte <= 0x39 ? byte - 0x30 : (byte | 0x20) - 0x61 + 10)
        }
        return value
    }
}
