import Synchronization
import UtilbotGateway

/// A loop handed to C: the event loop and how many clients use it.
final class LoopObject: @unchecked Sendable {
    let loop: EventLoop
    let clients = Atomic<Int>(0)

    init() throws(GatewayError) {
        loop = try EventLoop()
        try loop.start()
    }

    static let registry = HandleRegistry<LoopObject>()

    /// The process-wide loop used when a client is created without one. Started on first use
    /// and never stopped.
    static func defaultLoop() throws(GatewayError) -> LoopObject {
        try defaultLoopStorage.withLock { (stored: inout LoopObject?) throws(GatewayError) -> LoopObject in
            if let stored { return stored }
            let made = try LoopObject()
            stored = made
            return made
        }
    }

    private static let defaultLoopStorage = Locked<LoopObject?>(nil)
}
