/// Heartbeat bookkeeping for one connection: when the next beat is due, whether the last one was
/// answered, and the latency of answered beats.
///
/// A connection is a zombie when a beat is due while the previous one is still unanswered and
/// nothing at all arrived since it was sent (any message proves the server alive, not only an
/// ACK). The first beat is due at once: DESIGN.md leaves the jitter of a mass reconnect to the
/// reconnect backoff.
package struct Heartbeat: Sendable, Equatable {
    package let intervalNanoseconds: UInt64
    package private(set) var nextBeatAt: UInt64
    /// When the unanswered beat was sent; nil when every beat so far was answered.
    package private(set) var pendingSince: UInt64?
    package private(set) var lastReceivedAt: UInt64

    package init(intervalNanoseconds: UInt64, now: UInt64) {
        self.intervalNanoseconds = intervalNanoseconds
        self.nextBeatAt = now
        self.lastReceivedAt = now
    }

    package func isDue(now: UInt64) -> Bool { now >= nextBeatAt }

    /// Whether the connection must be given up: checked when a beat is due.
    package func isZombie() -> Bool {
        guard let pendingSince else { return false }
        return lastReceivedAt < pendingSince
    }

    package mutating func beatSent(now: UInt64) {
        pendingSince = now
        nextBeatAt = now + intervalNanoseconds
    }

    package mutating func received(now: UInt64) { lastReceivedAt = now }

    /// Returns the round trip of the answered beat, or nil for an ACK nobody asked for.
    package mutating func ackReceived(now: UInt64) -> UInt64? {
        received(now: now)
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
