/// The state of a gateway client as its host sees it.
package enum ClientState: Int32, Sendable, Equatable {
    /// Created, not yet told to connect.
    case idle = 0
    /// Opening a connection (DNS, TCP, TLS, upgrade) or waiting for Hello.
    case connecting = 1
    /// Hello received, heartbeating, Identify sent, waiting for `bot_connect_success`.
    case identifying = 2
    /// Identified: events flow and sends go out at once.
    case ready = 3
    /// The connection ended; waiting out the backoff before the next attempt.
    case reconnecting = 4
    /// The host asked to close; the closing handshake is under way.
    case closing = 5
    /// Closed by the host. Final.
    case closed = 6
    /// The gateway refused the client for good (4000, 4001, 4007). Final.
    case failed = 7
}

package enum LogLevel: Int32, Sendable, Equatable, Comparable {
    case error = 1
    case warning = 2
    case info = 3
    case debug = 4

    package static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// What the session reports to its host, in order, besides the op 0 events (those go out as
/// `SessionStateMachine.Dispatch`, see `GatewaySessionDelegate`).
package enum SessionEvent: Equatable, Sendable {
    case state(ClientState)
    /// `bot_connect_success` arrived (it is also reported as a dispatch).
    case ready
    /// An op -1 error from the gateway: `e`, `m` and the raw JSON of `d`.
    case gatewayError(code: Int?, message: String?, data: ArraySlice<UInt8>?)
    /// A problem the library found itself: malformed JSON, corrupt zlib data, an oversized
    /// message, sends it could not deliver. The session goes on (or reconnects).
    case localError(GatewayError)
    /// A connection or an attempt ended. `code` is the server's close code when it closed
    /// first, ours when we did, 1006 when no close frame was exchanged.
    case closed(code: UInt16, reason: String, reconnect: Bool, error: GatewayError?, httpStatus: Int?)
    /// `count` events of the host's were accepted but will never be sent (the client stopped).
    case sendsDropped(count: Int, reason: String)
    /// The client gave up for good.
    case fatal(code: UInt16, message: String)
    /// A heartbeat was answered after `nanoseconds`.
    case heartbeatAck(nanoseconds: UInt64)
    case log(LogLevel, String)
}
