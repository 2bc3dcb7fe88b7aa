/// Payloads sent while the session is not ready, kept in order until identify succeeds. Bounded
/// in messages and in bytes: a send that does not fit is refused at once (the caller hears it),
/// never dropped later without a word.
package struct SendQueue: Sendable, Equatable {
    package let maxMessages: Int
    package let maxBytes: Int
    package private(set) var byteCount = 0
    private var items: [[UInt8]] = []

    package init(maxMessages: Int, maxBytes: Int) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }

    package var count: Int { items.count }

    package mutating func push(_ payload: [UInt8]) throws(GatewayError) {
        guard count < maxMessages else {
            throw GatewayError(.queueFull, "send queue full: \(maxMessages) messages wait for the session to be ready")
        }
        guard byteCount + payload.count <= maxBytes else {
            throw GatewayError(.queueFull, "send queue full: \(maxBytes) bytes wait for the session to be ready")
        }
        items.append(payload)
        byteCount += payload.count
    }

    package mutating func popAll() -> [[UInt8]] {
        let all = items
        items.removeAll()
        byteCount = 0
        return all
    }
}
