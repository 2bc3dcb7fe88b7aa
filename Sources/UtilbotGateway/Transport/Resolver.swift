import CSystem
import Glibc

/// Host name resolution that never blocks the loop: getaddrinfo runs on a helper thread and
/// its answer is posted back to the loop.
package enum Resolver {
    /// Resolves `host` for TCP on `port`, IPv6 and IPv4 in the order the system prefers, and
    /// calls `completion` on `loop`'s thread. A name is looked up on the process's `LookupPool`;
    /// the returned job cancels a lookup that has not started (nil for a numeric address).
    @discardableResult
    package static func resolve(
        host: String, port: UInt16, on loop: EventLoop,
        completion: @escaping @Sendable (Result<[SocketAddress], GatewayError>) -> Void
    ) -> LookupPool.Job? {
        // A numeric address needs no lookup and no thread.
        if let numeric = try? lookup(host: host, port: port, numericOnly: true) {
            loop.execute { completion(.success(numeric)) }
            return nil
        }
        return LookupPool.shared.submit(host: host, port: port) { result in
            loop.execute { completion(result) }
        }
    }

    /// A blocking lookup; callers keep it off the loop thread unless `numericOnly` is set.
    package static func lookup(host: String, port: UInt16, numericOnly: Bool = false) throws(GatewayError)
        -> [SocketAddress]
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV | (numericOnly ? AI_NUMERICHOST : 0)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let list else {
            let reason = rc == EAI_SYSTEM ? SystemError.describe(errno) : String(cString: gai_strerror(rc))
            throw GatewayError(.resolve, "could not resolve host '\(host)': \(reason)")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var node: UnsafeMutablePointer<addrinfo>? = list
        while let current = node {
            let info = current.pointee
            if let address = info.ai_addr, info.ai_family == AF_INET || info.ai_family == AF_INET6 {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) { dest in
                    dest.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(info.ai_addrlen)))
                }
                addresses.append(SocketAddress(storage: storage, length: info.ai_addrlen))
            }
            node = info.ai_next
        }
        if addresses.isEmpty {
            throw GatewayError(.resolve, "could not resolve host '\(host)': no IPv4 or IPv6 address")
        }
        return addresses
    }
}
