/// The gateway's opcodes (docs/PROTOCOL.md, "Messages").
package enum GatewayOpcode: Int, Sendable {
    /// From the gateway: something went wrong (`e`, `m`, sometimes `d`); a close follows.
    case error = -1
    /// From the gateway: an event, `t` its name and `d` its data.
    case dispatch = 0
    /// From the client: an event (identify, and the host's sends).
    case event = 1
    /// From the gateway: the first message, with the heartbeat interval.
    case hello = 5
    /// From the client: a heartbeat.
    case heartbeat = 10
    /// From the gateway: the answer to a heartbeat.
    case heartbeatAck = 11
}
