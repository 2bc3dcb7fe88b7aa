// TEMPORARY stand-in until the real validator lands (slow, correct).
package struct UTF8Validator: Sendable {
    private var pending: [UInt8] = []
    private var failed = false
    package init() {}
    package mutating func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if failed { return false }
        pending.append(contentsOf: bytes)
        var it = pending.makeIterator()
        var dec = UTF8()
        var consumed = 0
        var lastGood = 0
        loop: while true {
            switch dec.decode(&it) {
            case .scalarValue(let s): consumed += UTF8.width(s); lastGood = consumed
            case .emptyInput: break loop
            case .error:
                // could be truncated at end
                if pending.count - lastGood < 4 { break loop }
                failed = true; return false
            }
        }
        pending.removeFirst(lastGood)
        if pending.count >= 4 { failed = true; return false }
        return true
    }
    package var isComplete: Bool { !failed && pending.isEmpty }
    package mutating func reset() { pending = []; failed = false }
    package static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var v = UTF8Validator(); return v.feed(bytes) && v.isComplete
    }
}
