import Testing
import UtilbotGateway

private let ms: UInt64 = 1_000_000

/// Drives a SessionStateMachine on a virtual clock: no sockets, no sleeping.
private struct Driver {
    var machine: SessionStateMachine
    var now: UInt64 = 1_000 * ms
    var sent: [String] = []
    var events: [SessionEvent] = []
    /// Op 0 events, as "name d" ("name" alone without d).
    var dispatches: [String] = []
    var other: [SessionStateMachine.Action] = []

    init(key: String = "k", configure: (inout SessionConfiguration) -> Void = { _ in }) {
        var configuration = SessionConfiguration(key: key)
        configuration.backoffBaseNanoseconds = 1_000 * ms
        configuration.backoffCapNanoseconds = 8_000 * ms
        configure(&configuration)
        machine = SessionStateMachine(configuration: configuration, seed: 42)
    }

    mutating func record(_ actions: [SessionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let bytes), .sendEvent(let bytes): sent.append(String(decoding: bytes, as: UTF8.self))
            case .emit(let event):
                if case .log = event { continue }
                events.append(event)
            default: other.append(action)
            }
        }
    }

    mutating func take() -> (sent: [String], events: [SessionEvent], other: [SessionStateMachine.Action]) {
        defer {
            sent = []
            events = []
            other = []
        }
        return (sent, events, other)
    }

    /// Gives the machine one input and records what it asks for.
    mutating func drive(_ input: (inout SessionStateMachine, inout [SessionStateMachine.Action]) -> Void) {
        var actions: [SessionStateMachine.Action] = []
        input(&machine, &actions)
        record(actions)
    }

    mutating func start() { drive { [now] in $0.start(now: now, into: &$1) } }
    mutating func open() { drive { [now] in $0.connectionOpened(now: now, into: &$1) } }
    /// A whole message; an op 0 event is recorded after the actions, as the driver delivers it.
    mutating func receive(_ json: String) {
        var dispatch: SessionStateMachine.Dispatch?
        drive { [now] machine, actions in dispatch = machine.received(Array(json.utf8)[...], now: now, into: &actions) }
        if let dispatch {
            dispatches.append(
                dispatch.name + (dispatch.data.map { " " + String(decoding: $0, as: UTF8.self) } ?? ""))
        }
    }
    mutating func advance(_ delta: UInt64) {
        now += delta
        tick()
    }
    mutating func tick(dueBy: UInt64? = nil) { drive { [now] in $0.tick(now: now, dueBy: dueBy, into: &$1) } }
    mutating func close(code: UInt16 = 1000) { drive { $0.close(code: code, into: &$1) } }
    mutating func send(payload: [UInt8]) throws(GatewayError) {
        var actions: [SessionStateMachine.Action] = []
        try machine.send(payload: payload, into: &actions)
        record(actions)
    }
    mutating func closed(_ code: UInt16, byServer: Bool = true, error: GatewayError? = nil) {
        let info = WebSocketCloseInfo(code: code, reason: "", closedByServer: byServer, error: error, httpStatus: nil)
        drive { [now] in $0.connectionClosed(info, now: now, into: &$1) }
    }

    /// Connects and identifies with a heartbeat interval of `interval` ms.
    mutating func ready(interval: Int = 1000) {
        start()
        open()
        receive(#"{"op":5,"d":{"heartbeat":\#(interval)}}"#)
        receive(#"{"op":11}"#)
        receive(#"{"op":0,"t":"bot_connect_success","d":{"bot_id":"b1"}}"#)
        _ = take()
    }
}

@Suite struct SessionStateMachineTests {
    @Test func aPlainEventComesBackForDirectDeliveryWithNoAction() {
        var d = Driver()
        d.ready()
        // A slice that does not start at index 0, as a receive buffer hands it over.
        let buffer = Array("garbage before".utf8) + Array(#"{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":3}}"#.utf8)
        var actions: [SessionStateMachine.Action] = []
        let dispatch = d.machine.received(buffer[14...], now: d.now, into: &actions)
        #expect(actions.isEmpty)
        #expect(dispatch?.name == "GLOBAL_GUILD_COUNT")
        #expect(dispatch?.data.map { Array($0) } == Array(#"{"guilds":3}"#.utf8))
        let noData = Array(#"{"op":0,"t":"X","d":null}"#.utf8)
        let second = d.machine.received(noData[...], now: d.now, into: &actions)
        #expect(second?.name == "X" && second?.data == nil && actions.isEmpty)
        // Anything the session acts on still comes as actions.
        let ack = Array(#"{"op":11}"#.utf8)
        #expect(d.machine.received(ack[...], now: d.now, into: &actions) == nil)
        #expect(!actions.isEmpty)
    }

    @Test func helloThenHeartbeatAtOnceThenIdentify() {
        var d = Driver(key: "secret")
        d.start()
        #expect(d.take().events == [.state(.connecting)])
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":45000}}"#)
        let step = d.take()
        #expect(step.sent == [#"{"op":10}"#, #"{"op":1,"t":"identify","d":{"type":"bot","key":"secret"}}"#])
        #expect(step.events == [.state(.identifying)])
        d.receive(#"{"op":0,"t":"bot_connect_success","d":{"bot_id":"x"}}"#)
        #expect(d.take().events == [.state(.ready), .ready])
        #expect(d.dispatches == [#"bot_connect_success {"bot_id":"x"}"#])
    }

    @Test func acceptsTheDocumentedMisspelling() {
        var d = Driver()
        d.start()
        d.open()
        d.receive(#"{"op":5,"d":{"hearbeat":60000}}"#)
        #expect(d.take().sent.count == 2)
        #expect(d.machine.heartbeat?.intervalNanoseconds == 60_000 * ms)
    }

    @Test func helloWithoutAnIntervalBreaksTheConnection() {
        var d = Driver()
        d.start()
        d.open()
        _ = d.take()
        d.receive(#"{"op":5,"d":{}}"#)
        let step = d.take()
        #expect(step.sent.isEmpty)
        #expect(step.other == [.drop(code: 1002, reason: "")])
    }

    @Test func heartbeatsAtAFixedRateEachALeadBeforeItsSlot() {
        var d = Driver()
        let hello = d.now
        d.ready(interval: 1000)
        let lead = 1000 * ms / 16
        #expect(d.machine.nextDeadline == hello + 1000 * ms - lead)
        for n in 1...30 {
            let slot = hello + UInt64(n) * 1000 * ms
            d.advance(slot - lead - 1 * ms - d.now)
            #expect(d.take().sent.isEmpty)
            d.advance(1 * ms)
            #expect(d.take().sent == [#"{"op":10}"#])
            // The ACK's delay never shifts the schedule.
            d.now += UInt64(n % 7) * 20 * ms
            d.receive(#"{"op":11}"#)
            #expect(d.take().events == [.heartbeatAck(nanoseconds: UInt64(n % 7) * 20 * ms)])
            #expect(d.machine.nextDeadline == slot + 1000 * ms - lead)
        }
    }

    @Test func aLateBeatDoesNotPushTheNextOnesBack() {
        var d = Driver()
        let hello = d.now
        d.ready(interval: 1000)
        let lead = 1000 * ms / 16
        // The host stalled: the first beat after Hello's goes 300 ms late.
        d.advance(hello + 1300 * ms - d.now)
        #expect(d.take().sent == [#"{"op":10}"#])
        #expect(d.machine.nextDeadline == hello + 2000 * ms - lead)
        d.receive(#"{"op":11}"#)
        // A stall of several intervals: one beat, then the next slot still ahead, no burst.
        d.advance(hello + 5500 * ms - d.now)
        #expect(d.take().sent == [#"{"op":10}"#])
        #expect(d.machine.nextDeadline == hello + 6000 * ms - lead)
    }

    @Test func aTimerFiringEarlyForItsDeadlineBeatsThen() {
        var d = Driver()
        d.ready(interval: 1000)
        let deadline = d.machine.nextDeadline!
        // Coalescing moved the timer 4 ms earlier: what is due by its deadline is done now.
        d.now = deadline - 4 * ms
        d.tick(dueBy: deadline)
        #expect(d.take().sent == [#"{"op":10}"#])
        d.now += 10 * ms
        d.receive(#"{"op":11}"#)
        #expect(d.take().events == [.heartbeatAck(nanoseconds: 10 * ms)])
    }

    @Test func bytesOfAMessageStillArrivingAreASignOfLife() {
        var d = Driver()
        d.ready(interval: 1000)
        d.advance(1000 * ms)
        _ = d.take()
        // No ACK, but part of a large message arrived: not a zombie.
        d.now += 500 * ms
        d.machine.bytesReceived(now: d.now)
        d.advance(500 * ms)
        let step = d.take()
        #expect(step.other.isEmpty)
        #expect(step.sent == [#"{"op":10}"#])
        // Then silence for a whole interval: a zombie.
        d.advance(1000 * ms)
        #expect(d.take().other == [.drop(code: CloseCode.goingAway, reason: "zombie")])
    }

    @Test func zombieWhenABeatGoesUnansweredAndNothingArrives() {
        var d = Driver()
        d.ready(interval: 1000)
        d.advance(1000 * ms)
        #expect(d.take().sent == [#"{"op":10}"#])  // never ACKed
        d.advance(1000 * ms)
        let step = d.take()
        #expect(step.sent.isEmpty)
        #expect(step.other == [.drop(code: 1001, reason: "zombie")])
        // Given up: no timer until its close arrives (a deadline already past would spin the loop).
        #expect(d.machine.nextDeadline == nil)
        d.closed(1001, byServer: false)
        guard case .closed(1001, _, true, let error?, nil) = d.take().events.first else {
            Issue.record("expected a reconnecting close")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.message.contains("zombie"))
    }

    @Test func noFalseZombieWhileOtherTrafficFlows() {
        var d = Driver()
        d.ready(interval: 1000)
        for _ in 0..<5 {
            d.advance(1000 * ms)
            #expect(d.take().sent == [#"{"op":10}"#])
            d.now += 10 * ms
            d.receive(#"{"op":0,"t":"GLOBAL_GUILD_COUNT","d":{"guilds":1}}"#)  // no ACK, but alive
            d.now -= 10 * ms
            _ = d.take()
        }
        #expect(d.take().other.isEmpty)
        #expect(d.machine.state == .ready)
    }

    @Test(arguments: [4000, 4001, 4007] as [UInt16])
    func fatalCodesStopForGood(code: UInt16) {
        var d = Driver()
        d.start()
        d.open()
        _ = d.take()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        d.receive(#"{"op":-1,"e":\#(code),"m":"No."}"#)
        #expect(d.take().events == [.state(.identifying), .gatewayError(code: Int(code), message: "No.", data: nil)])
        d.closed(code)
        let events = d.take().events
        #expect(events.count == 3)
        guard case .closed(code, _, false, _, _) = events[0], case .fatal(code, _) = events[1] else {
            Issue.record("expected closed then fatal, got \(events)")
            return
        }
        #expect(events[2] == .state(.failed))
        #expect(d.machine.nextDeadline == nil)
        d.advance(3_600_000 * ms)
        #expect(d.take().other.isEmpty)  // never reconnects
    }

    @Test func aFatalErrorThenABrokenConnectionIsClosedWithTheFatalCode() {
        var d = Driver()
        d.start()
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        d.receive(#"{"op":-1,"e":4001,"m":"Wrong Auth Key."}"#)
        _ = d.take()
        // The TCP connection then broke with no close frame: 1006 on the wire, 4001 decides.
        d.closed(1006, byServer: false, error: GatewayError(.io, "connection reset"))
        let events = d.take().events
        guard case .closed(4001, _, false, _, _) = events.first, case .fatal(4001, _) = events[events.count - 2] else {
            Issue.record("expected CLOSED 4001 ... FATAL 4001, got \(events)")
            return
        }
        #expect(events.last == .state(.failed))
    }

    @Test func noBotConnectSuccessEndsTheAttemptAndKeepsQueuedSends() throws {
        var d = Driver { $0.readyTimeoutNanoseconds = 5_000 * ms }
        d.start()
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        try d.send(payload: SessionStateMachine.payload(name: "keep", data: nil))
        _ = d.take()
        for _ in 0..<4 {
            d.advance(1000 * ms)
            d.receive(#"{"op":11}"#)
        }
        #expect(d.take().other.isEmpty)
        d.advance(1000 * ms)
        #expect(d.take().other == [.drop(code: CloseCode.policyViolation, reason: "no bot_connect_success")])
        d.closed(1008, byServer: false)
        guard case .closed(_, _, true, let error?, _) = d.take().events.first else {
            Issue.record("expected a reconnecting CLOSED with an error")
            return
        }
        #expect(error.code == .timeout)
        #expect(error.message.contains("bot_connect_success"))
        // The next attempt identifies; the queued send goes out then.
        d.advance(d.machine.nextDeadline! - d.now)
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
        #expect(d.take().sent.last == #"{"op":1,"t":"keep"}"#)
    }

    /// The default wait for bot_connect_success after identify is 30 s, as the header says.
    @Test func theReadyDeadlineIsThirtySecondsByDefault() {
        var d = Driver()
        d.start()
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        _ = d.take()
        for _ in 0..<29 {
            d.advance(1000 * ms)
            d.receive(#"{"op":11}"#)
        }
        d.advance(999 * ms)
        #expect(d.take().other.isEmpty)
        d.advance(1 * ms)
        #expect(d.take().other == [.drop(code: CloseCode.policyViolation, reason: "no bot_connect_success")])
    }

    @Test func noNewAttemptWhileTheHostHasNoRoomForItsEvents() {
        var d = Driver()
        d.ready()
        d.closed(1000)
        _ = d.take()
        d.machine.setReadsPaused(true, now: d.now)
        #expect(d.machine.nextDeadline == nil)
        d.advance(120_000 * ms)
        #expect(d.take().other.isEmpty)
        d.machine.setReadsPaused(false, now: d.now)
        d.advance(0)
        #expect(d.take().other == [.connect])
    }

    @Test func pausedReadsPutOffTheHelloAndReadyDeadlines() {
        var d = Driver {
            $0.helloTimeoutNanoseconds = 1_000 * ms
            $0.readyTimeoutNanoseconds = 2_000 * ms
        }
        d.start()
        d.open()
        _ = d.take()
        d.machine.setReadsPaused(true, now: d.now)
        d.advance(10_000 * ms)
        #expect(d.take().other.isEmpty)
        d.machine.setReadsPaused(false, now: d.now)
        d.advance(999 * ms)
        #expect(d.take().other.isEmpty)
        d.receive(#"{"op":5,"d":{"heartbeat":500}}"#)
        d.machine.setReadsPaused(true, now: d.now)
        for _ in 0..<20 { d.advance(500 * ms) }  // beats go on, no zombie, no ready timeout
        #expect(d.take().other.isEmpty)
        d.machine.setReadsPaused(false, now: d.now)
        d.receive(#"{"op":11}"#)
        d.advance(1_500 * ms)
        d.receive(#"{"op":11}"#)
        #expect(d.take().other.isEmpty)
        d.advance(600 * ms)
        #expect(d.take().other == [.drop(code: CloseCode.policyViolation, reason: "no bot_connect_success")])
    }

    @Test(arguments: [1000, 4006, 4002, 4003, 4004, 4005, 1011, 1006] as [UInt16])
    func otherCodesReconnectWithBackoff(code: UInt16) {
        var d = Driver()
        d.ready()
        d.closed(code)
        let events = d.take().events
        guard case .closed(code, _, true, _, _) = events.first else {
            Issue.record("expected a reconnecting close, got \(events)")
            return
        }
        #expect(events.last == .state(.reconnecting))
        let deadline = d.machine.nextDeadline!
        #expect(deadline >= d.now && deadline <= d.now + 1000 * ms)
        d.advance(deadline - d.now)
        #expect(d.take().other == [.connect])
        #expect(d.machine.reconnects == 1)
    }

    @Test func backoffGrowsToTheCapAndResetsAfterIdentify() {
        var d = Driver()
        d.start()
        _ = d.take()
        var ceilings: [UInt64] = []
        for _ in 0..<6 {
            ceilings.append(d.machine.backoff.ceiling)
            d.closed(1006, byServer: false, error: GatewayError(.connect, "refused"))
            let wait = d.machine.nextDeadline! - d.now
            #expect(wait <= ceilings.last!)
            d.advance(wait)
            #expect(d.take().other == [.connect])
        }
        #expect(ceilings == [1000, 2000, 4000, 8000, 8000, 8000].map { $0 * ms })
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
        #expect(d.machine.backoff.ceiling == 8000 * ms)  // not yet: the session must prove itself
        d.receive(#"{"op":11}"#)
        #expect(d.machine.backoff.ceiling == 1000 * ms)
    }

    @Test func aGatewayThatClosesRightAfterIdentifyDoesNotResetTheBackoff() {
        var d = Driver()
        d.start()
        var ceilings: [UInt64] = []
        for _ in 0..<4 {
            d.open()
            d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
            d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
            ceilings.append(d.machine.backoff.ceiling)
            d.closed(1000)
            d.advance(d.machine.nextDeadline! - d.now)
        }
        #expect(ceilings == [1000, 2000, 4000, 8000].map { $0 * ms })
    }

    @Test func aHostileHelloIntervalIsClampedNotATrap() {
        for interval in ["100000000000000", "9223372036854775807", "1"] {
            var d = Driver()
            d.start()
            d.open()
            d.receive(#"{"op":5,"d":{"heartbeat":\#(interval)}}"#)
            d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
            let beat = d.machine.heartbeat!.intervalNanoseconds
            #expect(beat >= 50 * ms && beat <= 3_600_000 * ms)
            d.advance(beat)
            #expect(d.take().sent.last == #"{"op":10}"#)
        }
    }

    @Test func sendsBeforeReadyWaitAndFlushInOrderAfterIdentify() throws {
        var d = Driver()
        d.start()
        for i in 0..<3 {
            try d.send(
                payload: SessionStateMachine.payload(name: "send_servers", data: Array("{\"n\":\(i)}".utf8)))
        }
        #expect(d.take().sent.isEmpty)
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        #expect(d.take().sent.count == 2)  // heartbeat and identify only
        d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
        #expect(d.take().sent == (0..<3).map { #"{"op":1,"t":"send_servers","d":{"n":\#($0)}}"# })
    }

    @Test func queuedSendsSurviveAReconnect() throws {
        var d = Driver()
        d.start()
        try d.send(payload: SessionStateMachine.payload(name: "a", data: nil))
        d.closed(1006, byServer: false)
        d.advance(d.machine.nextDeadline! - d.now)
        d.open()
        d.receive(#"{"op":5,"d":{"heartbeat":1000}}"#)
        d.receive(#"{"op":0,"t":"bot_connect_success"}"#)
        #expect(d.take().sent.last == #"{"op":1,"t":"a"}"#)
    }

    @Test func theQueueIsBounded() throws {
        var d = Driver { $0.maxQueuedMessages = 2 }
        d.start()
        let payload = try SessionStateMachine.payload(name: "x", data: nil)
        try d.send(payload: payload)
        try d.send(payload: payload)
        #expect(throws: GatewayError(.queueFull, "send queue full: 2 messages wait for the session to be ready")) {
            try d.send(payload: payload)
        }
    }

    @Test func queuedSendsAreReportedWhenTheClientIsRefused() throws {
        var d = Driver()
        d.start()
        try d.send(payload: SessionStateMachine.payload(name: "x", data: nil))
        d.closed(4001)
        let events = d.take().events
        guard let dropped = events.firstIndex(where: { if case .sendsDropped = $0 { true } else { false } }),
            case .sendsDropped(1, let reason) = events[dropped]
        else {
            Issue.record("expected the undelivered send reported, got \(events)")
            return
        }
        #expect(reason.contains("4001"))
        // After FATAL, nothing but the final state.
        guard let fatal = events.firstIndex(where: { if case .fatal = $0 { true } else { false } }) else {
            Issue.record("no FATAL in \(events)")
            return
        }
        #expect(dropped < fatal)
        #expect(Array(events[(fatal + 1)...]) == [.state(.failed)])
        #expect(throws: GatewayError.self) { try d.send(payload: [1]) }
    }

    // Inputs a correct driver never gives stop a debug build (release builds ignore them).
    #if DEBUG
        @Test func aMessageWithoutAConnectionStopsADebugBuild() async {
            await #expect(processExitsWith: .failure) {
                var d = Driver()
                d.receive(#"{"op":11}"#)
            }
        }

        @Test func aCloseWithoutAConnectionStopsADebugBuild() async {
            await #expect(processExitsWith: .failure) {
                var d = Driver()
                d.start()
                d.closed(1006, byServer: false)  // reconnecting: no connection until the backoff is over
                d.closed(1006, byServer: false)
            }
        }

        @Test func aSecondStartStopsADebugBuild() async {
            await #expect(processExitsWith: .failure) {
                var d = Driver()
                d.start()
                d.start()
            }
        }
    #endif

    @Test func payloadValidation() {
        #expect(throws: GatewayError.self) { try SessionStateMachine.payload(name: "", data: nil) }
        #expect(throws: GatewayError.self) { try SessionStateMachine.payload(name: "identify", data: nil) }
        #expect(throws: GatewayError.self) { try SessionStateMachine.payload(name: "x", data: Array("{bad".utf8)) }
        #expect(throws: GatewayError.self) { try SessionStateMachine.payload(name: "x", data: Array("[1, 2]".utf8)) }
        #expect(throws: GatewayError.self) { try SessionStateMachine.payload(name: "x", data: Array("null".utf8)) }
        #expect(
            try! SessionStateMachine.payload(name: "q\"", data: Array(#" {"a": [1, 2]}"#.utf8))
                == Array(#"{"op":1,"t":"q\"","d": {"a": [1, 2]}}"#.utf8))
    }

    @Test func gatewayErrorsAreReportedWithCodeMessageAndData() {
        var d = Driver()
        d.ready()
        d.receive(#"{"op":-1,"e":4005,"d":{"errors":["Type not provided."],"data":[null]},"m":"Malformed data."}"#)
        #expect(
            d.take().events == [
                .gatewayError(
                    code: 4005, message: "Malformed data.",
                    data: ArraySlice(#"{"errors":["Type not provided."],"data":[null]}"#.utf8))
            ])
    }

    @Test func malformedJSONIsALocalErrorAndTheSessionGoesOn() {
        var d = Driver()
        d.ready()
        d.receive(#"{"op":0,"t":"#)
        guard case .localError(let error) = d.take().events.first else {
            Issue.record("expected a local error")
            return
        }
        #expect(error.code == .invalidJSON)
        #expect(d.machine.state == .ready)
    }

    @Test func unknownEventsPassThrough() {
        var d = Driver()
        d.ready()
        d.receive(#"{"op":0,"t":"SOMETHING_NEW","d":[1,2,3]}"#)
        #expect(d.take().events.isEmpty)
        #expect(d.dispatches.last == "SOMETHING_NEW [1,2,3]")
    }

    @Test func noHelloDropsTheConnectionAfterTheTimeout() {
        var d = Driver { $0.helloTimeoutNanoseconds = 500 * ms }
        d.start()
        d.open()
        _ = d.take()
        d.advance(499 * ms)
        #expect(d.take().other.isEmpty)
        d.advance(1 * ms)
        #expect(d.take().other == [.drop(code: 1008, reason: "no hello")])
        d.closed(1008, byServer: false)
        guard case .closed(_, _, true, let error?, _) = d.take().events.first else {
            Issue.record("expected a reconnecting close")
            return
        }
        #expect(error.message.contains("no Hello"))
    }

    @Test func hostCloseIsFinal() {
        var d = Driver()
        d.ready()
        d.close(code: 1000)
        let step = d.take()
        #expect(step.events == [.state(.closing)])
        #expect(step.other == [.close(code: 1000, reason: "")])
        d.closed(1000, byServer: false)
        #expect(
            d.take().events == [
                .closed(code: 1000, reason: "", reconnect: false, error: nil, httpStatus: nil), .state(.closed),
            ])
        d.advance(3_600_000 * ms)
        #expect(d.take().other.isEmpty)
    }

    @Test func stopWhileWaitingToReconnectEndsAtOnce() {
        var d = Driver()
        d.ready()
        d.closed(4006)
        _ = d.take()
        d.close(code: 1000)
        #expect(d.take().events == [.state(.closed)])
        #expect(d.machine.nextDeadline == nil)
    }
}

@Suite struct BackoffTests {
    @Test func fullJitterStaysUnderTheCeiling() {
        var backoff = Backoff(baseNanoseconds: 100, capNanoseconds: 1000)
        var random = SplitMix64(seed: 7)
        var maxima: [UInt64] = []
        for _ in 0..<8 {
            let ceiling = backoff.ceiling
            maxima.append(ceiling)
            #expect(backoff.nextDelay(using: &random) <= ceiling)
        }
        #expect(maxima == [100, 200, 400, 800, 1000, 1000, 1000, 1000])
        backoff.reset()
        #expect(backoff.ceiling == 100)
    }

    @Test func delaysAreSpreadNotFixed() {
        var random = SplitMix64(seed: 1)
        var delays = Set<UInt64>()
        for _ in 0..<50 {
            var backoff = Backoff(baseNanoseconds: 1_000_000, capNanoseconds: 1_000_000)
            delays.insert(backoff.nextDelay(using: &random))
        }
        #expect(delays.count > 40)
    }

    @Test func hugeAttemptCountsDoNotOverflow() {
        var backoff = Backoff(baseNanoseconds: 1_000_000_000, capNanoseconds: 60_000_000_000)
        var random = SplitMix64(seed: 3)
        for _ in 0..<200 { _ = backoff.nextDelay(using: &random) }
        #expect(backoff.ceiling == 60_000_000_000)
    }
}

@Suite struct ClosePolicyTests {
    @Test func everyDocumentedCode() {
        #expect([4000, 4001, 4007].map { ClosePolicy(closeCode: $0) } == [.fatal, .fatal, .fatal])
        #expect((4002...4005).map { ClosePolicy(closeCode: UInt16($0)) } == Array(repeating: .clientBug, count: 4))
        #expect(
            [1000, 1001, 1006, 4006, 4008, 3000].map { ClosePolicy(closeCode: $0) }
                == Array(repeating: .reconnect, count: 6))
    }
}

@Suite struct GatewayURLTests {
    @Test func addsTheVersionAndCompression() throws {
        #expect(try GatewayURL("wss://gateway.utilbot.co", compression: false).webSocketURL.resource == "/?v=1")
        #expect(
            try GatewayURL("wss://gateway.utilbot.co/", compression: true).webSocketURL.resource
                == "/?v=1&compression=zlib")
        #expect(try GatewayURL("ws://h/gw?x=1", compression: false).webSocketURL.resource == "/gw?v=1&x=1")
    }

    @Test func keepsWhatTheQueryAlreadySays() throws {
        let url = try GatewayURL("ws://h/?v=2&compression=zlib", compression: false)
        #expect(url.webSocketURL.resource == "/?v=2&compression=zlib")
        #expect(url.compression)
        #expect(throws: GatewayError.self) { try GatewayURL("ws://h/?compression=gzip", compression: false) }
    }
}

@Suite struct GatewayURLScalarTests {
    @Test func delimitersFollowedByCombiningMarksAreStillDelimiters() throws {
        let url = try GatewayURL("ws://host/?\u{301}q", compression: false)
        #expect(url.webSocketURL.resource == "/?v=1&\u{301}q")
        let compressed = try GatewayURL("ws://host/?v=1&compression=zlib", compression: false)
        #expect(compressed.compression)
    }
}
