import Glibc
import Synchronization
import UtilbotGateway

/// fork() copies the process but only the calling thread: in the child, a loop made before the
/// fork has no thread, and its locks may be held by threads that no longer exist. Loops remember
/// the generation they were made in; a pthread_atfork handler starts a new generation in every
/// child, and the API refuses older loops and their clients there (UBG_ESTATE) instead of
/// sending into a loop that never runs or waiting for it forever.
enum ForkGeneration {
    private static let counter = Atomic<UInt64>(0)
    private static let registered: Bool = {
        pthread_atfork(nil, nil) {
            ForkGeneration.counter.add(1, ordering: .relaxed)
            LookupPool.shared.resetAfterFork()
        }
        return true
    }()

    static var current: UInt64 {
        _ = registered
        return counter.load(ordering: .relaxed)
    }

    static let refusal = GatewayError(
        .invalidState,
        "this client or loop was made before fork(): it does not work in the child process; make new ones there")
}
