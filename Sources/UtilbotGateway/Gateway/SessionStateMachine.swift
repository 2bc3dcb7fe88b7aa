/// Settings of a gateway session.
package struct SessionConfiguration: Sendable, Equatable {
    package var identifyType = "bot"
    package var key: String
    /// How long to wait for Hello once the WebSocket is open.
    package var helloTimeoutNanoseconds: UInt64 = 20_000_000_000
    /// How long to wait for `bot_connect_success` once Identify is sent.
    package var readyTimeoutNanoseconds: UInt64 = 30_000_000_000
    package var backoffBaseNanoseconds: UInt64 = 1_000_000_000
    package var backoffCapNanoseconds: UInt64 = 60_000_000_000
    /// Sends accepted before the session is ready, at most.
    package var maxQueuedMessages = 1000
    package var maxQueuedBytes = 1 << 20
    /// A Hello asking for beats more often than this is answered at this pace.
    package var minHeartbeatIntervalNanoseconds: UInt64 = 50_000_000

    package init(key: String) { self.key = key }
}

/// The gateway session as a plain value: inputs are what happened (a connection opened, a
/// message arrived, a connection closed, time passed, the host sent or closed), outputs are
/// `Action`s appended to the array the driver passes in. No I/O, no clock of its own, no
/// threads: tests drive it with a virtual clock.
///
/// Order on every connection (docs/PROTOCOL.md, "The session on one connection"): Hello, the
/// first heartbeat at once, Identify, then heartbeats on the Hello's fixed schedule. Sends
/// before `bot_connect_success` wait in a bounded queue.
///
/// The state is one `Phase`; what belongs to one connection lives in the `Link` its phases
/// carry, and is gone with the connection. An input the driver can never give in a phase (a
/// message with no connection, a second start) stops debug builds.
package struct SessionStateMachine {
    package enum Action: Equatable, Sendable {
        /// Open a new WebSocket connection.
        case connect
        /// Send this protocol message (heartbeat, identify) on the current connection.
        case send([UInt8])
        /// Send this event of the host's on the current connection; if it cannot be written, the
        /// host hears about it.
        case sendEvent([UInt8])
        /// Start the closing handshake of the current connection.
        case close(code: UInt16, reason: String)
        /// Send a close frame if possible and drop the connection at once (zombie, no Hello).
        case drop(code: UInt16, reason: String)
        case emit(SessionEvent)
    }

    /// Why the session gave up the current connection, so its close is reported and handled right.
    private enum Ending: Equatable {
        case zombie
        case noHello
        case noReady
        case broken(GatewayError)
    }

    /// One connection, or the attempt at one: from the `.connect` action until its close is
    /// reported.
    private struct Link {
        /// The WebSocket is open (DNS, TCP, TLS and the upgrade went through).
        var open = false
        /// What the gateway must send next comes by then: Hello while connecting,
        /// `bot_connect_success` while identifying.
        var answerBy: UInt64?
        /// From Hello on.
        var heartbeat: Heartbeat?
        /// Set once the session gave this connection up; its close is on the way.
        var ending: Ending?
        /// `e` of the last op -1 error on this connection.
        var gatewayErrorCode: Int?
        /// Ready, and the backoff starts over at the first heartbeat ACK: only a session that
        /// proved itself resets it, so a gateway that accepts and at once closes cannot drive a
        /// tight reconnect loop.
        var proving = false
    }

    /// Indirect: the connection's `Link` lives in a box, so the phase itself is one word, written
    /// whole at every change. Inline, the cases without a payload were told apart by bytes of the
    /// payload area that are only partly written, and valgrind reported each read of the phase
    /// as a use of uninitialised memory. A box per change of phase or heartbeat costs nothing
    /// that matters; a plain event does not touch the phase.
    private indirect enum Phase {
        case idle
        case connecting(Link)
        case identifying(Link)
        case ready(Link)
        /// The host asked to close; the connection's close is on the way.
        case closing(Link)
        case reconnecting(at: UInt64)
        case closed
        case failed
    }

    package let configuration: SessionConfiguration
    private var phase: Phase = .idle
    package private(set) var latency = Latency()
    package private(set) var backoff: Backoff
    /// Connection attempts after the first.
    package private(set) var reconnects: UInt64 = 0
    private var attempts: UInt64 = 0
    private var random: SplitMix64
    private var queue: SendQueue
    /// The last event name seen, reused while names repeat (see `JSONScanner.scanEnvelope`).
    private var lastName: String?
    /// When anything (a message, or bytes of one) last arrived: a sign of life for the zombie
    /// check. Kept here rather than in the `Link` so that the hot path, a plain event, touches
    /// no per-connection state.
    private var lastReceivedAt: UInt64 = 0
    /// Since when the host has not kept up and reads are paused: unread ACKs do not make a
    /// zombie, the Hello and ready deadlines wait (what is not read cannot be late), and no new
    /// attempt starts (each would add events the host has no room for).
    package private(set) var readsPausedSince: UInt64?
    package var readsPaused: Bool { readsPausedSince != nil }

    package init(configuration: SessionConfiguration, seed: UInt64) {
        self.configuration = configuration
        self.backoff = Backoff(
            baseNanoseconds: configuration.backoffBaseNanoseconds, capNanoseconds: configuration.backoffCapNanoseconds)
        self.random = SplitMix64(seed: seed)
        self.queue = SendQueue(maxMessages: configuration.maxQueuedMessages, maxBytes: configuration.maxQueuedBytes)
    }

    package var state: ClientState {
        switch phase {
        case .idle: .idle
        case .connecting: .connecting
        case .identifying: .identifying
        case .ready: .ready
        case .closing: .closing
        case .reconnecting: .reconnecting
        case .closed: .closed
        case .failed: .failed
        }
    }

    package var heartbeat: Heartbeat? { link?.heartbeat }

    /// The earliest time at which `tick` has something to do.
    package var nextDeadline: UInt64? {
        switch phase {
        case .reconnecting(let at):
            return readsPaused ? nil : at
        case .connecting(let link), .identifying(let link), .ready(let link):
            guard link.ending == nil else { return nil }
            var earliest = readsPaused ? nil : link.answerBy
            if link.open, let at = link.heartbeat?.nextBeatAt, earliest.map({ at < $0 }) ?? true { earliest = at }
            return earliest
        case .idle, .closing, .closed, .failed:
            return nil
        }
    }

    /// `nextDeadline` for a driver that keeps the machine in a class property: a mutating call
    /// reads it in place, where the getter would first copy the whole machine (once per message).
    package mutating func deadlineInPlace() -> UInt64? { nextDeadline }

    package var queuedSendCount: Int { queue.count }
    package var queuedSendBytes: Int { queue.byteCount }

    /// Back-pressure from the host: reads pause while its events wait, and resume once it caught
    /// up. The deadline that needs reading (Hello, `bot_connect_success`) is put off by the time
    /// the pause lasted.
    package mutating func setReadsPaused(_ paused: Bool, now: UInt64) {
        if paused {
            if readsPausedSince == nil { readsPausedSince = now }
            return
        }
        guard let since = readsPausedSince else { return }
        readsPausedSince = nil
        if var link, let answerBy = link.answerBy {
            link.answerBy = answerBy + (now > since ? now - since : 0)
            update(link)
        }
    }

    /// Bytes of a message still arriving: a sign of life, like a whole message.
    package mutating func bytesReceived(now: UInt64) {
        lastReceivedAt = now
    }

    // MARK: Host input

    package mutating func start(now: UInt64, into actions: inout [Action]) {
        guard case .idle = phase else {
            assertionFailure("start() in \(state): a session starts once")
            return
        }
        beginAttempt(into: &actions)
    }

    /// The op 1 payload for an event from the host, validated: a name that is not empty and not
    /// `identify` (the library sends that), and `data` that is a JSON object. Pure: any thread
    /// may call it.
    package static func payload(name: String, data: [UInt8]?) throws(GatewayError) -> [UInt8] {
        guard !name.isEmpty else { throw GatewayError(.invalidArgument, "the event name is empty") }
        guard name != "identify" else {
            throw GatewayError(.invalidArgument, "identify is sent by the library; set the key instead")
        }
        guard let data else { return JSONWriter.payload(op: GatewayOpcode.event.rawValue, t: name, d: nil) }
        try JSONScanner.validate(data)
        // d is an object; the gateway closes with 4005 on anything else (docs/PROTOCOL.md, "Messages").
        guard data.first(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) == UInt8(ascii: "{") else {
            throw GatewayError(
                .invalidArgument, "the event data must be a JSON object (the gateway answers 4005 otherwise)")
        }
        return data.withUnsafeBytes { JSONWriter.payload(op: GatewayOpcode.event.rawValue, t: name, d: $0) }
    }

    /// Why a send cannot be accepted in `state`, if it cannot: the one rule, for the machine and
    /// for the driver's check in the caller's thread.
    package static func sendRefusal(in state: ClientState) -> GatewayError? {
        switch state {
        case .closing, .closed: GatewayError(.closed, "the client is closed")
        case .failed: GatewayError(.gatewayRefused, "the gateway refused this client for good")
        case .idle, .connecting, .identifying, .ready, .reconnecting: nil
        }
    }

    /// Sends (ready) or queues (not yet ready) a payload made by `payload(name:data:)`.
    package mutating func send(payload: [UInt8], into actions: inout [Action]) throws(GatewayError) {
        if let refusal = Self.sendRefusal(in: state) { throw refusal }
        if case .ready = phase {
            actions.append(.sendEvent(payload))
        } else {
            try queue.push(payload)
        }
    }

    /// Closes for good with `code` (the host's choice: 1000 by default). Closing twice is fine.
    package mutating func close(code: UInt16, reason: String = "", into actions: inout [Action]) {
        switch phase {
        case .idle, .reconnecting:
            enter(.closed, into: &actions)
            rejectQueued("the client was closed", into: &actions)
        case .closed, .failed, .closing:
            return
        case .connecting(var link), .identifying(var link), .ready(var link):
            link.ending = nil
            link.answerBy = nil
            enter(.closing(link), into: &actions)
            actions.append(link.open ? .close(code: code, reason: reason) : .drop(code: code, reason: reason))
        }
    }

    // MARK: Connection input

    package mutating func connectionOpened(now: UInt64, into actions: inout [Action]) {
        guard var link, !link.open else {
            assertionFailure("connectionOpened in \(state) without a connection being opened")
            return
        }
        link.open = true
        if case .closing = phase {
            update(link)
            return
        }
        link.answerBy = (readsPausedSince ?? now) + configuration.helloTimeoutNanoseconds
        update(link)
        actions.append(.emit(.log(.debug, "WebSocket open; waiting for Hello")))
    }

    /// An op 0 event to hand to the host: its name and the raw JSON of `d` (nil when absent or
    /// null), a slice of the message as it arrived.
    package struct Dispatch {
        package var name: String
        package var data: ArraySlice<UInt8>?
    }

    /// One complete message (decompressed), as it arrived. An op 0 event comes back as a
    /// `Dispatch`, for the driver to deliver once it has carried out the actions (there are some
    /// only for `bot_connect_success`: the state, READY, the queued sends); everything else
    /// becomes actions. `message` may be a slice of a receive buffer: `d` is handed on as a
    /// slice of it.
    package mutating func received(_ message: ArraySlice<UInt8>, now: UInt64, into actions: inout [Action])
        -> Dispatch?
    {
        assert(link?.open == true, "a message in \(state) without an open connection")
        lastReceivedAt = now
        let envelope: Envelope
        do {
            envelope = try JSONScanner.scanEnvelope(message, knownName: lastName)
        } catch {
            actions.append(
                .emit(.localError(GatewayError(.invalidJSON, "malformed message from the gateway: \(error.message)"))))
            return nil
        }
        // A slice shares the message's storage: `d` is handed on without a copy. The envelope's
        // offsets count from the message's first byte.
        let base = message.startIndex
        let d = envelope.d.map { message[(base + $0.lowerBound)..<(base + $0.upperBound)] }
        switch GatewayOpcode(rawValue: envelope.op) {
        case .dispatch:
            guard let name = envelope.t else {
                actions.append(.emit(.localError(GatewayError(.invalidJSON, "op 0 event without a name (t)"))))
                return nil
            }
            lastName = name
            // d is valid JSON here: four bytes starting with "n" can only be null.
            let data = d.flatMap { $0.count == 4 && $0.first == UInt8(ascii: "n") ? nil : $0 }
            let connectSuccess = name.utf8.count == 19 && name == "bot_connect_success"
            guard connectSuccess else { return Dispatch(name: name, data: data) }
            if case .identifying(var link) = phase {
                link.answerBy = nil
                link.proving = true
                enter(.ready(link), into: &actions)
                actions.append(.emit(.log(.info, "identified")))
                actions.append(.emit(.ready))
            }
            if case .ready = phase {
                for payload in queue.popAll() { actions.append(.sendEvent(payload)) }
            }
            return Dispatch(name: name, data: data)
        case .hello:
            hello(d, now: now, into: &actions)
        case .heartbeatAck:
            guard var link, let rtt = link.heartbeat?.ackReceived(now: now) else {
                actions.append(.emit(.log(.debug, "heartbeat ACK without a pending heartbeat; ignored")))
                return nil
            }
            latency.record(rtt)
            if case .ready = phase, link.proving {
                link.proving = false
                backoff.reset()
            }
            update(link)
            actions.append(.emit(.heartbeatAck(nanoseconds: rtt)))
        case .error:
            if var link {
                link.gatewayErrorCode = envelope.e
                update(link)
            }
            actions.append(.emit(.gatewayError(code: envelope.e, message: envelope.m, data: d)))
        case .event, .heartbeat, nil:
            actions.append(
                .emit(.log(.debug, "ignored a message with the op \(envelope.op), not one the gateway sends")))
        }
        return nil
    }

    /// The current connection (or attempt) ended: reconnect, or stop for good.
    package mutating func connectionClosed(_ info: WebSocketCloseInfo, now: UInt64, into actions: inout [Action]) {
        guard let link else {
            assertionFailure("a connection closed in \(state), where the session has none")
            return
        }
        if case .closing = phase {
            actions.append(
                .emit(
                    .closed(
                        code: info.code, reason: info.reason, reconnect: false, error: info.error,
                        httpStatus: info.httpStatus)))
            enter(.closed, into: &actions)
            rejectQueued("the client was closed", into: &actions)
            return
        }

        var error = info.error
        var code = info.code
        switch link.ending {
        case .zombie:
            error = GatewayError(.timeout, "no heartbeat ACK and nothing else received for a whole interval (zombie)")
        case .noHello:
            error = GatewayError(.timeout, "no Hello within \(configuration.helloTimeoutNanoseconds / 1_000_000) ms")
        case .noReady:
            error = GatewayError(
                .timeout,
                "no bot_connect_success within \(configuration.readyTimeoutNanoseconds / 1_000_000) ms after identify")
        case .broken(let why):
            error = why
        case nil:
            break
        }
        // The gateway's own code decides; an op -1 error's code stands in when the close
        // carried none of the gateway's codes.
        let gatewayCode = link.gatewayErrorCode
        if !(4000...4999).contains(code), let gatewayCode, (4000...4007).contains(gatewayCode), link.ending == nil {
            code = UInt16(gatewayCode)
        }
        let policy = info.closedByServer || gatewayCode != nil ? ClosePolicy(closeCode: code) : .reconnect
        if policy == .fatal {
            let name = ClosePolicy.name(of: Int(code)).map { " \($0)" } ?? ""
            let message = "the gateway refused the client with \(code)\(name); not reconnecting"
            // The CLOSED carries the code that decided (an op -1 error's 4001 when the TCP
            // connection then broke without a close frame); after FATAL only the final state.
            actions.append(
                .emit(
                    .closed(
                        code: code, reason: info.reason, reconnect: false, error: error, httpStatus: info.httpStatus)))
            actions.append(.emit(.log(.error, message)))
            rejectQueued("the gateway refused the client (\(code))", into: &actions)
            actions.append(.emit(.fatal(code: code, message: message)))
            enter(.failed, into: &actions)
            return
        }
        let delay = backoff.nextDelay(using: &random)
        actions.append(
            .emit(
                .closed(
                    code: info.code, reason: info.reason, reconnect: true, error: error, httpStatus: info.httpStatus)))
        if policy == .clientBug {
            actions.append(
                .emit(
                    .log(
                        .error,
                        "the gateway closed with \(code) (\(ClosePolicy.name(of: Int(code)) ?? "")): a client bug; reconnecting"
                    )))
        }
        actions.append(.emit(.log(.info, "reconnecting in \(delay / 1_000_000) ms (attempt \(backoff.attempt))")))
        enter(.reconnecting(at: now + delay), into: &actions)
    }

    /// A local problem that makes the current connection useless (corrupt zlib stream).
    package mutating func connectionBroken(_ error: GatewayError, closeCode: UInt16, into actions: inout [Action]) {
        actions.append(.emit(.localError(error)))
        guard var link, link.open, link.ending == nil else { return }
        if case .closing = phase { return }
        link.ending = .broken(error)
        link.answerBy = nil
        update(link)
        actions.append(.drop(code: closeCode, reason: ""))
    }

    // MARK: Time

    /// Time passed. `dueBy` is the deadline the driver's timer was set for: a timer may fire a
    /// little early (coalescing moves timers earlier, never later), and what was due by then is
    /// done now. Sends are stamped with the real `now`.
    package mutating func tick(now: UInt64, dueBy: UInt64? = nil, into actions: inout [Action]) {
        let due = max(now, dueBy ?? now)
        if !readsPaused, case .reconnecting(let at) = phase, due >= at {
            beginAttempt(into: &actions)
        }
        if !readsPaused, var link, link.ending == nil, let answerBy = link.answerBy, due >= answerBy {
            link.answerBy = nil
            if case .connecting = phase {
                link.ending = .noHello
                actions.append(.emit(.log(.warning, "no Hello from the gateway; dropping the connection")))
                actions.append(.drop(code: CloseCode.policyViolation, reason: "no hello"))
            } else {
                link.ending = .noReady
                actions.append(.emit(.log(.warning, "no bot_connect_success after identify; dropping the connection")))
                actions.append(.drop(code: CloseCode.policyViolation, reason: "no bot_connect_success"))
            }
            update(link)
        }
        guard var link, link.open, link.ending == nil, var beat = link.heartbeat, beat.isDue(now: due) else { return }
        if case .closing = phase { return }
        if beat.isZombie(now: due, lastReceivedAt: lastReceivedAt) && !readsPaused {
            link.ending = .zombie
            actions.append(.emit(.log(.warning, "zombie connection: the last heartbeat was never answered")))
            actions.append(.drop(code: CloseCode.goingAway, reason: "zombie"))
        } else {
            beat.beatSent(now: now)
            link.heartbeat = beat
            actions.append(.send(Self.heartbeatPayload))
        }
        update(link)
    }

    // MARK: Internals

    package static let heartbeatPayload = JSONWriter.payload(op: GatewayOpcode.heartbeat.rawValue, t: nil, d: nil)
    /// Longer intervals in a Hello are taken as this one (an hour).
    package static let maxHeartbeatIntervalNanoseconds: UInt64 = 3_600_000_000_000

    /// The current connection, in the phases that have one.
    private var link: Link? {
        switch phase {
        case .connecting(let link), .identifying(let link), .ready(let link), .closing(let link): link
        case .idle, .reconnecting, .closed, .failed: nil
        }
    }

    /// Stores `link` back into the current phase, which must have one.
    private mutating func update(_ link: Link) {
        switch phase {
        case .connecting: phase = .connecting(link)
        case .identifying: phase = .identifying(link)
        case .ready: phase = .ready(link)
        case .closing: phase = .closing(link)
        case .idle, .reconnecting, .closed, .failed: assertionFailure("no connection in \(state) to update")
        }
    }

    private mutating func beginAttempt(into actions: inout [Action]) {
        if attempts > 0 { reconnects += 1 }
        attempts += 1
        enter(.connecting(Link()), into: &actions)
        actions.append(.connect)
    }

    private mutating func hello(_ d: ArraySlice<UInt8>?, now: UInt64, into actions: inout [Action]) {
        guard case .connecting(var link) = phase else {
            actions.append(.emit(.log(.debug, "a second Hello on one connection; ignored")))
            return
        }
        link.answerBy = nil
        update(link)
        let fields = d ?? []
        // The published example spells the field "hearbeat"; accept both.
        guard
            let milliseconds = JSONObjectReader.integer("heartbeat", in: fields)
                ?? JSONObjectReader.integer("hearbeat", in: fields), milliseconds > 0
        else {
            connectionBroken(
                GatewayError(.invalidJSON, "Hello without a positive heartbeat interval"),
                closeCode: CloseCode.protocolError, into: &actions)
            return
        }
        // Clamped both ways: a hostile Hello must neither flood the gateway with beats nor overflow
        // the clock arithmetic; beating more often than asked is always safe.
        let asked = min(UInt64(milliseconds), Self.maxHeartbeatIntervalNanoseconds / 1_000_000) * 1_000_000
        let interval = max(asked, configuration.minHeartbeatIntervalNanoseconds)
        var beat = Heartbeat(intervalNanoseconds: interval, now: now)
        beat.beatSent(now: now)
        link.heartbeat = beat
        actions.append(.emit(.log(.info, "Hello: heartbeat every \(interval / 1_000_000) ms")))
        actions.append(.send(Self.heartbeatPayload))
        var who = JSONWriter()
        who.beginObject()
        who.key("type")
        who.string(configuration.identifyType)
        who.key("key")
        who.string(configuration.key)
        who.endObject()
        let identify = who.bytes.withUnsafeBytes {
            JSONWriter.payload(op: GatewayOpcode.event.rawValue, t: "identify", d: $0)
        }
        actions.append(.send(identify))
        actions.append(.emit(.log(.info, "identifying as \(configuration.identifyType)")))
        // Set while reads are paused, the deadline counts from the pause, which resuming adds
        // back: the whole timeout then runs from the resume.
        link.answerBy = (readsPausedSince ?? now) + configuration.readyTimeoutNanoseconds
        enter(.identifying(link), into: &actions)
    }

    /// Moves to `next`, reporting the state if it changed.
    private mutating func enter(_ next: Phase, into actions: inout [Action]) {
        let before = state
        phase = next
        if state != before { actions.append(.emit(.state(state))) }
    }

    private mutating func rejectQueued(_ why: String, into actions: inout [Action]) {
        let dropped = queue.popAll().count
        guard dropped > 0 else { return }
        actions.append(.emit(.sendsDropped(count: dropped, reason: why)))
    }
}
