import Glibc
import Synchronization
import Testing
import UtilbotGateway

@Suite struct TimerCoalescingTests {
    let ms: UInt64 = 1_000_000

    @Test func shortTimersKeepTheirDeadline() {
        for delay: UInt64 in [0, 1, 5 * ms, 63 * ms] {
            #expect(EventLoop.coalesced(deadline: 1_234_567_891 + delay, delay: delay) == 1_234_567_891 + delay)
        }
    }

    @Test func longerTimersFireLateByLessThanASixtyFourthNeverEarly() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let delay = UInt64.random(in: 64 * ms...120_000 * ms, using: &random)
            let deadline = UInt64.random(in: 0...(1 << 62), using: &random)
            let fired = EventLoop.coalesced(deadline: deadline, delay: delay)
            #expect(fired >= deadline)
            #expect(fired - deadline < min(delay / 64, 8 * ms))
        }
    }

    @Test func heartbeatsDueWithinEightMillisecondsShareOneDeadline() {
        let base: UInt64 = 1_000 * 8 * ms
        let deadlines = (1...7).map { EventLoop.coalesced(deadline: base + UInt64($0) * ms, delay: 1_000 * ms) }
        #expect(Set(deadlines) == [base + 8 * ms])
    }

    @Test func deadlinesAPeerHoldsUsToFireEarlyByLessThanASixtyFourthNeverLate() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let now = UInt64.random(in: 0...(1 << 62), using: &random)
            let delay = UInt64.random(in: 1...120_000 * ms, using: &random)
            let fired = EventLoop.coalescedEarlier(deadline: now + delay, now: now)
            #expect(fired <= now + delay)
            #expect(fired > now)
            #expect(now + delay - fired < max(1, min(delay / 64, 8 * ms)))
        }
    }

    @Test func heartbeatsDueWithinEightMillisecondsShareOneEarlierDeadline() {
        let base: UInt64 = 1_000 * 8 * ms
        let deadlines = (0...7).map {
            EventLoop.coalescedEarlier(deadline: base + UInt64($0) * ms, now: base - 1_000 * ms)
        }
        #expect(Set(deadlines) == [base])
    }

    @Test func theLastNanosecondsDoNotOverflow() {
        #expect(EventLoop.coalesced(deadline: UInt64.max - 1, delay: 10_000 * ms) == UInt64.max - 1)
    }
}
