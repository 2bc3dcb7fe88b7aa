/// Builds JSON text into a byte array, with commas and string escaping handled.
///
/// Commas follow from one flag: after a value (or a closed container) the next value or key needs a
/// comma; after `begin...` or `key` it does not. The writer does not check that calls form a valid
/// document (a value without a key inside an object, unbalanced containers); the caller does.
///
/// Strings are escaped minimally: `"` and `\` get a backslash, control characters below U+0020 use
/// `\b \f \n \r \t` or `\u00xx` (lowercase hex), and everything else, non-ASCII included, is written as
/// its UTF-8 bytes.
package struct JSONWriter: Sendable {
    package private(set) var bytes: [UInt8]
    /// Whether the next value or key must be preceded by a comma.
    private var needsComma = false

    package init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    package mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    package mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    package mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    package mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// Writes the comma when needed, the escaped key and ':'.
    package mutating func key(_ k: String) {
        separate()
        appendEscaped(k)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    package mutating func string(_ s: String) {
        separate()
        appendEscaped(s)
        needsComma = true
    }

    package mutating func int(_ v: Int) {
        separate()
        if v < 0 {
            bytes.append(UInt8(ascii: "-"))
        }
        var magnitude = v.magnitude
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        } while magnitude != 0
        bytes[start...].reverse()
        needsComma = true
    }

    package mutating func bool(_ v: Bool) {
        separate()
        appendASCII(v ? "true" : "false")
        needsComma = true
    }

    package mutating func null() {
        separate()
        appendASCII("null")
        needsComma = true
    }

    /// Inserts an already-validated JSON value as is.
    package mutating func raw(_ json: UnsafeRawBufferPointer) {
        separate()
        bytes.append(contentsOf: json)
        needsComma = true
    }

    private mutating func separate() {
        if needsComma {
            bytes.append(UInt8(ascii: ","))
        }
    }

    private mutating func appendASCII(_ text: StaticString) {
        bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private mutating func appendEscaped(_ string: String) {
        var string = string
        bytes.append(UInt8(ascii: "\""))
        string.withUTF8 { utf8 in
            var runStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                    continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
                runStart = index + 1
                bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(byte)
                case 0x08: bytes.append(UInt8(ascii: "b"))
                case 0x0C: bytes.append(UInt8(ascii: "f"))
                case 0x0A: bytes.append(UInt8(ascii: "n"))
                case 0x0D: bytes.append(UInt8(ascii: "r"))
                case 0x09: bytes.append(UInt8(ascii: "t"))
                default:
                    let hexDigits: StaticString = "0123456789abcdef"
                    bytes.append(UInt8(ascii: "u"))
                    bytes.append(UInt8(ascii: "0"))
                    bytes.append(UInt8(ascii: "0"))
                    bytes.append(hexDigits.utf8Start[Int(byte >> 4)])
                    bytes.append(hexDigits.utf8Start[Int(byte & 0xF)])
                }
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONWriter {
    /// `{"op":op,"t":t,"d":<raw d>}` with t and d omitted when nil; d must already be valid JSON.
    package static func payload(op: Int, t: String?, d: UnsafeRawBufferPointer?) -> [UInt8] {
        var writer = JSONWriter(capacity: 32 + (t?.utf8.count ?? 0) + (d?.count ?? 0))
        writer.beginObject()
        writer.key("op")
        writer.int(op)
        if let t {
            writer.key("t")
            writer.string(t)
        }
        if let d {
            writer.key("d")
            writer.raw(d)
        }
        writer.endObject()
        return writer.bytes
    }
}
