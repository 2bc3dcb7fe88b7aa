import CSystem
import Glibc
import Synchronization

/// One I/O thread: epoll for readiness, an eventfd to wake it, a heap of timers, and a queue of
/// work posted from any thread.
///
/// Everything except `execute`, `close` and `isCurrent` must be called on the loop's own thread
/// (from a task, a timer or an I/O handler). Work runs in the order it was posted and never
/// re-entrantly inside the call that posted it.
package final class EventLoop: @unchecked Sendable {
    package typealias IOHandler = (_ events: UInt32) -> Void

    package struct Registration: Hashable, Sendable {
        package let id: UInt64
        package let fd: Int32
    }

    package struct TimerID: Hashable, Sendable {
        fileprivate let value: UInt64
    }

    private let epollFD: Int32
    private let wakeFD: Int32
    private struct Queue {
        var tasks: [@Sendable () -> Void] = []
        /// Set once the loop thread has run its last task.
        var finished = false
    }

    private let queue = Locked(Queue())
    private let closing = Atomic<Bool>(false)
    /// Stopped by `closeForExit`: tasks posted after the end are dropped, not run on the caller's
    /// thread (a lookup finishing during exit must not open a socket).
    private let closedForExit = Atomic<Bool>(false)
    private let threadToken = Atomic<UInt>(0)
    private var thread: pthread_t?

    // Loop-thread state.
    private var handlers: [UInt64: IOHandler] = [:]
    private var nextID: UInt64 = 1
    private var timers = TimerHeap()
    private var timerActions: [UInt64: () -> Void] = [:]

    /// Scratch space for reads, shared by every connection on this loop: a read is consumed
    /// before the next one starts, so thousands of connections do not each hold a buffer.
    package let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
    package let plaintextBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)

    package init() throws(GatewayError) {
        let ep = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard ep >= 0 else {
            throw GatewayError(.io, "epoll_create1: \(SystemError.describe(errno))")
        }
        let wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wake >= 0 else {
            let code = errno
            Glibc.close(ep)
            throw GatewayError(.io, "eventfd: \(SystemError.describe(code))")
        }
        epollFD = ep
        wakeFD = wake
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = 0
        if case .failure(let error) = systemCall("epoll_ctl", { epoll_ctl(ep, EPOLL_CTL_ADD, wake, &event) }) {
            throw GatewayError(.io, error.description)  // deinit closes both
        }
    }

    deinit {
        readBuffer.deallocate()
        plaintextBuffer.deallocate()
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
    }

    /// Starts the loop on a new thread.
    package func start() throws(GatewayError) {
        let box = Unmanaged.passRetained(self)
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let loop = Unmanaged<EventLoop>.fromOpaque(arg!).takeRetainedValue()
                loop.run()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw GatewayError(.io, "pthread_create: \(SystemError.describe(rc))")
        }
        thread = tid
    }

    /// Stops the loop after the work already queued. From another thread it waits for the loop
    /// thread to end; on the loop thread itself (say, the last owner let go inside a callback) it
    /// returns at once and the thread ends when the current callback returns.
    package func close() {
        closing.store(true, ordering: .releasing)
        wake()
        guard let thread else { return }
        self.thread = nil
        if isCurrent {
            pthread_detach(thread)
        } else {
            pthread_join(thread, nil)
        }
    }

    /// The process is exiting (an atexit handler): stops the loop after the callback under way and
    /// joins its thread, waiting at most `nanoseconds` (a callback blocked forever must not hang
    /// the exit), so that no library code runs on it while the process tears down its libraries
    /// (OpenSSL, the Swift runtime's statics). Not from the loop thread itself, where it only asks
    /// the loop to stop.
    package func closeForExit(waitingAtMost nanoseconds: UInt64) {
        closedForExit.store(true, ordering: .releasing)
        closing.store(true, ordering: .releasing)
        wake()
        guard let thread, !isCurrent else { return }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let total = UInt64(now.tv_nsec) + nanoseconds
        var deadline = timespec(tv_sec: now.tv_sec + Int(total / 1_000_000_000), tv_nsec: Int(total % 1_000_000_000))
        var rc: Int32
        repeat { rc = ubg_join_until(thread, &deadline) } while rc == EINTR
        if rc == 0 { self.thread = nil }
    }

    /// Whether the loop was stopped because the process is exiting: nothing waits for it any more.
    package var hasClosedForExit: Bool { closedForExit.load(ordering: .acquiring) }

    /// Whether the caller runs on this loop's thread.
    package var isCurrent: Bool {
        threadToken.load(ordering: .acquiring) == UInt(bitPattern: Int(bitPattern: pthread_self()))
    }

    /// Queues `task` to run on the loop thread. Any thread may call this.
    package func execute(_ task: @escaping @Sendable () -> Void) {
        let queued: Bool? = queue.withLock { state in
            guard !state.finished else { return nil }
            state.tasks.append(task)
            return state.tasks.count == 1
        }
        guard let wasEmpty = queued else {
            // The loop has ended: nothing runs concurrently with it any more, so the task runs
            // here rather than never (a thread waiting on it must not wait forever), unless the
            // process is exiting.
            if !closedForExit.load(ordering: .acquiring) { task() }
            return
        }
        // On the loop thread (a callback sending its answer) the loop is awake: it looks at the
        // queue again before it waits, so a wake-up would only cost two system calls.
        if wasEmpty && !isCurrent { wake() }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: I/O registration (loop thread)

    /// Watches `fd`; fails when epoll cannot (out of memory, or the limit of watches reached).
    package func register(fd: Int32, events: UInt32, handler: @escaping IOHandler) throws(GatewayError) -> Registration
    {
        var event = epoll_event()
        event.events = events
        event.data.u64 = nextID
        if case .failure(let error) = systemCall("epoll_ctl", { epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) }) {
            throw GatewayError(.io, error.description)
        }
        let id = nextID
        nextID += 1
        handlers[id] = handler
        return Registration(id: id, fd: fd)
    }

    /// Changes what a registered descriptor is watched for. It cannot fail for a descriptor that
    /// is registered and open: a failure is a bug of the caller's, caught in debug builds.
    package func modify(_ registration: Registration, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = registration.id
        let result = systemCall("epoll_ctl") { epoll_ctl(epollFD, EPOLL_CTL_MOD, registration.fd, &event) }
        assert((try? result.get()) != nil, "epoll_ctl(MOD) of a registered descriptor failed: \(result)")
    }

    /// Stops watching the descriptor. Events already reported for it are dropped: the
    /// registration id, not the fd, identifies the handler, so a reused fd never gets them.
    package func unregister(_ registration: Registration) {
        handlers[registration.id] = nil
        let result = systemCall("epoll_ctl") { epoll_ctl(epollFD, EPOLL_CTL_DEL, registration.fd, nil) }
        assert((try? result.get()) != nil, "epoll_ctl(DEL) of a registered descriptor failed: \(result)")
    }

    // MARK: Timers (loop thread)

    package var now: UInt64 { monotonicNanoseconds() }

    /// Loop thread: when the loop began what it is doing now (its queued tasks, or the events of
    /// one wake-up), read once for each. Handlers stamp what they read with it rather than reading
    /// the clock for every message.
    package private(set) var phaseStart: UInt64 = 0

    /// Loop thread: actions to run once everything due now is handled, just before the loop
    /// waits again (so a burst of reads can end in one notification rather than one per event).
    private var beforeWaiting: [() -> Void] = []

    /// Runs `action` on the loop thread when the loop next runs out of work. Loop thread only.
    package func runBeforeWaiting(_ action: @escaping () -> Void) {
        beforeWaiting.append(action)
    }

    private func runBeforeWaitingActions() {
        while !beforeWaiting.isEmpty {
            let actions = beforeWaiting
            beforeWaiting.removeAll(keepingCapacity: true)
            for action in actions { action() }
        }
    }

    @discardableResult
    package func schedule(afterNanoseconds delay: UInt64, _ action: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID += 1
        timerActions[id] = action
        timers.push(deadline: Self.coalesced(deadline: now &+ delay, delay: delay), id: id)
        return TimerID(value: id)
    }

    /// A timer may fire up to 1/64 of its delay late (at most 8 ms): its deadline is rounded up
    /// to a multiple of 1, 2, 4 or 8 ms, so that timers due close together (10,000 clients'
    /// heartbeats) share one wake-up of the loop instead of one each. Never early.
    package static func coalesced(deadline: UInt64, delay: UInt64) -> UInt64 {
        let slack = min(delay >> 6, 8_000_000)
        guard slack >= 1_000_000 else { return deadline }
        var quantum: UInt64 = 1_000_000
        while quantum * 2 <= slack { quantum *= 2 }
        let (rounded, overflow) = deadline.addingReportingOverflow(quantum - 1)
        return overflow ? deadline : rounded / quantum * quantum
    }

    /// A timer that may fire early but never after `deadline`: it is rounded down to the same
    /// grid (at most 1/64 of its delay, at most 8 ms), unless that would be in the past. For
    /// deadlines a peer holds us to, such as heartbeats.
    @discardableResult
    package func schedule(notAfter deadline: UInt64, _ action: @escaping () -> Void) -> TimerID {
        let id = nextID
        nextID += 1
        timerActions[id] = action
        let current = now
        timers.push(
            deadline: deadline > current ? Self.coalescedEarlier(deadline: deadline, now: current) : deadline, id: id)
        return TimerID(value: id)
    }

    package static func coalescedEarlier(deadline: UInt64, now: UInt64) -> UInt64 {
        let slack = min((deadline - now) >> 6, 8_000_000)
        guard slack >= 1_000_000 else { return deadline }
        var quantum: UInt64 = 1_000_000
        while quantum * 2 <= slack { quantum *= 2 }
        let rounded = deadline / quantum * quantum
        return rounded > now ? rounded : deadline
    }

    package func cancel(_ timer: TimerID?) {
        guard let timer else { return }
        timerActions[timer.value] = nil
    }

    // MARK: The loop

    private func run() {
        threadToken.store(UInt(bitPattern: Int(bitPattern: pthread_self())), ordering: .releasing)
        var events = [epoll_event](repeating: epoll_event(), count: 128)
        while true {
            phaseStart = monotonicNanoseconds()
            runQueuedTasks()
            if closing.load(ordering: .acquiring) { break }
            runBeforeWaitingActions()
            // Tasks posted from this thread since the queue was emptied did not wake the loop.
            let timeout = hasQueuedTasks ? 0 : pollTimeout()
            let count = events.withUnsafeMutableBufferPointer {
                epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout)
            }
            if count > 0 {
                phaseStart = monotonicNanoseconds()
                for i in 0..<Int(count) {
                    let id = events[i].data.u64
                    if id == 0 {
                        var value: UInt64 = 0
                        _ = read(wakeFD, &value, 8)
                    } else if let handler = handlers[id] {
                        handler(events[i].events)
                    }
                }
            }
            phaseStart = monotonicNanoseconds()
            runExpiredTimers()
        }
        runQueuedTasks()
        runBeforeWaitingActions()
        let late = queue.withLock { state in
            state.finished = true
            defer { state.tasks.removeAll() }
            return state.tasks
        }
        for task in late { task() }
        // Whatever is still registered (a connection lingering for its peer's FIN, a timer)
        // would keep itself and this loop alive through its closure: let go of it all, which
        // closes the sockets.
        handlers.removeAll()
        timerActions.removeAll()
        threadToken.store(0, ordering: .releasing)
    }

    private var hasQueuedTasks: Bool { queue.withLock { !$0.tasks.isEmpty } }

    private func runQueuedTasks() {
        let tasks = queue.withLock { state -> [@Sendable () -> Void] in
            let taken = state.tasks
            state.tasks.removeAll()
            return taken
        }
        for task in tasks { task() }
    }

    private func pollTimeout() -> Int32 {
        while let top = timers.peek, timerActions[top.id] == nil { _ = timers.pop() }
        guard let top = timers.peek else { return -1 }
        let current = now
        if top.deadline <= current { return 0 }
        let ms = (top.deadline - current + 999_999) / 1_000_000
        return Int32(min(ms, UInt64(Int32.max)))
    }

    private func runExpiredTimers() {
        let current = now
        while let top = timers.peek, top.deadline <= current {
            _ = timers.pop()
            if let action = timerActions.removeValue(forKey: top.id) { action() }
        }
    }
}

/// A binary min-heap of (deadline, id), ties broken by id so equal deadlines fire in order.
struct TimerHeap {
    private var items: [(deadline: UInt64, id: UInt64)] = []

    var peek: (deadline: UInt64, id: UInt64)? { items.first }

    private func less(_ a: Int, _ b: Int) -> Bool {
        (items[a].deadline, items[a].id) < (items[b].deadline, items[b].id)
    }

    mutating func push(deadline: UInt64, id: UInt64) {
        items.append((deadline, id))
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard less(child, parent) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (deadline: UInt64, id: UInt64)? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count && less(left, smallest) { smallest = left }
            if right < items.count && less(right, smallest) { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
