import CSystem
import Glibc
import UtilbotGateway
import UtilbotGatewayTypes

/// The pull API's queue: bounded, with an eventfd that is readable exactly while events wait
/// (for epoll, libuv or asyncio), and the storage of the event last handed out.
///
/// Producer: the loop thread. Consumer: one host thread at a time. When the queue reaches its
/// capacity the client pauses reading from the gateway (TCP back-pressure) until the consumer
/// has taken half of it: nothing is dropped and memory stays bounded.
final class EventQueue: @unchecked Sendable {
    private(set) var capacity: Int
    let fd: Int32
    // Allocated, not a stored pthread_mutex_t: `&property` gives no stable address in Swift.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        return mutex
    }()
    private var items: [EventRecord] = []
    private var head = 0
    private var finished = false
    private var paused = false
    private(set) var fullCount: UInt64 = 0
    // The consumer's current event: its strings live in `arena` until the next pull.
    private var arena: UnsafeMutablePointer<CChar>?

    init(capacity: Int) throws(GatewayError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw GatewayError(.io, "eventfd: \(SystemError.describe(errno))") }
        self.fd = fd
        self.capacity = max(1, capacity)
    }

    deinit {
        arena?.deallocate()
        close(fd)
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func setCapacity(_ value: Int) {
        pthread_mutex_lock(mutex)
        capacity = max(1, value)
        pthread_mutex_unlock(mutex)
    }

    var count: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return items.count - head
    }

    /// Appends an event (loop thread). Returns true when the queue just became full and the
    /// producer should pause.
    func push(_ record: EventRecord, final: Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        items.append(record)
        if final { finished = true }
        if items.count - head == 1 { signal() }
        if items.count - head >= capacity && !paused {
            paused = true
            fullCount += 1
            return true
        }
        return false
    }

    enum Pop {
        case event
        case timedOut
        case finished
    }

    /// Waits up to `timeoutMilliseconds` (negative: forever) and fills `event` with the oldest
    /// event. `resume` is called (without the lock) when a paused producer may go on.
    func pop(timeoutMilliseconds: Int32, into event: inout ubg_event_t, resume: () -> Void) -> Pop {
        let deadline = timeoutMilliseconds < 0 ? nil : monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while true {
            pthread_mutex_lock(mutex)
            if head < items.count {
                let record = items[head]
                head += 1
                if head == items.count {
                    items.removeAll(keepingCapacity: items.capacity <= 4096)
                    head = 0
                    drainSignal()
                } else if head >= 1024 && head * 2 >= items.count {
                    items.removeSubrange(0..<head)
                    head = 0
                }
                var shouldResume = false
                if paused && items.count - head <= capacity / 2 {
                    paused = false
                    shouldResume = true
                }
                arena?.deallocate()
                arena = nil
                record.fill(&event, arena: &arena)
                pthread_mutex_unlock(mutex)
                if shouldResume { resume() }
                return .event
            }
            let done = finished
            pthread_mutex_unlock(mutex)
            if done { return .finished }
            var wait: Int32 = -1
            if let deadline {
                let now = monotonicNanoseconds()
                if now >= deadline { return .timedOut }
                wait = Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, wait)
        }
    }

    /// No more events will come (the client is being freed): wakes a waiting consumer.
    func finish() {
        pthread_mutex_lock(mutex)
        finished = true
        signal()
        pthread_mutex_unlock(mutex)
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(fd, &one, 8)
    }

    private func drainSignal() {
        var value: UInt64 = 0
        _ = read(fd, &value, 8)
    }
}
