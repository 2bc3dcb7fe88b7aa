import Glibc
import UtilbotGateway
import UtilbotGatewayTypes

/// NUL-terminated copies of constant strings handed to C, made once and kept for the life of
/// the process (callers may hold them forever).
final class ConstantCStrings: @unchecked Sendable {
    private let table = Locked<[String: UnsafePointer<CChar>]>([:])

    func pointer(_ text: String) -> UnsafePointer<CChar> {
        table.withLock { table in
            if let existing = table[text] { return existing }
            let copy = UnsafePointer(strdup(text)!)
            table[text] = copy
            return copy
        }
    }
}

let constantStrings = ConstantCStrings()

extension ErrorCode {
    var result: ubg_result_t { ubg_result_t(rawValue: UInt32(rawValue)) }
}

/// A fixed buffer holding a handle's last error message, so the pointer C gets stays valid for
/// the handle's life (its contents change with the next error). Allocated on first use: most
/// clients never have an error to keep (512 bytes each, at 10,000 clients 5 MB).
final class ErrorMessageBuffer: @unchecked Sendable {
    static let capacity = 512
    private let storage = Locked<UnsafeMutablePointer<CChar>?>(nil)

    init() {}

    deinit { storage.withLock { $0?.deallocate() } }

    /// The buffer (empty until the first error); the same pointer for the handle's life.
    var pointer: UnsafeMutablePointer<CChar> { storage.withLock { Self.buffer(&$0) } }

    func set(_ message: String) {
        var bytes = Array(message.utf8.prefix(Self.capacity - 1))
        // Do not cut a UTF-8 sequence in half.
        while !bytes.withUnsafeBytes({ UTF8Validator.isValid($0) }) { bytes.removeLast() }
        storage.withLock { (current: inout UnsafeMutablePointer<CChar>?) in
            let pointer = Self.buffer(&current)
            bytes.withUnsafeBufferPointer { src in
                pointer.withMemoryRebound(to: UInt8.self, capacity: Self.capacity) { dest in
                    if let base = src.baseAddress { dest.update(from: base, count: src.count) }
                    dest[src.count] = 0
                }
            }
        }
    }

    private static func buffer(_ current: inout UnsafeMutablePointer<CChar>?) -> UnsafeMutablePointer<CChar> {
        if let current { return current }
        let made = UnsafeMutablePointer<CChar>.allocate(capacity: capacity)
        made.initialize(repeating: 0, count: capacity)
        current = made
        return made
    }
}

/// A C string argument as Swift text: nil for NULL, an error for invalid UTF-8.
func swiftString(_ pointer: UnsafePointer<CChar>?, _ what: String) throws(GatewayError) -> String? {
    guard let pointer else { return nil }
    let length = strlen(pointer)
    let bytes = UnsafeRawBufferPointer(start: pointer, count: length)
    guard UTF8Validator.isValid(bytes) else { throw GatewayError(.invalidArgument, "\(what) is not valid UTF-8") }
    return String(decoding: bytes, as: UTF8.self)
}

/// Copies `bytes` to `target` and ends them with a NUL; `target` has room for count + 1.
func copyCString(_ bytes: UnsafeRawBufferPointer, to target: UnsafeMutablePointer<CChar>) {
    if let base = bytes.baseAddress, bytes.count > 0 {
        UnsafeMutableRawPointer(target).copyMemory(from: base, byteCount: bytes.count)
    }
    target[bytes.count] = 0
}
