import Testing
@testable import UtilbotGateway

@Suite struct CompactingQueueTests {
    @Test func takesInOrderAndSlicesShareTheStorage() {
        var queue = CompactingQueue<Int>(keptCapacity: 64, compactionThreshold: 4)
        for element in 0..<10 { queue.append(element) }
        #expect(queue.count == 10)
        #expect(queue[0] == 0)
        queue.removeFirst(3)
        #expect(queue[0] == 3)
        #expect(Array(queue.slice(0..<2)) == [3, 4])
        queue.removeFirst(7)
        #expect(queue.isEmpty)
    }

    /// The taken prefix goes only once it is at least the threshold and half the array; what
    /// waits is kept, in order.
    @Test func compactsALargeTakenPrefixOnly() {
        var queue = CompactingQueue<Int>(keptCapacity: 64, compactionThreshold: 4)
        for element in 0..<10 { queue.append(element) }
        queue.removeFirst(3)
        queue.compact()
        #expect(queue.readIndex == 3)  // under the threshold: nothing moves
        queue.removeFirst(2)
        queue.compact()
        #expect(queue.readIndex == 0)
        #expect(queue.storage == [5, 6, 7, 8, 9])
    }

    /// An emptied queue keeps its storage unless one burst grew it past the kept capacity.
    @Test func anEmptiedQueueGivesBackOnlyAnOversizedBuffer() {
        var small = CompactingQueue<UInt8>(keptCapacity: 1024, compactionThreshold: 64)
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { small.append($0) }
        small.removeFirst(100)
        small.compact()
        #expect(small.isEmpty && small.readIndex == 0)
        #expect(small.storage.capacity >= 100)

        var large = CompactingQueue<UInt8>(keptCapacity: 1024, compactionThreshold: 64)
        [UInt8](repeating: 1, count: 100_000).withUnsafeBytes { large.append($0) }
        large.removeFirst(100_000)
        large.compact()
        #expect(large.storage.capacity < 100_000)
    }

    /// `releaseExcessCapacity` lets go of an oversized buffer without touching one a slice still
    /// shares, and does nothing while bytes wait.
    @Test func releasingExcessCapacityNeverCopies() {
        var queue = CompactingQueue<UInt8>(keptCapacity: 1024, compactionThreshold: 64)
        [UInt8](repeating: 7, count: 100_000).withUnsafeBytes { queue.append($0) }
        let held = queue.slice(0..<10)
        queue.removeFirst(99_999)
        queue.releaseExcessCapacity()
        #expect(queue.count == 1)  // one byte still waits: kept
        queue.removeFirst(1)
        queue.releaseExcessCapacity()
        #expect(queue.storage.capacity == 0)
        #expect(Array(held) == Array(repeating: 7, count: 10))
    }

    @Test func appendsWhatTheFillerWrote() {
        var queue = CompactingQueue<UInt8>(keptCapacity: 1024, compactionThreshold: 64)
        queue.append(upTo: 8) { buffer in
            buffer[0] = 1
            buffer[1] = 2
            return 2
        }
        #expect(queue.count == 2)
        queue.withUnsafeBytes { #expect(Array($0) == [1, 2]) }
    }
}
