/// Encodes client frames: always masked (RFC 6455 §5.3), with the shortest length form.
package enum FrameEncoder {
    /// The largest header: 2 bytes, an 8-byte extended length and a 4-byte masking key.
    package static let maxHeaderLength = 14

    /// Appends one masked frame to `output`.
    package static func encode(
        opcode: Opcode, fin: Bool = true, payload: UnsafeRawBufferPointer, maskingKey: UInt32,
        into output: inout [UInt8]
    ) {
        let count = payload.count
        output.reserveCapacity(output.count + maxHeaderLength + count)
        output.append((fin ? 0x80 : 0) | opcode.rawValue)
        if count < 126 {
            output.append(0x80 | UInt8(count))
        } else if count <= 0xFFFF {
            output.append(0x80 | 126)
            output.append(UInt8(count >> 8))
            output.append(UInt8(count & 0xFF))
        } else {
            output.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) {
                output.append(UInt8((UInt64(count) >> UInt64(shift)) & 0xFF))
            }
        }
        let key = [
            UInt8(maskingKey >> 24), UInt8((maskingKey >> 16) & 0xFF), UInt8((maskingKey >> 8) & 0xFF),
            UInt8(maskingKey & 0xFF),
        ]
        output.append(contentsOf: key)
        let start = output.count
        output.append(contentsOf: payload)
        output.withUnsafeMutableBytes { buffer in
            Masking.apply(key: key, to: UnsafeMutableRawBufferPointer(rebasing: buffer[start...]))
        }
    }

    package static func encode(
        opcode: Opcode, fin: Bool = true, payload: [UInt8], maskingKey: UInt32, into output: inout [UInt8]
    ) {
        payload.withUnsafeBytes { encode(opcode: opcode, fin: fin, payload: $0, maskingKey: maskingKey, into: &output) }
    }
}

/// XOR masking (RFC 6455 §5.3), eight bytes at a time.
package enum Masking {
    package static func apply(key: [UInt8], to bytes: UnsafeMutableRawBufferPointer) {
        precondition(key.count == 4)
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress else { return }
        var wide: UInt64 = 0
        withUnsafeMutableBytes(of: &wide) { w in
            for i in 0..<8 { w[i] = key[i & 3] }
        }
        var i = 0
        while i + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            base.storeBytes(of: word ^ wide, toByteOffset: i, as: UInt64.self)
            i += 8
        }
        while i < count {
            bytes[i] ^= key[i & 3]
            i += 1
        }
    }
}

/// Unpredictable masking keys (RFC 6455 §10.3) from OpenSSL's CSPRNG (a user-space generator),
/// fetched 16 at a time: few calls, and 64 bytes per idle connection rather than a kilobyte.
package struct MaskingKeySource {
    private var batch: [UInt32] = []

    package init() {}

    package mutating func next() -> UInt32 {
        if batch.isEmpty {
            batch = SecureRandom.words(count: 16)
        }
        return batch.removeLast()
    }
}
