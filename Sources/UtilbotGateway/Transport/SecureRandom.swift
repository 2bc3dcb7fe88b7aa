import COpenSSL

/// Cryptographically secure random bytes from OpenSSL's CSPRNG.
package enum SecureRandom {
    package static func bytes(count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        let ok = result.withUnsafeMutableBytes {
            RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count))
        }
        if ok != 1 {
            // OpenSSL's CSPRNG only fails when the kernel's entropy source does; fall back to it.
            var generator = SystemRandomNumberGenerator()
            for i in 0..<count { result[i] = generator.next() }
        }
        return result
    }

    package static func words(count: Int) -> [UInt32] {
        let raw = bytes(count: count * 4)
        var words = [UInt32](repeating: 0, count: count)
        for i in 0..<count {
            var word: UInt32 = 0
            for j in 0..<4 { word = word << 8 | UInt32(raw[4 * i + j]) }
            words[i] = word
        }
        return words
    }
}
