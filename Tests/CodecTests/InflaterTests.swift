import CZlib
import Testing
import UtilbotGateway

// MARK: - Compression helpers (tests only; the library only inflates)

/// Compresses `data` as one complete zlib stream (RFC 1950: header, deflate data, Adler-32).
private func zlibCompress(_ data: [UInt8], level: Int32 = Z_DEFAULT_COMPRESSION) -> [UInt8] {
    let deflater = Deflater(level: level)
    return deflater.compress(data, flush: Z_FINISH)
}

/// A zlib deflate context that lives across messages, like a gateway that compresses the whole connection as one
/// stream and ends each message with a Z_SYNC_FLUSH.
private final class Deflater {
    private let stream: UnsafeMutablePointer<z_stream>

    init(level: Int32 = Z_DEFAULT_COMPRESSION) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = ubg_deflate_init(stream, level)
        precondition(status == Z_OK, "deflateInit failed: \(status)")
    }

    deinit {
        deflateEnd(stream)
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Compresses `data` and flushes with `flush`: Z_SYNC_FLUSH continues the stream in the next message (the output
    /// ends with 00 00 FF FF), Z_FINISH ends it (and the context starts a new stream afterwards).
    func compress(_ data: [UInt8], flush: Int32 = Z_SYNC_FLUSH) -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = data
        input.withUnsafeMutableBufferPointer { inputBuffer in
            stream.pointee.next_in = inputBuffer.baseAddress
            stream.pointee.avail_in = UInt32(inputBuffer.count)
            while true {
                let (status, produced) = chunk.withUnsafeMutableBufferPointer { out in
                    stream.pointee.next_out = out.baseAddress
                    stream.pointee.avail_out = UInt32(out.count)
                    let status = deflate(stream, flush)
                    return (status, out.count - Int(stream.pointee.avail_out))
                }
                precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate: \(status)")
                output.append(contentsOf: chunk[..<produced])
                if flush == Z_FINISH ? status == Z_STREAM_END : stream.pointee.avail_out > 0 {
                    break
                }
            }
            stream.pointee.next_in = nil
            stream.pointee.next_out = nil
        }
        if flush == Z_FINISH {
            deflateReset(stream)
        }
        return output
    }
}

// MARK: - Test data

private func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count {
        withUnsafeBytes(of: generator.next().littleEndian) { bytes.append(contentsOf: $0) }
    }
    return Array(bytes.prefix(count))
}

/// Random lower-case letters: compresses a little (about 5 of 8 bits) but has hardly any repetition in itself.
private func randomLetters(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    return (0..<count).map { _ in UInt8(ascii: "a") + UInt8(generator.next() % 26) }
}

/// Gateway-like JSON text: compresses well.
private func jsonText(_ events: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    var text = "["
    for index in 0..<events {
        let value = generator.next() % 100_000
        text += #"{"op":0,"s":\#(index),"t":"MESSAGE_CREATE","d":{"content":"value \#(value)","id":"\#(value * 7)"}},"#
    }
    text += "{}]"
    return Array(text.utf8)
}

/// Mostly random bytes with repeated and zero runs mixed in, so deflate uses stored, fixed and dynamic blocks.
private func mixedPayload(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix64(seed: seed)
    var bytes = [UInt8]()
    bytes.reserveCapacity(count)
    var part: UInt64 = 0
    while bytes.count < count {
        let length = Int(generator.next() % 20_000) + 1
        switch generator.next() % 4 {
        case 0: bytes.append(contentsOf: randomBytes(length, seed: seed &+ part))
        case 1: bytes.append(contentsOf: randomLetters(length, seed: seed &+ part))
        case 2: bytes.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: part), count: length))
        default: bytes.append(contentsOf: bytes.suffix(length))  // a back-reference to what came before
        }
        part += 1
    }
    return Array(bytes.prefix(count))
}

private func code(of body: () throws(GatewayError) -> [UInt8]) -> ErrorCode? {
    do {
        _ = try body()
        return nil
    } catch {
        return error.code
    }
}

// MARK: - Tests

@Suite("Inflater")
struct InflaterTests {
    @Test("the reused buffer: each message whole, a kept slice never overwritten, a large one not kept")
    func reusedBuffer() throws {
        let deflater = Deflater(level: Z_DEFAULT_COMPRESSION)
        let inflater = try Inflater(maxMessageSize: 1 << 22)
        let first = Array(#"{"op":0,"t":"A","d":{"n":1}}"#.utf8)
        let second = Array(#"{"op":0,"t":"B","d":{"n":2222}}"#.utf8)
        let large = randomLetters(1 << 20, seed: 7)
        let kept = try #require(try deflater.compress(first).withUnsafeBytes { try inflater.inflateIntoBuffer($0) })
        #expect(Array(kept) == first)
        // Holding the first slice while inflating the next one copies, never overwrites.
        let next = try #require(try deflater.compress(second).withUnsafeBytes { try inflater.inflateIntoBuffer($0) })
        #expect(Array(kept) == first)
        #expect(Array(next) == second)
        let big = try #require(try deflater.compress(large).withUnsafeBytes { try inflater.inflateIntoBuffer($0) })
        #expect(Array(big) == large)
        let after = try #require(try deflater.compress(first).withUnsafeBytes { try inflater.inflateIntoBuffer($0) })
        #expect(Array(after) == first)
    }

    @Test("a sync-flush payload split over two messages comes out once, whole, after the second")
    func payloadSplitOverTwoMessages() throws {
        let deflater = Deflater()
        let inflater = try Inflater(maxMessageSize: 1 << 22)
        for (index, payload) in [jsonText(300, seed: 3), jsonText(40, seed: 4), jsonText(5000, seed: 5)].enumerated() {
            for part in 0..<4 {
                // Each round continues the same stream, as a gateway's next payload would.
                let wire = deflater.compress(payload)
                #expect(wire.suffix(4) == [0x00, 0x00, 0xFF, 0xFF])
                let split = [1, wire.count / 2, wire.count - 4, wire.count - 1][part]
                let first = wire[..<split].withUnsafeBytes { try? inflater.inflateIntoBuffer($0) }
                #expect(first == .some(nil), "payload \(index), split at \(split): nothing before the marker")
                let second = try wire[split...].withUnsafeBytes { try inflater.inflateIntoBuffer($0) }
                #expect(second.map(Array.init) == payload, "payload \(index), split at \(split)")
            }
        }
        // The cap counts the parts together.
        let small = try Inflater(maxMessageSize: 100)
        let sixty = Deflater()
        let first = sixty.compress(Array(repeating: UInt8(ascii: "a"), count: 60))
        let second = Array(first.suffix(4)) + sixty.compress(Array(repeating: UInt8(ascii: "b"), count: 60))
        #expect(try first.dropLast(4).withUnsafeBytes { try small.inflateIntoBuffer($0) } == nil)
        #expect(throws: GatewayError(.messageTooLarge, "decompressed message exceeds 100 bytes")) {
            try second.withUnsafeBytes { try small.inflateIntoBuffer($0) }
        }
    }

    @Test("each message is a zlib stream of its own")
    func eachMessageItsOwnStream() throws {
        let inflater = try Inflater(maxMessageSize: 1 << 20)
        let payloads: [[UInt8]] = [
            Array("hello".utf8),
            jsonText(200, seed: 1),
            randomBytes(100_000, seed: 2),
            [],
            [0x42],
            jsonText(5, seed: 3),
            mixedPayload(300_000, seed: 4),
        ]
        for (index, payload) in payloads.enumerated() {
            let level = Int32(index % 10)  // 0 (stored blocks) through 9
            let compressed = zlibCompress(payload, level: level)
            #expect(try inflater.inflate(compressed) == payload, "message \(index)")
        }
        // The same through the raw-buffer entry point.
        for payload in payloads {
            let compressed = zlibCompress(payload)
            let output = try compressed.withUnsafeBytes { (bytes) throws(GatewayError) in try inflater.inflate(bytes) }
            #expect(output == payload)
        }
    }

    @Test("one stream for the connection with a sync flush after each message")
    func oneStreamWithSyncFlush() throws {
        let deflater = Deflater()
        let inflater = try Inflater(maxMessageSize: 1 << 20)
        let first = randomLetters(3000, seed: 10)
        let payloads: [[UInt8]] = [
            first,
            first,  // all back-references into the previous message
            Array(first[500..<1500]) + Array(" something new ".utf8) + Array(first[2000...]),
            jsonText(50, seed: 11),
            jsonText(50, seed: 11),
        ]
        var messages: [[UInt8]] = []
        for (index, payload) in payloads.enumerated() {
            let message = deflater.compress(payload)
            #expect(message.suffix(4) == [0x00, 0x00, 0xFF, 0xFF], "sync flush marker, message \(index)")
            messages.append(message)
            #expect(try inflater.inflate(message) == payload, "message \(index)")
        }
        // The dictionary carried across messages really matters: message 1 is only a reference into message 0.
        #expect(messages[0].count > 1500)
        #expect(messages[1].count < 80)
        #expect(messages[4].count < zlibCompress(payloads[4]).count / 10)
        // A context that did not see message 0 cannot decompress message 1 (no header; nor the referenced data).
        let fresh = try Inflater(maxMessageSize: 1 << 20)
        #expect(code { () throws(GatewayError) in try fresh.inflate(messages[1]) } == .decompress)
        // Nor can a context that saw a different first message of the same length: the back-references now copy
        // from that message's data (only a few literals, like the first byte, come from message 1 itself).
        let other = Deflater()
        let otherFirst = randomLetters(3000, seed: 12)
        #expect(try fresh.inflate(other.compress(otherFirst)) == otherFirst)
        let wrong = try fresh.inflate(messages[1])
        #expect(wrong.count == first.count)
        #expect(wrong != first)
        #expect(zip(wrong, otherFirst).filter { $0 == $1 }.count > 2900)

        // An empty payload after a flush compresses to nothing at all (deflate has nothing to flush). The inflater
        // rejects the empty message but leaves the context alone, so the stream goes on.
        #expect(deflater.compress([]) == [])
        #expect(throws: GatewayError(.decompress, "empty message is not valid compressed data")) {
            try inflater.inflate([UInt8]())
        }
        let last = Array(first[100..<2900])
        #expect(try inflater.inflate(deflater.compress(last)) == last)
    }

    @Test("a stream end and the start of the next stream in one message")
    func streamEndAndNewStartInOneMessage() throws {
        let inflater = try Inflater(maxMessageSize: 1 << 20)
        let a = jsonText(20, seed: 20)
        let b = randomBytes(5000, seed: 21)
        let c = Array("third".utf8)
        let (za, zb, zc) = (zlibCompress(a), zlibCompress(b, level: 1), zlibCompress(c))

        // Three whole streams in one message.
        #expect(try inflater.inflate(za + zb + zc) == a + b + c)

        // Streams split across messages: message 2 holds the end of A and the start of B.
        let half = za.count / 2
        var output = try inflater.inflate(Array(za[..<half]))
        output += try inflater.inflate(Array(za[half...]) + Array(zb[..<(zb.count / 2)]))
        output += try inflater.inflate(Array(zb[(zb.count / 2)...]) + zc)
        #expect(output == a + b + c)

        // Every split point of two short streams, including inside headers and Adler-32 trailers.
        let x = Array("first stream, first stream, first stream".utf8)
        let y = Array("second".utf8)
        let both = zlibCompress(x) + zlibCompress(y)
        for split in 1..<both.count {
            var joined = try inflater.inflate(Array(both[..<split]))
            joined += try inflater.inflate(Array(both[split...]))
            #expect(joined == x + y, "split at \(split)")
        }

        // A sync-flush stream fed one byte per message.
        let deflater = Deflater()
        let syncPayloads = [jsonText(3, seed: 22), jsonText(3, seed: 22), Array("end".utf8)]
        let syncStream = syncPayloads.map { deflater.compress($0) }.joined() + deflater.compress([], flush: Z_FINISH)
        var trickled: [UInt8] = []
        for byte in syncStream {
            trickled += try inflater.inflate([byte])
        }
        #expect(trickled == Array(syncPayloads.joined()))
        // The stream ended, so a new one may begin.
        #expect(try inflater.inflate(zc) == c)
    }

    @Test("switching from a sync-flush stream to a stream per message and back")
    func switchingStyle() throws {
        let inflater = try Inflater(maxMessageSize: 1 << 20)
        let deflater = Deflater()
        let payloads = (0..<8).map { jsonText(10 + $0, seed: 30 + UInt64($0)) }

        #expect(try inflater.inflate(deflater.compress(payloads[0])) == payloads[0])
        #expect(try inflater.inflate(deflater.compress(payloads[1])) == payloads[1])
        // The gateway ends the stream with its last message (Z_FINISH): the context is reset afterwards.
        #expect(try inflater.inflate(deflater.compress(payloads[2], flush: Z_FINISH)) == payloads[2])
        // From now on, a stream per message.
        #expect(try inflater.inflate(zlibCompress(payloads[3])) == payloads[3])
        #expect(try inflater.inflate(zlibCompress(payloads[4])) == payloads[4])
        // And a new long stream (the deflater starts one after Z_FINISH, header included).
        let restarted = deflater.compress(payloads[5])
        #expect(restarted.prefix(1) == [0x78])
        #expect(try inflater.inflate(restarted) == payloads[5])
        #expect(try inflater.inflate(deflater.compress(payloads[6])) == payloads[6])
        // A message that is only the end of the stream (empty final block and trailer) produces nothing.
        #expect(try inflater.inflate(deflater.compress([], flush: Z_FINISH)) == [])
        #expect(try inflater.inflate(zlibCompress(payloads[7])) == payloads[7])
    }

    @Test("corrupt data fails with .decompress and the inflater works again afterwards")
    func corruptData() throws {
        let inflater = try Inflater(maxMessageSize: 1 << 20)
        let payload = jsonText(100, seed: 40)
        let valid = zlibCompress(payload)
        let checkRecovered = { () throws in
            #expect(try inflater.inflate(valid) == payload)
        }

        // Flipped bytes in the Adler-32 trailer: always caught by the checksum.
        for position in (valid.count - 4)..<valid.count {
            var corrupt = valid
            corrupt[position] ^= 0xFF
            #expect(throws: GatewayError(.decompress, "incorrect data check")) { try inflater.inflate(corrupt) }
            try checkRecovered()
        }
        // Flipped bytes in the deflate data: a flip is either caught (bad code, bad distance, checksum) or turns the
        // data into an unfinished stream, which is not an error in itself (the rest could come with the next
        // message); it never yields the payload. Most flips are caught right away.
        var caught = 0
        for position in 2..<(valid.count - 4) {
            var corrupt = valid
            corrupt[position] ^= 0xFF
            do {
                let output = try inflater.inflate(corrupt)
                #expect(output != payload, "flip at \(position) went unnoticed")
                inflater.reset()
            } catch {
                #expect(error.code == .decompress)
                caught += 1
            }
            try checkRecovered()
        }
        #expect(caught * 10 >= (valid.count - 6) * 9, "\(caught) of \(valid.count - 6) flips caught")
        for position in [2, valid.count / 3, valid.count / 2] {
            var corrupt = valid
            corrupt[position] ^= 0xFF
            #expect(code { () throws(GatewayError) in try inflater.inflate(corrupt) } == .decompress, "at \(position)")
            try checkRecovered()
        }

        // Wrong headers: a broken check value, gzip, an unknown method, raw deflate without a header.
        var wrongCheck = valid
        wrongCheck[1] ^= 0x01
        #expect(throws: GatewayError(.decompress, "incorrect header check")) { try inflater.inflate(wrongCheck) }
        try checkRecovered()
        let gzipLike: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]
        #expect(throws: GatewayError(.decompress, "incorrect header check")) { try inflater.inflate(gzipLike) }
        try checkRecovered()
        let unknownMethod: [UInt8] = [0x77, 0x85, 0x01, 0x02, 0x03]  // CM = 7, header check valid
        #expect(((0x77 << 8) | 0x85) % 31 == 0)
        #expect(throws: GatewayError(.decompress, "unknown compression method")) { try inflater.inflate(unknownMethod) }
        try checkRecovered()
        #expect(code { () throws(GatewayError) in try inflater.inflate(Array(valid[2...])) } == .decompress)
        try checkRecovered()

        // A preset dictionary (FDICT), which the gateway never uses.
        let needsDictionary: [UInt8] = [0x78, 0xBB, 0x00, 0x00, 0x00, 0x01, 0x4B, 0x04, 0x00]
        #expect(throws: GatewayError(.decompress, "stream requires a preset dictionary")) {
            try inflater.inflate(needsDictionary)
        }
        try checkRecovered()

        // Garbage: text, and garbage after a complete stream in the same message (a new stream must start there).
        #expect(code { () throws(GatewayError) in try inflater.inflate(Array("garbage".utf8)) } == .decompress)
        try checkRecovered()
        let trailingGarbage = valid + [0x01, 0x02, 0x03]
        #expect(code { () throws(GatewayError) in try inflater.inflate(trailingGarbage) } == .decompress)
        try checkRecovered()
        // Truncated: half a stream is fine on its own (the rest could come next) but garbage after it is not.
        #expect(try inflater.inflate(Array(valid[..<20])).count < payload.count)
        let garbage = [UInt8](repeating: 0xFF, count: 64)
        #expect(code { () throws(GatewayError) in try inflater.inflate(garbage) } == .decompress)
        try checkRecovered()

        // Random bytes, each as the first message of a context.
        var failures = 0
        for seed in UInt64(0)..<300 {
            let length = Int(seed % 97) * 7 + 1
            let message = randomBytes(length, seed: 1000 + seed)
            do {
                let output = try inflater.inflate(message)
                // Random data may happen to be a valid start of a stream; the context is then mid-stream.
                #expect(output.count <= 1 << 20)
                inflater.reset()
            } catch {
                #expect(error.code == .decompress)
                failures += 1
            }
            try checkRecovered()
        }
        #expect(failures >= 280)

        // Random bytes after a valid zlib header: garbage for the deflate decoder itself.
        var decoderFailures = 0
        for seed in UInt64(0)..<300 {
            let message = [0x78, 0x9C] + randomBytes(Int(seed % 50) * 20 + 10, seed: 5000 + seed)
            do {
                _ = try inflater.inflate(message)
                inflater.reset()
            } catch {
                #expect(error.code == .decompress)
                decoderFailures += 1
            }
            try checkRecovered()
        }
        #expect(decoderFailures >= 200)
    }

    @Test("a zip bomb stops at the cap, quickly")
    func zipBomb() throws {
        let cap = 1 << 20
        let inflater = try Inflater(maxMessageSize: cap)
        let bomb = zlibCompress([UInt8](repeating: 0, count: 10_000_000), level: 9)
        #expect(bomb.count < 20_000)

        let start = ContinuousClock.now
        #expect(throws: GatewayError(.messageTooLarge, "decompressed message exceeds 1048576 bytes")) {
            try inflater.inflate(bomb)
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(1), "took \(elapsed)")

        // The context was reset: a new stream works.
        #expect(try inflater.inflate(zlibCompress(Array("after the bomb".utf8))) == Array("after the bomb".utf8))

        // The same inside a sync-flush stream.
        let deflater = Deflater(level: 9)
        #expect(try inflater.inflate(deflater.compress(Array("before".utf8))) == Array("before".utf8))
        let syncBomb = deflater.compress([UInt8](repeating: 0, count: 10_000_000))
        #expect(syncBomb.count < 20_000)
        #expect(throws: GatewayError(.messageTooLarge, "decompressed message exceeds 1048576 bytes")) {
            try inflater.inflate(syncBomb)
        }
        #expect(try inflater.inflate(zlibCompress([1, 2, 3])) == [1, 2, 3])
    }

    @Test("output exactly at the cap passes, one byte over fails")
    func exactCap() throws {
        let cap = 100_000
        let inflater = try Inflater(maxMessageSize: cap)
        let exact = mixedPayload(cap, seed: 50)
        let over = mixedPayload(cap + 1, seed: 50)
        let tooLarge = GatewayError(.messageTooLarge, "decompressed message exceeds 100000 bytes")

        // A stream per message, with both entry points.
        #expect(try inflater.inflate(zlibCompress(exact)) == exact)
        #expect(throws: tooLarge) { try inflater.inflate(zlibCompress(over)) }
        let compressedExact = zlibCompress(exact, level: 0)
        #expect(try compressedExact.withUnsafeBytes { (b) throws(GatewayError) in try inflater.inflate(b) } == exact)
        let compressedOver = zlibCompress(over, level: 0)
        #expect(throws: tooLarge) {
            try compressedOver.withUnsafeBytes { (b) throws(GatewayError) in try inflater.inflate(b) }
        }

        // The cap counts the whole message, over all streams in it.
        let halves = zlibCompress(Array(exact[..<50_000])) + zlibCompress(Array(exact[50_000...]))
        #expect(try inflater.inflate(halves) == exact)
        let halvesOver = zlibCompress(Array(over[..<50_000])) + zlibCompress(Array(over[50_000...]))
        #expect(throws: tooLarge) { try inflater.inflate(halvesOver) }

        // Sync-flush style: the cap is per message, not per stream.
        let deflater = Deflater()
        #expect(try inflater.inflate(deflater.compress(exact)) == exact)
        #expect(try inflater.inflate(deflater.compress(exact)) == exact)
        #expect(throws: tooLarge) { try inflater.inflate(deflater.compress(over)) }

        // A cap of zero allows only empty messages.
        let nothing = try Inflater(maxMessageSize: 0)
        #expect(try nothing.inflate(zlibCompress([])) == [])
        #expect(throws: GatewayError(.messageTooLarge, "decompressed message exceeds 0 bytes")) {
            try nothing.inflate(zlibCompress([7]))
        }
    }

    @Test("an empty message is not valid compressed data")
    func emptyMessage() throws {
        let inflater = try Inflater(maxMessageSize: 1024)
        let expected = GatewayError(.decompress, "empty message is not valid compressed data")
        #expect(throws: expected) { try inflater.inflate([UInt8]()) }
        #expect(throws: expected) { try inflater.inflate(UnsafeRawBufferPointer(start: nil, count: 0)) }
        #expect(try inflater.inflate(zlibCompress(Array("ok".utf8))) == Array("ok".utf8))
    }

    @Test("a negative cap is an invalid argument")
    func negativeCap() {
        #expect(throws: GatewayError(.invalidArgument, "maxMessageSize must not be negative, got -1")) {
            _ = try Inflater(maxMessageSize: -1)
        }
    }

    @Test("a 4 MiB payload round trip")
    func largePayload() throws {
        let payload = mixedPayload(4 << 20, seed: 60)
        let inflater = try Inflater(maxMessageSize: 4 << 20)
        #expect(try inflater.inflate(zlibCompress(payload)) == payload)
        #expect(try inflater.inflate(zlibCompress(payload, level: 1)) == payload)

        // The same as one sync-flush stream, whole and in 1 MiB messages.
        let deflater = Deflater()
        #expect(try inflater.inflate(deflater.compress(payload)) == payload)
        let quarter = payload.count / 4
        for part in 0..<4 {
            let slice = Array(payload[(part * quarter)..<((part + 1) * quarter)])
            #expect(try inflater.inflate(deflater.compress(slice)) == slice)
        }
    }
}
