import Glibc

/// Blocking host lookups on a few helper threads shared by the whole process: at most
/// `maxThreads` run at once, the rest wait their turn in order. A stalled resolver with 10,000
/// clients reconnecting then costs `maxThreads` threads and one waiting job per client (an
/// attempt that gives up cancels its job), never a thread per attempt.
package final class LookupPool: @unchecked Sendable {
    package typealias Lookup = @Sendable (_ host: String, _ port: UInt16) throws(GatewayError) -> [SocketAddress]
    package typealias Completion = @Sendable (Result<[SocketAddress], GatewayError>) -> Void

    /// One lookup asked for; `cancel()` drops it if it has not started (its completion then
    /// never runs).
    package final class Job: @unchecked Sendable {
        fileprivate let host: String
        fileprivate let port: UInt16
        fileprivate let completion: Completion
        /// Strong: the pool holds the job only while it waits, so no cycle outlives that.
        fileprivate let pool: LookupPool

        fileprivate init(host: String, port: UInt16, completion: @escaping Completion, pool: LookupPool) {
            self.host = host
            self.port = port
            self.completion = completion
            self.pool = pool
        }

        package func cancel() { pool.cancel(self) }
    }

    private struct State {
        var waiting: [Job] = []
        var threads = 0
        /// The most threads that ran at once (for tests and diagnostics).
        var mostThreads = 0
    }

    package static let shared = LookupPool(maxThreads: 4) { host, port throws(GatewayError) in
        try Resolver.lookup(host: host, port: port)
    }

    package let maxThreads: Int
    private let lookup: Lookup
    private var state = Locked(State())

    package init(maxThreads: Int, lookup: @escaping Lookup) {
        self.maxThreads = max(1, maxThreads)
        self.lookup = lookup
    }

    package var mostThreads: Int { state.withLock { $0.mostThreads } }
    package var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// In the child of a fork(): the parent's workers do not exist here and its lock may be held
    /// by one of them. Forgets them and their jobs (whose loops do not run here either).
    package func resetAfterFork() {
        state = Locked(State())
    }

    /// Queues a lookup; `completion` runs on a helper thread.
    @discardableResult
    package func submit(host: String, port: UInt16, completion: @escaping Completion) -> Job {
        let job = Job(host: host, port: port, completion: completion, pool: self)
        let startThread = state.withLock { s -> Bool in
            s.waiting.append(job)
            guard s.threads < maxThreads else { return false }
            s.threads += 1
            s.mostThreads = max(s.mostThreads, s.threads)
            return true
        }
        if startThread { spawnWorker() }
        return job
    }

    private func cancel(_ job: Job) {
        state.withLock { $0.waiting.removeAll { $0 === job } }
    }

    private func spawnWorker() {
        let box = Unmanaged.passRetained(self)
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, &attributes,
            { arg in
                Unmanaged<LookupPool>.fromOpaque(arg!).takeRetainedValue().work()
                return nil
            }, box.toOpaque())
        pthread_attr_destroy(&attributes)
        guard rc != 0 else { return }
        box.release()
        // No thread: if no other worker will take the queue, its jobs fail rather than wait.
        let orphaned = state.withLock { s -> [Job] in
            s.threads -= 1
            guard s.threads == 0 else { return [] }
            defer { s.waiting.removeAll() }
            return s.waiting
        }
        let error = GatewayError(.resolve, "could not start a resolver thread: \(SystemError.describe(rc))")
        for job in orphaned { job.completion(.failure(error)) }
    }

    private func work() {
        while let job = next() {
            do {
                job.completion(.success(try lookup(job.host, job.port)))
            } catch {
                job.completion(.failure(error))
            }
        }
    }

    /// The oldest waiting job, or nil after this worker has left the pool.
    private func next() -> Job? {
        state.withLock { s -> Job? in
            guard !s.waiting.isEmpty else {
                s.threads -= 1
                return nil
            }
            return s.waiting.removeFirst()
        }
    }
}
