import Synchronization
import UtilbotGateway

/// Maps the opaque handles given to C to their objects. A handle is a token, never a pointer to
/// memory: a NULL, made-up or already freed handle is simply not found, so it cannot crash the
/// library. Tokens are never reused within a process.
final class HandleRegistry<Object: AnyObject & Sendable>: @unchecked Sendable {
    private let objects = Locked<[UInt: Object]>([:])
    private let nextToken = Atomic<UInt>(0x1000)

    func insert(_ object: Object) -> OpaquePointer {
        let token = nextToken.add(16, ordering: .relaxed).newValue
        objects.withLock { $0[token] = object }
        return OpaquePointer(bitPattern: token)!
    }

    func lookup(_ handle: OpaquePointer?) -> Object? {
        guard let handle else { return nil }
        let token = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        return objects.withLock { $0[token] }
    }

    /// Every registered object.
    func all() -> [Object] { objects.withLock { Array($0.values) } }

    /// Removes the handle; returns its object if it was registered.
    func remove(_ handle: OpaquePointer?) -> Object? {
        guard let handle else { return nil }
        let token = UInt(bitPattern: Int(bitPattern: UnsafeRawPointer(handle)))
        return objects.withLock { $0.removeValue(forKey: token) }
    }
}
