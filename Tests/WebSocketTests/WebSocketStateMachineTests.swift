import Testing
import UtilbotGateway

/// The sans-I/O connection, grouped by RFC 6455 concern (as websockets' test_protocol.py does).
@Suite struct WebSocketStateMachineTests {
    private func receive(_ c: inout WebSocketStateMachine, _ bytes: [UInt8], oneByteAtATime: Bool = false)
        -> [WebSocketStateMachine.Event]
    {
        if !oneByteAtATime { return c.receive(bytes) }
        return bytes.flatMap { c.receive([$0]) }
    }

    private func sent(_ c: inout WebSocketStateMachine) -> [(opcode: UInt8, fin: Bool, payload: [UInt8])] {
        let frames = decodeClientFrames(c.output)
        c.output = []
        return frames
    }

    // MARK: Fragmentation

    @Test(arguments: [false, true])
    func reassemblesFragmentsWithControlFramesBetween(byteByByte: Bool) {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let bytes =
            ServerFrame.text("hé", fin: false) + ServerFrame.ping([1])
            + ServerFrame.continuation(Array("llo".utf8), fin: false)
            + ServerFrame.pong([2]) + ServerFrame.continuation([], fin: true)
        let events = receive(&c, bytes, oneByteAtATime: byteByByte)
        #expect(events == [.ping([1]), .pong([2]), .text(ArraySlice("héllo".utf8))])
        let out = sent(&c)
        #expect(out.count == 1)
        #expect(out[0].opcode == 0xA)
        #expect(out[0].payload == [1])
    }

    @Test func utf8SplitAcrossFragmentsIsAccepted() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let smile = Array("😀".utf8)
        let events = c.receive(
            ServerFrame.make(0x1, [smile[0]], fin: false) + ServerFrame.make(0x0, [smile[1], smile[2]], fin: false)
                + ServerFrame.make(0x0, [smile[3]]))
        #expect(events == [.text(smile[...])])
    }

    @Test func continuationWithoutAMessageFails() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let events = c.receive(ServerFrame.continuation([1]))
        guard case .closed(1002, _, let error?) = events.last else {
            Issue.record("expected a 1002 failure, got \(events)")
            return
        }
        #expect(error.code == .protocolViolation)
        #expect(sent(&c).map(\.opcode) == [0x8])
        #expect(c.state == .closed)
    }

    @Test func newDataFrameInsideAFragmentedMessageFails() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let events = c.receive(ServerFrame.text("a", fin: false) + ServerFrame.text("b"))
        #expect(events.count == 1)
        if case .closed(let code, _, let error) = events[0] {
            #expect(code == 1002)
            #expect(error?.message.contains("inside a fragmented message") == true)
        } else {
            Issue.record("expected a failure")
        }
    }

    @Test func fragmentedMessageOverTheLimitFailsWith1009() {
        var c = WebSocketStateMachine(maxMessageSize: 10)
        let events = c.receive(
            ServerFrame.binary([UInt8](repeating: 1, count: 6), fin: false)
                + ServerFrame.continuation([UInt8](repeating: 2, count: 5)))
        guard case .closed(1009, _, let error?) = events.last else {
            Issue.record("expected 1009, got \(events)")
            return
        }
        #expect(error.code == .messageTooLarge)
        let out = sent(&c)
        #expect(out.last?.payload.prefix(2) == [0x03, 0xF1])
    }

    // MARK: UTF-8

    @Test func invalidUTF8FailsWith1007() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let events = c.receive(ServerFrame.make(0x1, [0x61, 0xC3, 0x28]))
        guard case .closed(1007, _, let error?) = events.last else {
            Issue.record("expected 1007, got \(events)")
            return
        }
        #expect(error.code == .invalidUTF8)
        #expect(sent(&c).last?.payload == [0x03, 0xEF])
    }

    @Test func invalidUTF8IsCaughtInTheFirstFragment() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        // 0xED 0xA0 starts a surrogate: invalid before the message ends.
        let events = c.receive(ServerFrame.make(0x1, [0x61, 0xED, 0xA0], fin: false))
        guard case .closed(1007, _, _) = events.last else {
            Issue.record("expected 1007 at once, got \(events)")
            return
        }
    }

    @Test func truncatedUTF8AtTheEndOfAMessageFails() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let events = c.receive(ServerFrame.make(0x1, [0xF0, 0x9F, 0x98]))
        guard case .closed(1007, _, _) = events.last else {
            Issue.record("expected 1007, got \(events)")
            return
        }
    }

    @Test func binaryIsNotValidatedAsUTF8() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        #expect(c.receive(ServerFrame.binary([0xFF, 0xFE])) == [.binary([0xFF, 0xFE])])
    }

    // MARK: Control frames

    @Test func pingIsAnsweredWithTheSamePayload() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let payload = Array("x".utf8) + [UInt8](repeating: 9, count: 124)
        #expect(c.receive(ServerFrame.ping(payload)) == [.ping(payload[...])])
        let out = sent(&c)
        #expect(out.count == 1 && out[0].opcode == 0xA && out[0].payload == payload)
    }

    // MARK: Closing handshake

    @Test func serverCloseIsEchoedWithItsCode() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        #expect(c.receive(ServerFrame.close(4001, "bad key")) == [.closed(code: 4001, reason: "bad key", error: nil)])
        let out = sent(&c)
        #expect(out.count == 1 && out[0].opcode == 0x8 && out[0].payload == [0x0F, 0xA1])
        #expect(c.state == .closed)
        #expect(c.receive(ServerFrame.text("late")).isEmpty)
    }

    @Test func emptyServerCloseIsAnsweredWithAnEmptyClose() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        #expect(c.receive(ServerFrame.make(0x8, [])) == [.closed(code: 1005, reason: "", error: nil)])
        #expect(sent(&c).first?.payload == [])
    }

    @Test func ourCloseCompletesWhenTheServerAnswers() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let started = c.close(code: 1000, reason: "bye")
        #expect(started)
        #expect(sent(&c).first?.payload == [0x03, 0xE8] + Array("bye".utf8))
        #expect(c.state == .closing(code: 1000, reason: "bye"))
        let sentAfterClose = c.send(text: UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(sentAfterClose == false)
        // Data after our close is discarded; the answer completes the handshake.
        let events = c.receive(ServerFrame.text("ignored") + ServerFrame.close(1000))
        #expect(events == [.closed(code: 1000, reason: "bye", error: nil)])
        #expect(sent(&c).isEmpty)
    }

    @Test(arguments: [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] as [UInt16])
    func closeWithAnInvalidCodeFails(code: UInt16) {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        let events = c.receive(ServerFrame.close(code))
        guard case .closed(1002, _, let error?) = events.last else {
            Issue.record("expected 1002 for close code \(code), got \(events)")
            return
        }
        #expect(error.message.contains("\(code)"))
    }

    @Test func closeWithOneBytePayloadFails() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        guard case .closed(1002, _, _) = c.receive(ServerFrame.make(0x8, [3])).last else {
            Issue.record("expected 1002")
            return
        }
    }

    @Test func closeReasonWithInvalidUTF8Fails() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        guard case .closed(1007, _, _) = c.receive(ServerFrame.make(0x8, [0x03, 0xE8, 0xFF])).last else {
            Issue.record("expected 1007")
            return
        }
    }

    @Test func closeReasonIsTruncatedTo123Bytes() {
        var c = WebSocketStateMachine(maxMessageSize: 1024)
        c.close(code: 1000, reason: String(repeating: "r", count: 300))
        #expect(sent(&c).first?.payload.count == 125)
    }
}
