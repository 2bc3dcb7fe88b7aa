import Testing
import UtilbotGateway

@Suite struct FrameDecoderTests {
    /// Feeds `bytes` whole, one byte at a time and in chunks of 7, and expects the same frames
    /// (the ByteToMessageDecoderVerifier idea).
    private func decodeAllWays(_ bytes: [UInt8], maxPayload: Int = 1 << 20) throws -> [Frame] {
        var results: [[Frame]] = []
        for chunk in [bytes.count, 1, 7] {
            var decoder = FrameDecoder(maxPayload: maxPayload)
            var frames: [Frame] = []
            var i = 0
            while i < max(bytes.count, 1) {
                let end = min(bytes.count, i + max(chunk, 1))
                decoder.append(Array(bytes[i..<end]))
                while let frame = try decoder.nextFrame() { frames.append(frame) }
                i = end
            }
            #expect(decoder.bufferedByteCount == 0)
            results.append(frames)
        }
        #expect(results[0] == results[1])
        #expect(results[0] == results[2])
        return results[0]
    }

    private func failure(_ bytes: [UInt8], maxPayload: Int = 1 << 20) -> WebSocketFailure? {
        var decoder = FrameDecoder(maxPayload: maxPayload)
        decoder.append(bytes)
        do {
            while try decoder.nextFrame() != nil {}
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000])
    func everyLengthForm(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0) }
        let frames = try decodeAllWays(ServerFrame.binary(payload))
        #expect(frames == [Frame(fin: true, opcode: .binary, payload: payload)])
    }

    @Test func sixtyFourBitFormForASmallPayloadIsAccepted() throws {
        let frames = try decodeAllWays(ServerFrame.make(0x2, [1, 2, 3], forceLength64: true))
        #expect(frames == [Frame(fin: true, opcode: .binary, payload: [1, 2, 3])])
    }

    @Test func manyFramesInOneRead() throws {
        let bytes =
            ServerFrame.text("a") + ServerFrame.ping([9]) + ServerFrame.binary([1, 2], fin: false)
            + ServerFrame.continuation([3]) + ServerFrame.close(1000, "bye")
        let frames = try decodeAllWays(bytes)
        #expect(frames.map(\.opcode) == [.text, .ping, .binary, .continuation, .close])
        #expect(frames.map(\.fin) == [true, true, false, true, true])
        #expect(Array(frames[4].payload) == [0x03, 0xE8] + Array("bye".utf8))
    }

    @Test(arguments: [1, 2, 4] as [UInt8])
    func reservedBitsFail(rsv: UInt8) {
        let f = failure(ServerFrame.make(0x1, [0x61], rsv: rsv))
        #expect(f?.closeCode == 1002)
        #expect(f?.error.code == .protocolViolation)
    }

    @Test(arguments: [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] as [UInt8])
    func unknownOpcodesFail(opcode: UInt8) {
        let f = failure(ServerFrame.make(opcode, []))
        #expect(f?.closeCode == 1002)
        #expect(f?.error.message.contains("unknown opcode \(opcode)") == true)
    }

    @Test func maskedServerFrameFails() {
        let f = failure(ServerFrame.make(0x1, Array("hi".utf8), mask: [1, 2, 3, 4]))
        #expect(f?.closeCode == 1002)
        #expect(f?.error.message.contains("masked") == true)
    }

    @Test func fragmentedControlFrameFails() {
        #expect(failure(ServerFrame.make(0x9, [1], fin: false))?.closeCode == 1002)
        #expect(failure(ServerFrame.make(0x8, [3, 232], fin: false))?.closeCode == 1002)
    }

    @Test func oversizedControlFrameFails() {
        let f = failure(ServerFrame.make(0x9, [UInt8](repeating: 0, count: 126)))
        #expect(f?.closeCode == 1002)
        #expect(try! decodeAllWays(ServerFrame.make(0x9, [UInt8](repeating: 7, count: 125))).count == 1)
    }

    @Test func lengthWithMostSignificantBitFails() {
        let bytes: [UInt8] = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]
        #expect(failure(bytes)?.closeCode == 1002)
    }

    @Test func oversizedFrameFailsWith1009BeforeItsPayloadArrives() {
        // Only the header: the decoder must refuse without waiting for (or buffering) 2^40 bytes.
        let bytes: [UInt8] = [0x82, 127, 0, 0, 1, 0, 0, 0, 0, 0]
        let f = failure(bytes, maxPayload: 1 << 20)
        #expect(f?.closeCode == 1009)
        #expect(f?.error.code == .messageTooLarge)
        #expect(failure(ServerFrame.binary([UInt8](repeating: 0, count: 101)), maxPayload: 100)?.closeCode == 1009)
        #expect(failure(ServerFrame.binary([UInt8](repeating: 0, count: 100)), maxPayload: 100) == nil)
    }

    @Test func incompleteInputYieldsNothing() throws {
        let whole = ServerFrame.binary([UInt8](repeating: 5, count: 300))
        for cut in 0..<whole.count {
            var decoder = FrameDecoder(maxPayload: 1 << 20)
            decoder.append(Array(whole[0..<cut]))
            #expect(try decoder.nextFrame() == nil)
        }
    }
}
