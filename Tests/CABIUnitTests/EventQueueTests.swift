import Glibc
import Synchronization
import Testing
import UtilbotGateway
import UtilbotGatewayTypes

@testable import UtilbotGatewayC

/// The pull API's queue without a client: its bounds, its wake-ups, its descriptor, and how long
/// handed-out events live.
@Suite(.timeLimit(.minutes(1)))
struct EventQueueTests {
    private func dispatch(_ data: String = "{}") -> EventRecord {
        var record = EventRecord(type: UBG_EVENT_DISPATCH, state: .ready)
        record.data = CStringBox.make(data)
        return record
    }

    private func popAll(_ queue: EventQueue, resumed: inout Int) -> Int {
        var taken = 0
        while case .events(let n) = queue.pop(
            maxCount: 1000, timeoutMilliseconds: 0, fill: { _, _ in }, resume: { resumed += 1 })
        {
            taken += n
        }
        return taken
    }

    @Test func pausesOnceAtItsCapacityAndResumesBelowHalf() {
        let queue = EventQueue(capacity: 8)
        let full = (0..<20).map { _ in queue.push(dispatch(), final: false) }
        #expect(full.firstIndex(of: true) == 7)
        #expect(full.filter { $0 }.count == 1)
        #expect(queue.fullCount == 1)
        var resumed = 0
        _ = queue.pop(maxCount: 12, timeoutMilliseconds: 0, fill: { _, _ in }, resume: { resumed += 1 })
        #expect(resumed == 0)  // 8 left: not yet half of the capacity
        _ = queue.pop(maxCount: 4, timeoutMilliseconds: 0, fill: { _, _ in }, resume: { resumed += 1 })
        #expect(resumed == 1)
        #expect(queue.count == 4)
    }

    @Test func pausesAtItsByteBoundWhateverTheCount() {
        let queue = EventQueue(capacity: 4096)
        queue.setMaxBytes(4096)
        let big = String(repeating: "x", count: 1000)
        let full = (0..<10).map { _ in queue.push(dispatch(big), final: false) }
        // Each record counts its 1000 bytes of data and 64 of its own: the fourth reaches 4096.
        #expect(full.firstIndex(of: true) == 3)
        #expect(queue.byteCount == 10 * 1064)
        var resumed = 0
        #expect(popAll(queue, resumed: &resumed) == 10)
        #expect(resumed == 1)
        #expect(queue.byteCount == 0)
    }

    /// The default byte bound is 8 MiB, as the header says: eight events of 1 MiB fill it.
    @Test func itsByteBoundIsEightMiBByDefault() {
        let queue = EventQueue(capacity: 100_000)
        #expect(queue.maxBytes == 8 << 20)
        let mebibyte = String(repeating: "x", count: 1 << 20)
        let full = (0..<9).map { _ in queue.push(dispatch(mebibyte), final: false) }
        #expect(full.firstIndex(of: true) == 7)
        var resumed = 0
        #expect(popAll(queue, resumed: &resumed) == 9)
        #expect(resumed == 1)
    }

    @Test func finishWakesAConsumerBlockedForever() {
        let queue = EventQueue(capacity: 16)
        let consumer = ConsumerBox(queue: queue)
        let box = Unmanaged.passRetained(consumer)
        var thread = pthread_t()
        pthread_create(
            &thread, nil,
            { arg in
                let box = Unmanaged<ConsumerBox>.fromOpaque(arg!).takeRetainedValue()
                let popped = box.queue.pop(maxCount: 1, timeoutMilliseconds: -1, fill: { _, _ in }, resume: {})
                box.result.withLock { $0 = popped }
                return nil
            }, box.toOpaque())
        usleep(50_000)
        queue.close()
        pthread_join(thread, nil)
        #expect(consumer.result.withLock { $0 } == .closed)
    }

    @Test func itsDescriptorIsReadableExactlyWhileEventsWait() throws {
        let queue = EventQueue(capacity: 16)
        let fd = try queue.eventFD()
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        #expect(poll(&poller, 1, 0) == 0)
        _ = queue.push(dispatch(), final: false)
        queue.notify()
        #expect(poll(&poller, 1, 0) == 1)
        var resumed = 0
        #expect(popAll(queue, resumed: &resumed) == 1)
        poller.revents = 0
        #expect(poll(&poller, 1, 0) == 0)
    }

    @Test func handedOutEventsLiveUntilTheNextPull() {
        let queue = EventQueue(capacity: 16)
        _ = queue.push(dispatch(#"{"n":1}"#), final: false)
        var pointer: UnsafePointer<CChar>?
        _ = queue.pop(
            maxCount: 1, timeoutMilliseconds: 0, fill: { _, record in pointer = record.data?.pointer }, resume: {})
        for n in 2..<100 { _ = queue.push(dispatch(#"{"n":\#(n)}"#), final: false) }
        #expect(pointer.map { String(cString: $0) } == #"{"n":1}"#)
    }
}

private final class ConsumerBox: @unchecked Sendable {
    let queue: EventQueue
    let result = Mutex<EventQueue.Pop?>(nil)
    init(queue: EventQueue) { self.queue = queue }
}
