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
/// the handle's life (its contents change with the next error).
final class ErrorMessageBuffer: @unchecked Sendable {
    static let capacity = 512
    let pointer: UnsafeMutablePointer<CChar>
    private let lock = Locked<Void>(())

    init() {
        pointer = .allocate(capacity: Self.capacity)
        pointer.initialize(repeating: 0, count: Self.capacity)
    }

    deinit { pointer.deallocate() }

    func set(_ message: String) {
        lock.withLock { _ in
            var bytes = Array(message.utf8.prefix(Self.capacity - 1))
            // Do not cut a UTF-8 sequence in half.
            while !bytes.withUnsafeBytes({ UTF8Validator.isValid($0) }) { bytes.removeLast() }
            bytes.withUnsafeBufferPointer { src in
                pointer.withMemoryRebound(to: UInt8.self, capacity: Self.capacity) { dest in
                    dest.update(from: src.baseAddress!, count: src.count)
                    dest[src.count] = 0
                }
            }
        }
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
