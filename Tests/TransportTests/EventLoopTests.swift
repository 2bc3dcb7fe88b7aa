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
        defer { loop.close() }
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
        defer { loop.close() }
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
        defer { loop.close() }
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
        defer { loop.close() }
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
        loop.close()
        #expect(recorder.values == Array(0..<10))
    }
}
