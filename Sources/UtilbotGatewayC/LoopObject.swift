import Synchronization
import UtilbotGateway

/// A loop handed to C: the event loop and how many clients use it.
final class LoopObject: @unchecked Sendable {
    let loop: EventLoop
    let clients = Atomic<Int>(0)
    /// The process generation it was made in (see `ForkGeneration`).
    private let generation = ForkGeneration.current

    init() throws(GatewayError) {
        _ = ProcessExit.prepared
        loop = try EventLoop()
        try loop.start()
    }

    /// Made before a fork(), in the parent: its thread does not exist in this process.
    var isOrphaned: Bool { generation != ForkGeneration.current }

    static let registry = HandleRegistry<LoopObject>()

    /// The process-wide loop used when a client is created without one. Started on first use
    /// and never stopped; a child process of a fork() starts its own.
    static func defaultLoop() throws(GatewayError) -> LoopObject {
        try defaultLoopStorage.withLock { (stored: inout LoopObject?) throws(GatewayError) -> LoopObject in
            if let stored, !stored.isOrphaned { return stored }
            let made = try LoopObject()
            stored = made
            return made
        }
    }

    /// The default loop if one was started (for the exit handler; it does not start one).
    static var currentDefaultLoop: LoopObject? { defaultLoopStorage.withLock { $0 } }

    private static let defaultLoopStorage = Locked<LoopObject?>(nil)
}
