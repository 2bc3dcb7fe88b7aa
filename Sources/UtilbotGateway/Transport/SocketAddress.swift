import CSystem
import Glibc

/// An IPv4 or IPv6 socket address, as getaddrinfo returns it.
package struct SocketAddress: Sendable, CustomStringConvertible {
    package var storage: sockaddr_storage
    package var length: socklen_t

    package var family: Int32 { Int32(storage.ss_family) }

    package init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    /// "127.0.0.1:443" or "[::1]:443".
    package var description: String {
        var copy = storage
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let rc = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0, length, &host, socklen_t(host.count), &port, socklen_t(port.count),
                    NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard rc == 0 else { return "<address family \(family)>" }
        let h = String(cChars: host)
        let p = String(cChars: port)
        return family == AF_INET6 ? "[\(h)]:\(p)" : "\(h):\(p)"
    }
}
