/// The result codes of every layer, with a stable name and a default message each.
///
/// This is the one table: the C ABI maps it one to one onto its result enum, so a code's
/// number never changes once released.
package enum ErrorCode: Int32, Sendable, CaseIterable {
    case ok = 0
    case invalidArgument = 1
    case invalidState = 2
    case resolve = 10
    case connect = 11
    case timeout = 12
    case tls = 13
    case handshake = 14
    case protocolViolation = 15
    case messageTooLarge = 16
    case invalidUTF8 = 17
    case invalidJSON = 18
    case decompress = 19
    case closed = 20
    case io = 21
    case queueFull = 22
    case gatewayRefused = 23
    case invalidHandle = 24
    case proxy = 25

    package var name: String {
        switch self {
        case .ok: "UBG_OK"
        case .invalidArgument: "UBG_EINVAL"
        case .invalidState: "UBG_ESTATE"
        case .resolve: "UBG_ERESOLVE"
        case .connect: "UBG_ECONNECT"
        case .timeout: "UBG_ETIMEOUT"
        case .tls: "UBG_ETLS"
        case .handshake: "UBG_EHANDSHAKE"
        case .protocolViolation: "UBG_EPROTOCOL"
        case .messageTooLarge: "UBG_ETOOLARGE"
        case .invalidUTF8: "UBG_EUTF8"
        case .invalidJSON: "UBG_EJSON"
        case .decompress: "UBG_EDECOMPRESS"
        case .closed: "UBG_ECLOSED"
        case .io: "UBG_EIO"
        case .queueFull: "UBG_EQUEUEFULL"
        case .gatewayRefused: "UBG_EREFUSED"
        case .invalidHandle: "UBG_EHANDLE"
        case .proxy: "UBG_EPROXY"
        }
    }

    package var defaultMessage: String {
        switch self {
        case .ok: "no error"
        case .invalidArgument: "invalid argument"
        case .invalidState: "call not allowed in the current state"
        case .resolve: "host name could not be resolved"
        case .connect: "TCP connection failed"
        case .timeout: "operation timed out"
        case .tls: "TLS failure"
        case .handshake: "WebSocket opening handshake failed"
        case .protocolViolation: "WebSocket protocol violation"
        case .messageTooLarge: "message larger than the configured limit"
        case .invalidUTF8: "invalid UTF-8 in a text message"
        case .invalidJSON: "invalid JSON"
        case .decompress: "corrupt compressed data"
        case .closed: "connection closed"
        case .io: "I/O error"
        case .queueFull: "queue full"
        case .gatewayRefused: "the gateway refused the client for good"
        case .invalidHandle: "NULL, unknown or already freed handle"
        case .proxy: "the proxy refused or broke the tunnel"
        }
    }
}

/// An error with a code from the table and a message that says what happened.
package struct GatewayError: Error, Equatable, Sendable, CustomStringConvertible {
    package var code: ErrorCode
    package var message: String

    package init(_ code: ErrorCode, _ message: String? = nil) {
        self.code = code
        self.message = message ?? code.defaultMessage
    }

    package var description: String { "\(code.name): \(message)" }
}
