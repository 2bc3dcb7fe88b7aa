import CZlib

/// Decompresses the messages of a `compression=zlib` gateway connection.
///
/// The gateway compresses each message in zlib format (RFC 1950, with header and Adler-32 trailer). Whether every
/// message is a zlib stream of its own or the whole connection is one stream with a `Z_SYNC_FLUSH` at the end of each
/// message is not documented, so one inflate context per connection handles both:
///
/// - The context is carried from message to message, so a message may continue the stream of the previous one and
///   refer back to its data (sync-flush style).
/// - A payload is complete when its WebSocket message ends a stream or ends with the sync-flush marker `00 00 FF FF`.
///   A message that ends otherwise carries only part of a payload: its output is kept and the next message adds to
///   it (`inflateIntoBuffer` returns nil until the payload is complete), within the same cap.
/// - When a stream ends (`Z_STREAM_END`), the context is reset, so the next stream may start in the same message (the
///   bytes after the end are inflated as a new stream) or in the next one (one stream per message).
///
/// The decompressed size of one message is capped: inflating stops as soon as the output of the message would exceed
/// `maxMessageSize` (never more than one byte over the cap is produced), so a small "zip bomb" cannot make it allocate
/// or spend much time.
///
/// Errors and the state afterwards:
/// - Corrupt data (bad header, bad block, wrong checksum, or a stream that needs a preset dictionary, which the
///   gateway never uses) throws `.decompress` with zlib's message; the context is reset.
/// - Too much output throws `.messageTooLarge`; the context is reset.
/// - An empty message throws `.decompress`: it is not valid compressed data (a compressor flushing a message
///   normally ends it with at least the `00 00 FF FF` marker; zlib only produces nothing for an empty payload right
///   after a flush, and gateway payloads are never empty). zlib never sees it, so the context is left as it was.
/// After a reset the context is ready for a new stream; whether the connection goes on is up to the caller (in
/// sync-flush style the rest of that stream can no longer be decompressed).
///
/// An `Inflater` is confined to one thread (one connection), so it is not `Sendable`.
package final class Inflater {
    /// Output of one `inflate` call goes to this scratch buffer first and is appended to the result from there.
    private static let scratchSize = 64 * 1024
    private static let keptCapacity = 256 * 1024

    /// The z_stream needs a stable address: zlib keeps a back pointer to it in its internal state.
    private let stream: UnsafeMutablePointer<z_stream>
    private let scratch: UnsafeMutablePointer<UInt8>
    /// The largest number of bytes one message may decompress to.
    package let maxMessageSize: Int
    private var buffer: [UInt8] = []
    /// `buffer` holds the output of a payload whose last message has not come yet.
    private var partial = false
    /// The last four bytes of input, across messages: the marker may be split too.
    private var lastFour: UInt32 = 0

    /// Creates an inflate context; throws `.invalidArgument` for a negative cap and `.decompress` if zlib cannot be
    /// initialised (out of memory, incompatible library version).
    package init(maxMessageSize: Int) throws(GatewayError) {
        guard maxMessageSize >= 0 else {
            throw GatewayError(.invalidArgument, "maxMessageSize must not be negative, got \(maxMessageSize)")
        }
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = ubg_inflate_init(stream)
        guard status == Z_OK else {
            let message = Inflater.zlibMessage(stream, status: status)
            stream.deinitialize(count: 1)
            stream.deallocate()
            throw GatewayError(.decompress, "inflateInit failed: \(message)")
        }
        self.stream = stream
        self.maxMessageSize = maxMessageSize
        scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: Inflater.scratchSize)
    }

    deinit {
        inflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
        scratch.deallocate()
    }

    /// Resets the context for a new stream, dropping whatever of the current stream (and its window) was seen.
    package func reset() {
        inflateReset(stream)
        partial = false
        lastFour = 0
    }

    /// Decompresses one message; see the type's documentation for streams, the cap and errors.
    package func inflate(_ message: [UInt8]) throws(GatewayError) -> [UInt8] {
        // withUnsafeBytes only rethrows untyped errors; carry the typed one out in a Result.
        let result = message.withUnsafeBytes { bytes in
            Result { () throws(GatewayError) -> [UInt8] in try inflate(bytes) }
        }
        return try result.get()
    }

    /// Decompresses one message; see the type's documentation for streams, the cap and errors. An
    /// incomplete payload gives nothing (empty) until its last message.
    package func inflate(_ message: UnsafeRawBufferPointer) throws(GatewayError) -> [UInt8] {
        try inflateIntoBuffer(message).map { Array($0) } ?? []
    }

    /// `inflate` into the inflater's own buffer, reused from message to message (no allocation
    /// per message): the slice must be dropped before the next call, or that call copies it. Nil
    /// while the payload is incomplete (its output waits for the next message).
    package func inflateIntoBuffer(_ message: UnsafeRawBufferPointer) throws(GatewayError) -> ArraySlice<UInt8>? {
        // Refused before anything changes: a payload under way goes on with the next message.
        guard !message.isEmpty else { throw GatewayError(.decompress, "empty message is not valid compressed data") }
        if !partial {
            // A buffer grown by one large message is not kept for the small ones after it.
            if buffer.capacity > Inflater.keptCapacity {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
        }
        var output = buffer
        buffer = []
        defer { buffer = output }
        partial = false
        let streamEnded = try inflate(message, into: &output)
        for byte in message.suffix(4) { lastFour = lastFour << 8 | UInt32(byte) }
        guard streamEnded || lastFour == 0x0000_FFFF else {
            partial = true
            return nil
        }
        return output[...]
    }

    /// Returns whether the message ended exactly where a stream ended.
    private func inflate(_ message: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(GatewayError) -> Bool {
        guard let base = message.baseAddress, message.count > 0 else {
            throw GatewayError(.decompress, "empty message is not valid compressed data")
        }
        // zlib only reads through next_in; it is declared mutable for historical reasons.
        let input = UnsafeMutableRawPointer(mutating: base).assumingMemoryBound(to: Bytef.self)
        var consumed = 0  // bytes of `message` handed to zlib so far (avail_in is 32 bits wide)
        // A first guess that saves a few reallocations for typical (text) messages; bounded by the cap.
        output.reserveCapacity(min(maxMessageSize, message.count < 1 << 20 ? message.count * 4 : message.count))

        defer {
            stream.pointee.next_in = nil
            stream.pointee.avail_in = 0
            stream.pointee.next_out = nil
            stream.pointee.avail_out = 0
        }

        while true {
            if stream.pointee.avail_in == 0 && consumed < message.count {
                let chunk = min(message.count - consumed, Int(UInt32.max))
                stream.pointee.next_in = input + consumed
                stream.pointee.avail_in = UInt32(chunk)
                consumed += chunk
            }
            // Never let zlib produce more than one byte past the cap.
            let remaining = maxMessageSize - output.count
            let room = remaining < Inflater.scratchSize ? remaining + 1 : Inflater.scratchSize
            stream.pointee.next_out = scratch
            stream.pointee.avail_out = UInt32(room)

            let status = CZlib.inflate(stream, Z_NO_FLUSH)

            let produced = room - Int(stream.pointee.avail_out)
            if produced > remaining {
                reset()
                throw GatewayError(.messageTooLarge, "decompressed message exceeds \(maxMessageSize) bytes")
            }
            if produced > 0 {
                output.append(contentsOf: UnsafeBufferPointer(start: scratch, count: produced))
            }
            let inputLeft = stream.pointee.avail_in > 0 || consumed < message.count

            switch status {
            case Z_STREAM_END:
                // The stream is complete (its checksum verified). The next stream may start right here (bytes left
                // in this message) or with the next message.
                inflateReset(stream)
                if !inputLeft {
                    return true
                }
            case Z_OK, Z_BUF_ERROR:
                // Z_OK: progress was made; Z_BUF_ERROR: no progress possible, which with output room left means the
                // input is used up. Either way, with all input consumed and room left in the output, everything
                // this message holds has been produced: the stream goes on in the next message.
                if !inputLeft && stream.pointee.avail_out > 0 {
                    return false
                }
                if status == Z_BUF_ERROR && stream.pointee.avail_in > 0 && stream.pointee.avail_out > 0 {
                    // Cannot happen per zlib's contract; do not spin if it ever does.
                    reset()
                    throw GatewayError(.decompress, "inflate made no progress")
                }
            case Z_NEED_DICT:
                reset()
                throw GatewayError(.decompress, "stream requires a preset dictionary")
            default:  // Z_DATA_ERROR, Z_STREAM_ERROR, Z_MEM_ERROR
                let description = Inflater.zlibMessage(stream, status: status)
                reset()
                throw GatewayError(.decompress, description)
            }
        }
    }

    /// zlib's own message for the last error if it set one, else a description of the status code.
    private static func zlibMessage(_ stream: UnsafeMutablePointer<z_stream>, status: Int32) -> String {
        if let message = stream.pointee.msg {
            return String(cString: message)
        }
        switch status {
        case Z_DATA_ERROR: return "corrupt compressed data"
        case Z_MEM_ERROR: return "out of memory"
        case Z_STREAM_ERROR: return "inconsistent stream state"
        case Z_VERSION_ERROR: return "incompatible zlib version"
        case Z_BUF_ERROR: return "no progress possible"
        default: return "zlib error \(status)"
        }
    }
}

@available(*, unavailable)
extension Inflater: Sendable {}
