import UtilbotGateway

/// Raw server frames for tests, including ones a correct server would never send.
enum ServerFrame {
    static func make(
        _ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, mask: [UInt8]? = nil,
        forceLength64: Bool = false
    ) -> [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode]
        let maskBit: UInt8 = mask == nil ? 0 : 0x80
        let n = payload.count
        if forceLength64 || n > 0xFFFF {
            out.append(maskBit | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(n) >> UInt64(shift)) & 0xFF)) }
        } else if n >= 126 {
            out += [maskBit | 126, UInt8(n >> 8), UInt8(n & 0xFF)]
        } else {
            out.append(maskBit | UInt8(n))
        }
        if let mask {
            out += mask
            out += payload.enumerated().map { $0.element ^ mask[$0.offset & 3] }
        } else {
            out += payload
        }
        return out
    }

    static func text(_ s: String, fin: Bool = true) -> [UInt8] { make(0x1, Array(s.utf8), fin: fin) }
    static func binary(_ b: [UInt8], fin: Bool = true) -> [UInt8] { make(0x2, b, fin: fin) }
    static func continuation(_ b: [UInt8], fin: Bool = true) -> [UInt8] { make(0x0, b, fin: fin) }
    static func close(_ code: UInt16, _ reason: String = "") -> [UInt8] {
        make(0x8, [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8))
    }
    static func ping(_ b: [UInt8]) -> [UInt8] { make(0x9, b) }
    static func pong(_ b: [UInt8]) -> [UInt8] { make(0xA, b) }
}

/// Decodes what the client wrote (masked frames), checking the mask bit is set.
func decodeClientFrames(_ bytes: [UInt8]) -> [(opcode: UInt8, fin: Bool, payload: [UInt8])] {
    var frames: [(UInt8, Bool, [UInt8])] = []
    var i = 0
    while i < bytes.count {
        let b0 = bytes[i]
        let b1 = bytes[i + 1]
        precondition(b1 & 0x80 != 0, "client frame not masked")
        var n = Int(b1 & 0x7F)
        i += 2
        if n == 126 {
            n = Int(bytes[i]) << 8 | Int(bytes[i + 1])
            i += 2
        } else if n == 127 {
            n = 0
            for j in 0..<8 { n = n << 8 | Int(bytes[i + j]) }
            i += 8
        }
        let mask = Array(bytes[i..<(i + 4)])
        i += 4
        let payload = (0..<n).map { bytes[i + $0] ^ mask[$0 & 3] }
        i += n
        frames.append((b0 & 0x0F, b0 & 0x80 != 0, payload))
    }
    return frames
}
