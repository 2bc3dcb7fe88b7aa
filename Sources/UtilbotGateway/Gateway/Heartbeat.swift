/// Heartbeat bookkeeping for one connection: when the next beat is due, whether the last one was
/// answered, and the latency of answered beats.
///
/// Beats run at a fixed rate on the ideal schedule of the connection (docs/PROTOCOL.md,
/// "Heartbeats"): beat n
/// belongs to slot `hello + n × interval`, the first at once. Each beat after the first leaves
/// `lead` before its slot, so that it reaches the gateway on time even with some network delay
/// or a busy host; a beat that leaves late (a stalled host) never pushes the later ones back.
///
/// A connection is a zombie when a beat is due, the oldest unanswered beat has waited about an
/// interval, and nothing at all arrived since it was sent (any message, or any byte of one, proves
/// the server alive, not only an ACK). The first beat is due at once: the reconnect backoff's
/// jitter spreads a mass reconnect.
package struct Heartbeat: Sendable, Equatable {
    package let intervalNanoseconds: UInt64
    /// How long before its slot a beat leaves: 1/16 of the interval, at most a second.
    package let leadNanoseconds: UInt64
    /// When Hello arrived: slot n is at `anchor + n × interval`.
    private let anchor: UInt64
    /// The slot of the next beat.
    private var slot: UInt64 = 0
    package private(set) var nextBeatAt: UInt64
    /// When the oldest unanswered beat was sent (its ACK measures the latency); nil when every
    /// beat so far was answered.
    package private(set) var pendingSince: UInt64?
    /// When the last beat was sent.
    private var lastBeatAt: UInt64

    package init(intervalNanoseconds: UInt64, now: UInt64) {
        self.intervalNanoseconds = intervalNanoseconds
        self.leadNanoseconds = min(intervalNanoseconds / 16, 1_000_000_000)
        self.anchor = now
        self.nextBeatAt = now
        self.lastBeatAt = now
    }

    package func isDue(now: UInt64) -> Bool { now >= nextBeatAt }

    /// Whether the connection must be given up: checked when a beat is due. `lastReceivedAt`:
    /// when anything last arrived on this connection (the session keeps it: it is stamped on
    /// every message, and no heartbeat exists before Hello).
    package func isZombie(now: UInt64, lastReceivedAt: UInt64) -> Bool {
        guard pendingSince != nil, lastReceivedAt < lastBeatAt else { return false }
        return now >= answerDueBy
    }

    /// When the gateway must have shown life by, for the last beat. A beat that left late (a
    /// stalled host) is followed closely by the next slot's beat: the gateway gets about an
    /// interval to answer either way.
    package var answerDueBy: UInt64 { lastBeatAt + intervalNanoseconds - leadNanoseconds }

    package mutating func beatSent(now: UInt64) {
        if pendingSince == nil { pendingSince = now }
        lastBeatAt = now
        slot += 1
        // After a late beat: the first slot still ahead, not a burst of the missed ones.
        let ahead = (now + leadNanoseconds - anchor) / intervalNanoseconds + 1
        if ahead > slot { slot = ahead }
        nextBeatAt = anchor + slot * intervalNanoseconds - leadNanoseconds
    }

    /// Returns the round trip of the answered beat, or nil for an ACK nobody asked for.
    package mutating func ackReceived(now: UInt64) -> UInt64? {
        guard let sent = pendingSince else { return nil }
        pendingSince = nil
        return now > sent ? now - sent : 0
    }
}

/// Heartbeat round trips: the last one and the mean of all measured on this client.
package struct Latency: Sendable, Equatable {
    package private(set) var lastNanoseconds: UInt64?
    package private(set) var count: UInt64 = 0
    private var total: UInt64 = 0

    package init() {}

    package var averageNanoseconds: UInt64? { count == 0 ? nil : total / count }

    package mutating func record(_ nanoseconds: UInt64) {
        lastNanoseconds = nanoseconds
        count += 1
        total &+= nanoseconds
    }
}
