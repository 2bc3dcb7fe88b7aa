/// A WebSocket frame opcode (RFC 6455 §5.2). Unknown values are kept so the decoder can name
/// them in its error before failing the connection.
package struct Opcode: RawRepresentable, Equatable, Hashable, Sendable, CustomStringConvertible {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue & 0x0F }

    package static let continuation = Opcode(rawValue: 0x0)
    package static let text = Opcode(rawValue: 0x1)
    package static let binary = Opcode(rawValue: 0x2)
    package static let close = Opcode(rawValue: 0x8)
    package static let ping = Opcode(rawValue: 0x9)
    package static let pong = Opcode(rawValue: 0xA)

    package var isControl: Bool { rawValue & 0x8 != 0 }
    package var isKnown: Bool {
        switch self {
        case .continuation, .text, .binary, .close, .ping, .pong: true
        default: false
        }
    }

    package var description: String {
        switch self {
        case .continuation: "continuation"
        case .text: "text"
        case .binary: "binary"
        case .close: "close"
        case .ping: "ping"
        case .pong: "pong"
        default: "opcode \(rawValue)"
        }
    }
}
