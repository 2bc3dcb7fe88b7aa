/// Exponential backoff with full jitter: the n-th delay is uniform in [0, min(cap, base * 2^n)]
/// (the "Full Jitter" of AWS's analysis, which spreads a mass reconnect best). The session calls
/// `reset()` once a session proves itself, at its first heartbeat ACK after READY
/// (docs/PROTOCOL.md, "Close codes and reconnects").
package struct Backoff: Sendable, Equatable {
    package var baseNanoseconds: UInt64
    package var capNanoseconds: UInt64
    package private(set) var attempt = 0

    package init(baseNanoseconds: UInt64 = 1_000_000_000, capNanoseconds: UInt64 = 60_000_000_000) {
        self.baseNanoseconds = max(1, baseNanoseconds)
        self.capNanoseconds = max(self.baseNanoseconds, capNanoseconds)
    }

    /// The ceiling of the next delay, before jitter.
    package var ceiling: UInt64 {
        let shift = UInt64(min(attempt, 62))
        let (scaled, overflow) = baseNanoseconds.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? capNanoseconds : min(capNanoseconds, scaled)
    }

    package mutating func nextDelay<R: RandomNumberGenerator>(using random: inout R) -> UInt64 {
        let delay = UInt64.random(in: 0...ceiling, using: &random)
        attempt += 1
        return delay
    }

    package mutating func reset() { attempt = 0 }
}

/// A small, fast, seedable generator (SplitMix64) for jitter: tests seed it, clients seed it
/// from the system's CSPRNG. Not for secrets.
package struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
