import CSystem
import Glibc
import UtilbotGateway
import UtilbotGatewayTypes

/// The pull API's queue: bounded, with an eventfd (made on first request) that is readable
/// exactly while events wait, for epoll, libuv or asyncio; and the events last handed out,
/// whose strings the consumer reads until its next pull.
///
/// Producer: the loop thread. Consumer: one host thread at a time. When the queue reaches its
/// capacity in events or in bytes the client pauses reading from the gateway (TCP back-pressure,
/// from the next message on, in every state of the session) until the consumer has taken half of
/// it: nothing is dropped and memory stays bounded.
final class EventQueue: @unchecked Sendable {
    private(set) var capacity: Int
    private(set) var maxBytes = 8 << 20
    /// The bytes of the events waiting (`EventRecord.byteCount`).
    private var bytes = 0
    // Allocated, not stored: `&property` gives no stable address in Swift.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// -1 until a host asks for it: a client in callback mode, or one that only blocks in
    /// ubg_client_next_event(), never costs a descriptor.
    private var fd: Int32 = -1
    private var items = CompactingQueue<EventRecord>(keptCapacity: 4096, compactionThreshold: 1024)
    private var closed = false
    private var paused = false
    private var waiters = 0
    /// Whether the eventfd has been written since the queue was last empty.
    private var fdSignalled = false
    private(set) var fullCount: UInt64 = 0
    /// The events of the last pull: alive, and so their strings, until the next one.
    private var handedOut: [EventRecord] = []

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
        pthread_cond_destroy(condition)
        condition.deinitialize(count: 1)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func setCapacity(_ value: Int) {
        pthread_mutex_lock(mutex)
        capacity = max(1, value)
        pthread_mutex_unlock(mutex)
    }

    func setMaxBytes(_ value: Int) {
        pthread_mutex_lock(mutex)
        maxBytes = max(1, value)
        pthread_mutex_unlock(mutex)
    }

    /// The bytes of the events waiting.
    var byteCount: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return bytes
    }

    var count: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return items.count
    }

    /// The descriptor, made on the first call; readable while events wait (or once closed).
    func eventFD() throws(GatewayError) -> Int32 {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        if fd >= 0 { return fd }
        let made = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard made >= 0 else { throw GatewayError(.io, "eventfd: \(SystemError.describe(errno))") }
        fd = made
        if !items.isEmpty || closed { signal() }
        return fd
    }

    /// Appends an event (loop thread) without waking the consumer: `notify` does, once per
    /// burst. Returns true when the queue just became full and the producer should pause.
    func push(_ record: EventRecord, final: Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        items.append(record)
        bytes += record.byteCount
        if final { closed = true }
        if (items.count >= capacity || bytes >= maxBytes) && !paused {
            paused = true
            fullCount += 1
            return true
        }
        return false
    }

    enum Pop: Equatable {
        case events(Int)
        case timedOut
        case closed
    }

    /// Waits up to `timeoutMilliseconds` (negative: forever) for events and hands out up to
    /// `maxCount` of the oldest: `fill(i, record)` for each, under the lock, which replaces the
    /// previous pull's events. `resume` is called (without the lock) when a paused producer may
    /// go on.
    func pop(
        maxCount: Int, timeoutMilliseconds: Int32, fill: (Int, EventRecord) -> Void, resume: () -> Void
    ) -> Pop {
        let deadline = timeoutMilliseconds < 0 ? nil : monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        var previous: [EventRecord] = []
        pthread_mutex_lock(mutex)
        while items.isEmpty {
            if closed {
                pthread_mutex_unlock(mutex)
                return .closed
            }
            guard wait(until: deadline) else {
                pthread_mutex_unlock(mutex)
                return .timedOut
            }
        }
        let taken = min(items.count, max(1, maxCount))
        previous = handedOut
        handedOut = Array(items.slice(0..<taken))
        for (index, record) in handedOut.enumerated() {
            fill(index, record)
            bytes -= record.byteCount
        }
        items.removeFirst(taken)
        items.compact()
        if items.isEmpty { drainSignal() }
        var shouldResume = false
        if paused && items.count <= capacity / 2 && bytes <= maxBytes / 2 {
            paused = false
            shouldResume = true
        }
        pthread_mutex_unlock(mutex)
        previous.removeAll()  // the strings of the last pull are freed outside the lock
        if shouldResume { resume() }
        return .events(taken)
    }

    /// Wakes a waiting consumer and marks the descriptor readable if events wait (loop thread,
    /// after a burst of pushes: one wake-up per burst, not per event).
    func notify() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !items.isEmpty || closed else { return }
        signal()
        if waiters > 0 { pthread_cond_broadcast(condition) }
    }

    /// No more events will come (the client is being freed): wakes a waiting consumer.
    func close() {
        pthread_mutex_lock(mutex)
        closed = true
        signal()
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// With the lock held: waits for a push or `close`; false once `deadline` has passed.
    private func wait(until deadline: UInt64?) -> Bool {
        waiters += 1
        defer { waiters -= 1 }
        guard let deadline else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        if monotonicNanoseconds() >= deadline { return false }
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &time)
        return true
    }

    private func signal() {
        guard fd >= 0, !fdSignalled else { return }
        fdSignalled = true
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    private func drainSignal() {
        guard fd >= 0, fdSignalled else { return }
        fdSignalled = false
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}
