import Glibc
import Synchronization
import Testing
import UtilbotGateway

/// Waits for a value posted from another thread, with a deadline instead of a sleep.
final class Latch<T: Sendable>: @unchecked Sendable {
    private let value = Mutex<T?>(nil)
    func set(_ v: T) { value.withLock { $0 = v } }
    func wait(seconds: Double = 5) -> T? {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while monotonicNanoseconds() < deadline {
            if let v = value.withLock({ $0 }) { return v }
            usleep(1000)
        }
        return nil
    }
}

final class Recorder: @unchecked Sendable {
    private let items = Mutex<[Int]>([])
    func append(_ i: Int) { items.withLock { $0.append(i) } }
    var values: [Int] { items.withLock { $0 } }
}

@Suite(.timeLimit(.minutes(1)))
struct EventLoopTests {
    @Test func tasksRunOnTheLoopThreadInOrder() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let recorder = Recorder()
        let done = Latch<Bool>()
        #expect(!loop.isCurrent)
        for i in 0..<1000 {
            loop.execute {
                precondition(loop.isCurrent)
                recorder.append(i)
            }
        }
        loop.execute { done.set(true) }
        #expect(done.wait() == true)
        #expect(recorder.values == Array(0..<1000))
    }

    @Test func tasksPostedFromManyThreadsAllRun() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let recorder = Recorder()
        let threads = 8
        let perThread = 2000
        var tids: [pthread_t] = []
        final class Args: @unchecked Sendable {
            let loop: EventLoop
            let recorder: Recorder
            let base: Int
            let count: Int
            init(_ loop: EventLoop, _ recorder: Recorder, _ base: Int, _ count: Int) {
                self.loop = loop
                self.recorder = recorder
                self.base = base
                self.count = count
            }
        }
        for t in 0..<threads {
            var tid = pthread_t()
            let args = Unmanaged.passRetained(Args(loop, recorder, t * perThread, perThread)).toOpaque()
            pthread_create(
                &tid, nil,
                { raw in
                    let a = Unmanaged<Args>.fromOpaque(raw!).takeRetainedValue()
                    for i in 0..<a.count {
                        let value = a.base + i
                        let recorder = a.recorder
                        a.loop.execute { recorder.append(value) }
                    }
                    return nil
                }, args)
            tids.append(tid)
        }
        for tid in tids { pthread_join(tid, nil) }
        let done = Latch<Bool>()
        loop.execute { done.set(true) }
        #expect(done.wait() == true)
        let values = recorder.values
        #expect(values.count == threads * perThread)
        #expect(Set(values).count == threads * perThread)
        // Each thread's tasks keep their order.
        for t in 0..<threads {
            let mine = values.filter { $0 / perThread == t }
            #expect(mine == Array((t * perThread)..<((t + 1) * perThread)))
        }
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesNever() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let recorder = Recorder()
        let done = Latch<Bool>()
        loop.execute {
            loop.schedule(afterNanoseconds: 30_000_000) { recorder.append(3) }
            loop.schedule(afterNanoseconds: 10_000_000) { recorder.append(1) }
            let cancelled = loop.schedule(afterNanoseconds: 20_000_000) { recorder.append(99) }
            loop.schedule(afterNanoseconds: 20_000_000) { recorder.append(2) }
            loop.schedule(afterNanoseconds: 40_000_000) { done.set(true) }
            loop.cancel(cancelled)
        }
        #expect(done.wait() == true)
        #expect(recorder.values == [1, 2, 3])
    }

    @Test func timerDoesNotFireEarly() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let fired = Latch<UInt64>()
        let start = monotonicNanoseconds()
        loop.execute { loop.schedule(afterNanoseconds: 50_000_000) { fired.set(monotonicNanoseconds()) } }
        let at = try #require(fired.wait())
        #expect(at - start >= 50_000_000)
    }

    @Test func stopRunsQueuedWorkAndJoins() throws {
        let loop = try EventLoop()
        try loop.start()
        let recorder = Recorder()
        for i in 0..<10 { loop.execute { recorder.append(i) } }
        loop.stop()
        #expect(recorder.values == Array(0..<10))
    }
}

@Suite struct LookupPoolTests {
    /// A resolver that stalls until released, counting the lookups running at once.
    final class StalledResolver: @unchecked Sendable {
        let gate = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        let running = Atomic<Int>(0)
        let started = Atomic<Int>(0)
        init() { sem_init(gate, 0, 0) }
        func lookup(_ host: String, _ port: UInt16) throws(GatewayError) -> [SocketAddress] {
            running.add(1, ordering: .relaxed)
            started.add(1, ordering: .relaxed)
            while sem_wait(gate) != 0 {}
            running.subtract(1, ordering: .relaxed)
            return try Resolver.lookup(host: "127.0.0.1", port: port, numericOnly: true)
        }
    }

    @Test func aStalledResolverUsesAFewThreadsAndCancelledLookupsNeverRun() throws {
        let resolver = StalledResolver()
        let pool = LookupPool(maxThreads: 3) { host, port throws(GatewayError) in try resolver.lookup(host, port) }
        let done = Atomic<Int>(0)
        var jobs: [LookupPool.Job] = []
        for i in 0..<1000 {
            jobs.append(
                pool.submit(host: "stalled.example", port: UInt16(1000 + i)) { _ in done.add(1, ordering: .relaxed) })
        }
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while resolver.started.load(ordering: .relaxed) < 3 && monotonicNanoseconds() < deadline { usleep(1000) }
        #expect(resolver.started.load(ordering: .relaxed) == 3)
        #expect(pool.mostThreads == 3)
        #expect(pool.waitingCount == 997)
        // The attempts that gave up cancel their lookups: they leave the queue at once.
        for job in jobs[500...] { job.cancel() }
        #expect(pool.waitingCount == 497)
        for _ in 0..<1000 { sem_post(resolver.gate) }
        while done.load(ordering: .relaxed) < 500 && monotonicNanoseconds() < deadline { usleep(1000) }
        #expect(done.load(ordering: .relaxed) == 500)
        #expect(resolver.started.load(ordering: .relaxed) == 500)
        #expect(pool.mostThreads == 3)
    }
}

@Suite struct ResolverTests {
    @Test func numericAddressesNeedNoLookup() throws {
        let v4 = try Resolver.lookup(host: "127.0.0.1", port: 80, numericOnly: true)
        #expect(v4.map(\.description) == ["127.0.0.1:80"])
        let v6 = try Resolver.lookup(host: "::1", port: 443, numericOnly: true)
        #expect(v6.map(\.description) == ["[::1]:443"])
    }

    @Test func localhostResolves() throws {
        let addresses = try Resolver.lookup(host: "localhost", port: 8080)
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { $0.description.hasSuffix(":8080") })
    }

    @Test func unknownHostIsAResolveErrorNamingTheHost() {
        #expect(throws: GatewayError.self) { try Resolver.lookup(host: "no-such-host.invalid", port: 80) }
        do {
            _ = try Resolver.lookup(host: "no-such-host.invalid", port: 80)
        } catch {
            #expect(error.code == .resolve)
            #expect(error.message.contains("no-such-host.invalid"))
        }
    }

    @Test func asyncResolutionAnswersOnTheLoop() throws {
        let loop = try EventLoop()
        try loop.start()
        defer { loop.stop() }
        let answer = Latch<Bool>()
        Resolver.resolve(host: "localhost", port: 1, on: loop) { result in
            answer.set(loop.isCurrent && ((try? result.get())?.isEmpty == false))
        }
        #expect(answer.wait() == true)
    }
}

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
