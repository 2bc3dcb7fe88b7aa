import Glibc
import Synchronization
import Testing
import UtilbotGateway

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

    /// The child of a fork() inherits the pool's count of running workers, but not the workers:
    /// after the reset its fork handler does, a lookup starts a worker of its own instead of
    /// waiting forever for workers that do not exist. (Here the "parent's" workers are real but
    /// stalled, which to the new lookup is the same.)
    @Test func afterTheForkResetALookupDoesNotWaitForTheParentsWorkers() throws {
        let resolver = StalledResolver()
        let pool = LookupPool(maxThreads: 2) { host, port throws(GatewayError) in
            if host == "stalled.example" { return try resolver.lookup(host, port) }
            return try Resolver.lookup(host: "127.0.0.1", port: port, numericOnly: true)
        }
        for _ in 0..<2 { pool.submit(host: "stalled.example", port: 1) { _ in } }
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while resolver.started.load(ordering: .relaxed) < 2 && monotonicNanoseconds() < deadline { usleep(1000) }
        #expect(resolver.started.load(ordering: .relaxed) == 2)
        pool.resetAfterFork()
        let done = Atomic<Bool>(false)
        pool.submit(host: "fresh.example", port: 2) { result in
            if case .success = result { done.store(true, ordering: .relaxed) }
        }
        while !done.load(ordering: .relaxed) && monotonicNanoseconds() < deadline { usleep(1000) }
        let looked = done.load(ordering: .relaxed)
        #expect(looked)
        for _ in 0..<2 { sem_post(resolver.gate) }
        while resolver.running.load(ordering: .relaxed) > 0 && monotonicNanoseconds() < deadline { usleep(1000) }
    }
}
