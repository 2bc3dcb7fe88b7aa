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
/// `Action`s for the driver to carry out. No I/O, no clock of its own, no threads: tests drive
/// it with a virtual clock.
///
/// Order on every connection (docs/PROTOCOL.md, "The session on one connection"): Hello, the
/// first heartbeat at once, Identify, then heartbeats on the Hello's fixed schedule. Sends before `bot_connect_success` wait in a bounded queue.
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

    /// Why we are ending the current connection, so its close is reported and handled right.
    private enum Ending: Equatable {
        case host
        case zombie
        case noHello
        case noReady
        case broken(GatewayError)
    }

    package let configuration: SessionConfiguration
    package private(set) var state: ClientState = .idle
    package private(set) var heartbeat: Heartbeat?
    package private(set) var latency = Latency()
    package private(set) var backoff: Backoff
    /// Connection attempts after the first.
    package private(set) var reconnects: UInt64 = 0
    private var random: SplitMix64
    private var queue: SendQueue
    private var connectionOpen = false
    private var helloDeadline: UInt64?
    /// Identify was sent: `bot_connect_success` must come by then.
    private var readyDeadline: UInt64?
    private var reconnectAt: UInt64?
    private var ending: Ending?
    private var lastGatewayErrorCode: Int?
    private var attempts: UInt64 = 0
    private var backoffResetPending = false
    /// The last event name seen, reused while names repeat (see `JSONScanner.scanEnvelope`).
    private var lastName: String?
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

    /// The earliest time at which `tick` has something to do.
    package var nextDeadline: UInt64? {
        // Runs after every message: no array, no allocation.
        var earliest = readsPaused ? nil : helloDeadline
        if !readsPaused, let at = readyDeadline, earliest.map({ at < $0 }) ?? true { earliest = at }
        if !readsPaused, let at = reconnectAt, earliest.map({ at < $0 }) ?? true { earliest = at }
        if connectionOpen && state != .closing, let at = heartbeat?.nextBeatAt, earliest.map({ at < $0 }) ?? true {
            earliest = at
        }
        return earliest
    }

    /// `nextDeadline` for a driver that keeps the machine in a class property: a mutating call
    /// reads it in place, where the getter would first copy the whole machine (once per message).
    package mutating func deadlineInPlace() -> UInt64? { nextDeadline }

    package var queuedSendCount: Int { queue.count }
    package var queuedSendBytes: Int { queue.byteCount }

    /// Back-pressure from the host: reads pause while its events wait, and resume once it caught
    /// up. The deadlines that need reading (Hello, `bot_connect_success`) are put off by the time
    /// the pause lasted.
    package mutating func setReadsPaused(_ paused: Bool, now: UInt64) {
        if paused {
            if readsPausedSince == nil { readsPausedSince = now }
            return
        }
        guard let since = readsPausedSince else { return }
        readsPausedSince = nil
        let paused = now > since ? now - since : 0
        helloDeadline = helloDeadline.map { $0 + paused }
        readyDeadline = readyDeadline.map { $0 + paused }
    }

    /// A deadline `timeout` from now for something the gateway must send. Set while reads are
    /// paused, it counts from the pause, which resuming adds back: the whole timeout then runs
    /// from the resume.
    private func deadline(after timeout: UInt64, now: UInt64) -> UInt64 {
        (readsPausedSince ?? now) + timeout
    }

    /// Bytes of a message still arriving: a sign of life, like a whole message.
    package mutating func bytesReceived(now: UInt64) {
        heartbeat?.received(now: now)
    }

    // MARK: Host input

    package mutating func start(now: UInt64) -> [Action] {
        guard state == .idle else { return [] }
        return beginAttempt()
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
    package mutating func send(payload: [UInt8]) throws(GatewayError) -> [Action] {
        if let refusal = Self.sendRefusal(in: state) { throw refusal }
        if state == .ready { return [.sendEvent(payload)] }
        try queue.push(payload)
        return []
    }

    /// Closes for good with `code` (the host's choice: 1000 by default).
    package mutating func stop(code: UInt16, reason: String = "") -> [Action] {
        switch state {
        case .idle:
            return transition(to: .closed) + failQueued("the client was closed")
        case .closed, .failed, .closing:
            return []
        case .reconnecting:
            reconnectAt = nil
            return transition(to: .closed) + failQueued("the client was closed")
        case .connecting, .identifying, .ready:
            ending = .host
            helloDeadline = nil
            readyDeadline = nil
            var actions = transition(to: .closing)
            actions.append(connectionOpen ? .close(code: code, reason: reason) : .drop(code: code, reason: reason))
            return actions
        }
    }

    // MARK: Connection input

    package mutating func connectionOpened(now: UInt64) -> [Action] {
        connectionOpen = true
        guard state != .closing else { return [] }
        helloDeadline = deadline(after: configuration.helloTimeoutNanoseconds, now: now)
        return [.emit(.log(.debug, "WebSocket open; waiting for Hello"))]
    }

    /// One complete message (decompressed), as it arrived.
    package mutating func received(_ message: [UInt8], now: UInt64) -> [Action] {
        var actions: [Action] = []
        if let dispatch = received(message[...], now: now, into: &actions) {
            actions.append(.emit(.dispatch(name: dispatch.name, data: dispatch.data)))
        }
        return actions
    }

    /// An event to hand to the host, and nothing else to do.
    package struct Dispatch {
        package var name: String
        package var data: ArraySlice<UInt8>?
    }

    /// `received(_:now:)` for a driver, once per message: actions are appended to the caller's
    /// array (reused), and a plain event, the usual message, comes back as a `Dispatch` with no
    /// action at all, for the driver to deliver directly. `message` may be a slice of a receive
    /// buffer: `d` is handed on as a slice of it.
    package mutating func received(_ message: ArraySlice<UInt8>, now: UInt64, into actions: inout [Action])
        -> Dispatch?
    {
        heartbeat?.received(now: now)
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
            if state == .identifying {
                readyDeadline = nil
                // The backoff starts over only once this session has proved itself (its first
                // heartbeat ACK while ready), so a gateway that accepts and then at once closes
                // cannot drive a tight reconnect loop.
                backoffResetPending = true
                actions += transition(to: .ready)
                actions.append(.emit(.log(.info, "identified")))
                actions.append(.emit(.ready))
            }
            actions.append(.emit(.dispatch(name: name, data: data)))
            if state == .ready {
                actions += queue.popAll().map { .sendEvent($0) }
            }
        case .hello:
            actions += hello(d, now: now)
        case .heartbeatAck:
            guard let rtt = heartbeat?.ackReceived(now: now) else {
                actions.append(.emit(.log(.debug, "heartbeat ACK without a pending heartbeat; ignored")))
                return nil
            }
            latency.record(rtt)
            if backoffResetPending && state == .ready {
                backoffResetPending = false
                backoff.reset()
            }
            actions.append(.emit(.heartbeatAck(nanoseconds: rtt)))
        case .error:
            lastGatewayErrorCode = envelope.e
            actions.append(.emit(.gatewayError(code: envelope.e, message: envelope.m, data: d)))
        case .event, .heartbeat, nil:
            actions.append(
                .emit(.log(.debug, "ignored a message with the op \(envelope.op), not one the gateway sends")))
        }
        return nil
    }

    /// The current connection (or attempt) ended: reconnect, or stop for good.
    package mutating func connectionClosed(_ info: WebSocketCloseInfo, now: UInt64) -> [Action] {
        let ending = self.ending
        self.ending = nil
        connectionOpen = false
        heartbeat = nil
        helloDeadline = nil
        readyDeadline = nil
        let gatewayCode = lastGatewayErrorCode
        lastGatewayErrorCode = nil
        backoffResetPending = false

        var error = info.error
        var code = info.code
        switch ending {
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
        case .host:
            var actions = transition(to: .closed)
            actions.insert(
                .emit(
                    .closed(
                        code: code, reason: info.reason, reconnect: false, error: info.error,
                        httpStatus: info.httpStatus)),
                at: 0)
            return actions + failQueued("the client was closed")
        case nil:
            break
        }
        if state == .closed || state == .failed { return [] }

        // The gateway's own code decides; an op -1 error's code stands in when the close
        // carried none of the gateway's codes.
        if !(4000...4999).contains(code), let gatewayCode, (4000...4007).contains(gatewayCode), ending == nil {
            code = UInt16(gatewayCode)
        }
        let policy = info.closedByServer || gatewayCode != nil ? ClosePolicy(closeCode: code) : .reconnect
        if policy == .fatal {
            let name = ClosePolicy.name(of: Int(code)).map { " \($0)" } ?? ""
            let message = "the gateway refused the client with \(code)\(name); not reconnecting"
            // The CLOSED carries the code that decided (an op -1 error's 4001 when the TCP
            // connection then broke without a close frame); after FATAL only the final state.
            var actions: [Action] = [
                .emit(
                    .closed(
                        code: code, reason: info.reason, reconnect: false, error: error, httpStatus: info.httpStatus)),
                .emit(.log(.error, message)),
            ]
            actions += failQueued("the gateway refused the client (\(code))")
            actions.append(.emit(.fatal(code: code, message: message)))
            return actions + transition(to: .failed)
        }
        let delay = backoff.nextDelay(using: &random)
        reconnectAt = now + delay
        var actions: [Action] = [
            .emit(
                .closed(
                    code: info.code, reason: info.reason, reconnect: true, error: error, httpStatus: info.httpStatus))
        ]
        if policy == .clientBug {
            actions.append(
                .emit(
                    .log(
                        .error,
                        "the gateway closed with \(code) (\(ClosePolicy.name(of: Int(code)) ?? "")): a client bug; reconnecting"
                    )))
        }
        actions.append(.emit(.log(.info, "reconnecting in \(delay / 1_000_000) ms (attempt \(backoff.attempt))")))
        actions += transition(to: .reconnecting)
        return actions
    }

    /// A local problem that makes the current connection useless (corrupt zlib stream).
    package mutating func connectionBroken(_ error: GatewayError, closeCode: UInt16) -> [Action] {
        guard connectionOpen, ending == nil, state != .closing else { return [.emit(.localError(error))] }
        ending = .broken(error)
        return [.emit(.localError(error)), .drop(code: closeCode, reason: "")]
    }

    // MARK: Time

    /// Time passed. `dueBy` is the deadline the driver's timer was set for: a timer may fire a
    /// little early (coalescing moves timers earlier, never later), and what was due by then is
    /// done now. Sends are stamped with the real `now`.
    package mutating func tick(now: UInt64, dueBy: UInt64? = nil) -> [Action] {
        let due = max(now, dueBy ?? now)
        var actions: [Action] = []
        if !readsPaused, let at = reconnectAt, due >= at {
            reconnectAt = nil
            actions += beginAttempt()
        }
        if !readsPaused, let at = helloDeadline, due >= at, ending == nil {
            helloDeadline = nil
            ending = .noHello
            actions.append(.emit(.log(.warning, "no Hello from the gateway; dropping the connection")))
            actions.append(.drop(code: CloseCode.policyViolation, reason: "no hello"))
        }
        if !readsPaused, let at = readyDeadline, due >= at, ending == nil {
            readyDeadline = nil
            ending = .noReady
            actions.append(.emit(.log(.warning, "no bot_connect_success after identify; dropping the connection")))
            actions.append(.drop(code: CloseCode.policyViolation, reason: "no bot_connect_success"))
        }
        if connectionOpen, ending == nil, state != .closing, var beat = heartbeat, beat.isDue(now: due) {
            if beat.isZombie(now: due) && !readsPaused {
                ending = .zombie
                actions.append(.emit(.log(.warning, "zombie connection: the last heartbeat was never answered")))
                actions.append(.drop(code: CloseCode.goingAway, reason: "zombie"))
            } else {
                beat.beatSent(now: now)
                heartbeat = beat
                actions.append(.send(Self.heartbeatPayload))
            }
        }
        return actions
    }

    // MARK: Internals

    package static let heartbeatPayload = JSONWriter.payload(op: GatewayOpcode.heartbeat.rawValue, t: nil, d: nil)
    /// Longer intervals in a Hello are taken as this one (an hour).
    package static let maxHeartbeatIntervalMilliseconds: UInt64 = 3_600_000

    private mutating func beginAttempt() -> [Action] {
        if attempts > 0 { reconnects += 1 }
        attempts += 1
        ending = nil
        return transition(to: .connecting) + [.connect]
    }

    private mutating func hello(_ d: ArraySlice<UInt8>?, now: UInt64) -> [Action] {
        guard heartbeat == nil, state == .connecting else {
            return [.emit(.log(.debug, "a second Hello on one connection; ignored"))]
        }
        helloDeadline = nil
        let fields = d ?? []
        // The published example spells the field "hearbeat"; accept both.
        guard
            let milliseconds = JSONObjectReader.integer("heartbeat", in: fields)
                ?? JSONObjectReader.integer("hearbeat", in: fields), milliseconds > 0
        else {
            return connectionBroken(
                GatewayError(.invalidJSON, "Hello without a positive heartbeat interval"),
                closeCode: CloseCode.protocolError)
        }
        // Clamped both ways: a hostile Hello must neither flood the gateway with beats nor overflow
        // the clock arithmetic; beating more often than asked is always safe.
        let clamped = min(UInt64(milliseconds), Self.maxHeartbeatIntervalMilliseconds)
        let interval = max(clamped * 1_000_000, configuration.minHeartbeatIntervalNanoseconds)
        var beat = Heartbeat(intervalNanoseconds: interval, now: now)
        beat.beatSent(now: now)
        heartbeat = beat
        var actions: [Action] = [
            .emit(.log(.info, "Hello: heartbeat every \(interval / 1_000_000) ms")),
            .send(Self.heartbeatPayload),
        ]
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
        readyDeadline = deadline(after: configuration.readyTimeoutNanoseconds, now: now)
        actions += transition(to: .identifying)
        return actions
    }

    private mutating func transition(to next: ClientState) -> [Action] {
        guard next != state else { return [] }
        state = next
        return [.emit(.state(next))]
    }

    private mutating func failQueued(_ why: String) -> [Action] {
        let dropped = queue.popAll().count
        guard dropped > 0 else { return [] }
        return [.emit(.sendsDropped(count: dropped, reason: why))]
    }
}
