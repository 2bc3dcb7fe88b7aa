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
}
