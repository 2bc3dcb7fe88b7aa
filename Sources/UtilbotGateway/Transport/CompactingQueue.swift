/// A first-in, first-out queue in one array: appends go to the end, taking from the front only
/// moves an index, and `compact()` drops what was taken when that is worth it. No copy per
/// take, and no growth without bound. The frame decoder's input, a stream's unsent bytes and
/// the pull queue's events are each one.
///
/// `compact()` is left to the owner because elements read out as slices share the storage:
/// compacting while such a slice lives would copy the whole array.
///
/// Public and inlinable, not package: the pull queue's module (UtilbotGatewayC) only gets a copy
/// specialized for its element type from public inlinable code; through `package` it called the
/// generic code, which cost 500 instructions a pushed event. The library exports only `ubg_`
/// symbols (scripts/exports.map), so nothing of it is visible outside the package.
public struct CompactingQueue<Element> {
    /// Taken and waiting elements alike; the waiting ones start at `readIndex`.
    @usableFromInline var storage: [Element] = []
    @usableFromInline var readIndex = 0
    /// The most storage an emptied queue keeps: one burst must not hold memory for good.
    @usableFromInline let keptCapacity: Int
    /// Taken elements are moved out only once there are this many and they are half the array.
    @usableFromInline let compactionThreshold: Int

    public init(keptCapacity: Int, compactionThreshold: Int) {
        self.keptCapacity = keptCapacity
        self.compactionThreshold = compactionThreshold
    }

    /// The elements waiting.
    @inlinable public var count: Int { storage.count - readIndex }

    @inlinable public var isEmpty: Bool { readIndex == storage.count }

    /// The `offset`th waiting element.
    @inlinable public subscript(offset: Int) -> Element { storage[readIndex + offset] }

    /// Waiting elements `range` (offsets from the first waiting one), sharing the storage.
    @inlinable public func slice(_ range: Range<Int>) -> ArraySlice<Element> {
        storage[(readIndex + range.lowerBound)..<(readIndex + range.upperBound)]
    }

    @inlinable public mutating func append(_ element: Element) {
        storage.append(element)
    }

    /// Takes the first `n` waiting elements (they stay in the storage until `compact()`).
    @inlinable public mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count, "taking more than is waiting")
        readIndex += n
    }

    /// Drops what was taken: everything, keeping the storage unless a burst grew it past
    /// `keptCapacity`, once nothing waits; else the taken part, when it is large and half the
    /// array.
    @inlinable public mutating func compact() {
        if readIndex == storage.count {
            guard readIndex > 0 || storage.capacity > keptCapacity else { return }
            storage.removeAll(keepingCapacity: storage.capacity <= keptCapacity)
            readIndex = 0
        } else if readIndex >= compactionThreshold && readIndex * 2 >= storage.count {
            storage.removeSubrange(0..<readIndex)
            readIndex = 0
        }
    }

    /// Gives back storage one burst grew past `keptCapacity`, once nothing waits. Never copies,
    /// whatever still shares the storage (unlike `compact()`).
    @inlinable public mutating func releaseExcessCapacity() {
        guard readIndex == storage.count, storage.capacity > keptCapacity else { return }
        storage = []
        readIndex = 0
    }

    /// Drops every element and the storage.
    @inlinable public mutating func removeAll() {
        storage = []
        readIndex = 0
    }
}

extension CompactingQueue where Element == UInt8 {
    @inlinable public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        storage.append(contentsOf: bytes)
    }

    /// Appends up to `count` bytes that `fill` writes, keeping as many as it says it wrote.
    @inlinable public mutating func append(upTo count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Int) {
        let start = storage.count
        storage.append(contentsOf: repeatElement(0, count: count))
        let written = storage.withUnsafeMutableBytes { fill(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
        storage.removeLast(count - min(count, max(0, written)))
    }

    /// The waiting bytes, valid during `body`.
    @inlinable public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[readIndex...])) }
    }
}
