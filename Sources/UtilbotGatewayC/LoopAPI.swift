import UtilbotGateway
import UtilbotGatewayTypes

/// Creates an event loop with its own I/O thread, for hosts that want to keep clients apart
/// (most use the default loop by passing NULL to ubg_client_create()). Many clients may share
/// one loop; it is designed for thousands of connections on one thread.
///
/// - `out_loop`: receives the loop; unchanged on failure. Must not be NULL.
/// - Returns UBG_OK, UBG_EINVAL (out_loop is NULL), UBG_EIO (the thread or epoll could not be
///   made).
/// - Thread-safe. Free it with ubg_loop_free().
@c public func ubg_loop_create(_ out_loop: UnsafeMutablePointer<ubg_loop_t?>?) -> ubg_result_t {
    guard let out_loop else { return UBG_EINVAL }
    do {
        out_loop.pointee = LoopObject.registry.insert(try LoopObject())
        return UBG_OK
    } catch {
        return error.code.result
    }
}

/// Stops a loop created by ubg_loop_create() and joins its thread. Every client on it must
/// have been freed first.
///
/// - `loop`: NULL is a harmless no-op returning UBG_OK.
/// - Returns UBG_OK, UBG_EHANDLE (unknown or already freed loop), UBG_ESTATE (clients still
///   use it, or called from one of this loop's callbacks: the loop cannot join itself; or the
///   loop was made before fork() in the parent of this process).
/// - Thread-safe, but not from a callback running on this loop.
@c public func ubg_loop_free(_ loop: ubg_loop_t?) -> ubg_result_t {
    guard let loop else { return UBG_OK }
    guard let object = LoopObject.registry.lookup(loop) else { return UBG_EHANDLE }
    if object.isOrphaned { return UBG_ESTATE }
    if object.loop.isCurrent || object.clients.load(ordering: .relaxed) > 0 { return UBG_ESTATE }
    guard LoopObject.registry.remove(loop) != nil else { return UBG_EHANDLE }
    object.loop.close()
    return UBG_OK
}
