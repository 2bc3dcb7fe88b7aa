/// Limits and timeouts of one WebSocket client connection. Every limit has a safe default.
package struct WebSocketOptions: Sendable, Equatable {
    package var tls = TLSConfiguration()
    /// The largest message (after reassembly) accepted; a larger one fails the connection with 1009.
    package var maxMessageSize = 4 << 20
    /// The largest handshake response header accepted.
    package var maxHandshakeHeaderSize = Handshake.defaultMaxHeaderSize
    /// From `connect()` to the 101 answer: DNS, TCP, TLS and the upgrade together.
    package var openTimeoutNanoseconds: UInt64 = 15_000_000_000
    /// One TCP connection attempt to one resolved address.
    package var connectAttemptTimeoutNanoseconds: UInt64 = 5_000_000_000
    /// How long to wait for the server's answer to our close frame.
    package var closeTimeoutNanoseconds: UInt64 = 5_000_000_000
    package var userAgent = "utilbot-gateway/\(libraryVersion)"
    /// The proxy set by the host; it wins over the environment.
    package var proxy: ProxyURL?
    /// Without a proxy set by the host, whether the environment's (`https_proxy`, `no_proxy`...)
    /// applies.
    package var proxyFromEnvironment = true

    package init() {}
}

/// How a WebSocket connection (or an attempt at one) ended.
package struct WebSocketCloseInfo: Equatable, Sendable {
    /// The server's close code when it closed first, ours when we did, 1006 when no close frame
    /// was exchanged.
    package var code: UInt16
    package var reason: String
    /// Whether the server sent the first close frame.
    package var closedByServer: Bool
    /// Why the connection failed; nil for a completed closing handshake.
    package var error: GatewayError?
    /// The HTTP status when the upgrade was answered with something other than 101.
    package var httpStatus: Int?

    package init(code: UInt16, reason: String, closedByServer: Bool, error: GatewayError? = nil, httpStatus: Int? = nil)
    {
        self.code = code
        self.reason = reason
        self.closedByServer = closedByServer
        self.error = error
        self.httpStatus = httpStatus
    }
}
