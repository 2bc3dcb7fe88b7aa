/// Decodes the frames a server sends to a client (RFC 6455 §5.2), from bytes that arrive in
/// any split: one byte per read or many frames per read give the same frames.
///
/// Enforced here, each a failure with close code 1002 unless noted:
/// - RSV1-3 must be 0 (no extension is negotiated);
/// - the opcode must be defined;
/// - frames from a server must not be masked (§5.1);
/// - control frames must not be fragmented and carry at most 125 bytes (§5.5);
/// - a 64-bit length must have its most significant bit clear;
/// - a payload larger than `maxPayload` fails with 1009 as soon as its header is read,
///   before any of it is buffered.
package struct FrameDecoder {
    package var maxPayload: Int
    private var input = CompactingQueue<UInt8>(keptCapacity: 256 * 1024, compactionThreshold: 65536)

    package init(maxPayload: Int) {
        self.maxPayload = maxPayload
    }

    /// Bytes received but not yet decoded into a frame.
    package var bufferedByteCount: Int { input.count }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        input.compact()
        input.append(bytes)
    }

    /// Gives back a buffer grown by a large message once all of it was decoded. Called right
    /// after the frames are handled, while their slices (messages held during a pause) may still
    /// share the storage: it never compacts, which would copy; `append` does, at the next read.
    package mutating func releaseConsumed() {
        input.releaseExcessCapacity()
    }

    package mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete frame, or nil when more bytes are needed.
    package mutating func nextFrame() throws(WebSocketFailure) -> Frame? {
        let available = input.count
        guard available >= 2 else { return nil }
        let b0 = input[0]
        let b1 = input[1]
        let fin = b0 & 0x80 != 0
        let opcode = Opcode(rawValue: b0 & 0x0F)
        if b0 & 0x70 != 0 {
            throw .protocolError("reserved bits set in a frame header without a negotiated extension")
        }
        guard opcode.isKnown else {
            throw .protocolError("unknown opcode \(opcode.rawValue)")
        }
        if b1 & 0x80 != 0 {
            throw .protocolError("the server sent a masked frame")
        }
        var headerLength = 2
        var length = UInt64(b1 & 0x7F)
        if length == 126 {
            headerLength = 4
            guard available >= headerLength else { return nil }
            length = UInt64(input[2]) << 8 | UInt64(input[3])
        } else if length == 127 {
            headerLength = 10
            guard available >= headerLength else { return nil }
            length = 0
            for i in 2..<10 { length = length << 8 | UInt64(input[i]) }
            if length & (1 << 63) != 0 {
                throw .protocolError("frame length has its most significant bit set")
            }
        }
        if opcode.isControl {
            if !fin { throw .protocolError("fragmented \(opcode) frame") }
            if length > 125 { throw .protocolError("\(opcode) frame of \(length) bytes (the limit is 125)") }
        }
        if length > UInt64(maxPayload) {
            throw WebSocketFailure(
                CloseCode.messageTooBig, .messageTooLarge,
                "frame of \(length) bytes exceeds the \(maxPayload)-byte message limit")
        }
        let payloadLength = Int(length)
        guard available - headerLength >= payloadLength else { return nil }
        // A slice, not a copy: it lives until the frame is handled, before the next append.
        let payload = input.slice(headerLength..<(headerLength + payloadLength))
        input.removeFirst(headerLength + payloadLength)
        return Frame(fin: fin, opcode: opcode, payload: payload)
    }
}
