/// What a close code means for the session (docs/PROTOCOL.md, "Close codes and reconnects").
/// The policy lives here, on the code, and nowhere else.
package enum ClosePolicy: Equatable, Sendable {
    /// 4000 wrong version, 4001 wrong key, 4007 wrong identify: retrying cannot help. Report, stop.
    case fatal
    /// 4002-4005: a bug on the client's side. Report with the server's message, reconnect.
    case clientBug
    /// 1000, 4006, network, TLS and handshake failures, zombies, anything else: reconnect.
    case reconnect

    package init(closeCode: UInt16) {
        switch closeCode {
        case 4000, 4001, 4007: self = .fatal
        case 4002...4005: self = .clientBug
        default: self = .reconnect
        }
    }

    /// The gateway's name for its own codes (docs/PROTOCOL.md), for messages and the C API.
    package static func name(of code: Int) -> String? {
        switch code {
        case 1000: "Unknown Error"
        case 4000: "Wrong Version"
        case 4001: "Wrong Auth Key"
        case 4002: "Bot ID Used"
        case 4003: "No Opcode"
        case 4004: "Wrong Opcode"
        case 4005: "Malformed Data"
        case 4006: "No Heartbeat"
        case 4007: "Wrong Identify"
        case 1001: "Going Away"
        case 1002: "Protocol Error"
        case 1003: "Unsupported Data"
        case 1005: "No Status"
        case 1006: "Abnormal Closure"
        case 1007: "Invalid Payload"
        case 1008: "Policy Violation"
        case 1009: "Message Too Big"
        case 1011: "Internal Error"
        default: nil
        }
    }
}
