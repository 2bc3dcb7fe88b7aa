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

    /// Why `size` more bytes cannot join `count` messages of `bytes` bytes, if they cannot: the one
    /// rule, for the queue itself and for the check in the sender's thread.
    package static func refusal(count: Int, bytes: Int, adding size: Int, maxMessages: Int, maxBytes: Int)
        -> GatewayError?
    {
        if count >= maxMessages {
            return GatewayError(.queueFull, "send queue full: \(maxMessages) messages wait for the session to be ready")
        }
        if bytes + size > maxBytes {
            return GatewayError(.queueFull, "send queue full: \(maxBytes) bytes wait for the session to be ready")
        }
        return nil
    }

    package mutating func push(_ payload: [UInt8]) throws(GatewayError) {
        let refusal = Self.refusal(
            count: count, bytes: byteCount, adding: payload.count, maxMessages: maxMessages, maxBytes: maxBytes)
        if let refusal { throw refusal }
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
