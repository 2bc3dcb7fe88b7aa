import Testing
import UtilbotGateway

@Suite struct FrameEncoderTests {
    @Test(arguments: [0, 1, 125, 126, 65535, 65536, 100_000])
    func encodesMaskedFramesWithTheShortestLength(length: Int) {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var out: [UInt8] = []
        FrameEncoder.encode(opcode: .binary, payload: payload, maskingKey: 0xA1B2_C3D4, into: &out)
        let headerLength = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        #expect(out.count == headerLength + 4 + length)
        #expect(out[0] == 0x82)
        #expect(out[1] & 0x80 == 0x80)
        #expect(Array(out[headerLength..<(headerLength + 4)]) == [0xA1, 0xB2, 0xC3, 0xD4])
        let decoded = decodeClientFrames(out)
        #expect(decoded.count == 1)
        #expect(decoded[0].payload == payload)
    }

    @Test func maskingMatchesTheRFCExample() {
        // RFC 6455 §5.7: a masked "Hello" with key 37 fa 21 3d.
        var out: [UInt8] = []
        FrameEncoder.encode(opcode: .text, payload: Array("Hello".utf8), maskingKey: 0x37FA_213D, into: &out)
        #expect(out == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    }

    @Test func everyFrameGetsAFreshMaskingKey() {
        var connection = WebSocketStateMachine(maxMessageSize: 1024)
        for _ in 0..<64 { connection.send(text: UnsafeRawBufferPointer(start: nil, count: 0)) }
        var keys = Set<[UInt8]>()
        var i = 0
        while i < connection.output.count {
            keys.insert(Array(connection.output[(i + 2)..<(i + 6)]))
            i += 6
        }
        #expect(keys.count == 64)
    }
}
