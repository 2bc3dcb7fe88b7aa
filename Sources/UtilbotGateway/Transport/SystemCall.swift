import Glibc

/// The errno of a failed system call, with the C library's description.
package struct SystemError: Error, Sendable, CustomStringConvertible {
    package var errno: Int32
    package var call: String

    package var description: String { "\(call): \(Self.describe(errno))" }

    package static func describe(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

/// Runs a system call, retrying on EINTR. errno is read immediately after the call returns,
/// before anything else (an allocation or a release) can overwrite it.
@inline(__always)
package func systemCall<T: BinaryInteger>(_ name: String, _ body: () -> T) -> Result<T, SystemError> {
    while true {
        let result = body()
        if result >= 0 { return .success(result) }
        let code = errno
        if code == EINTR { continue }
        return .failure(SystemError(errno: code, call: name))
    }
}

/// Monotonic time in nanoseconds, for deadlines and latency.
package func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension String {
    /// A string from a NUL-terminated C buffer.
    package init(cChars: [CChar]) {
        self = cChars.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
