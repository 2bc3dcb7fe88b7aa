/// WebSocket close status codes (RFC 6455 §7.4) and which of them may appear on the wire.
package enum CloseCode {
    package static let normal: UInt16 = 1000
    package static let goingAway: UInt16 = 1001
    package static let protocolError: UInt16 = 1002
    package static let unsupportedData: UInt16 = 1003
    /// Reserved: "no status code was present". Never sent.
    package static let noStatus: UInt16 = 1005
    /// Reserved: "closed without a close frame". Never sent; reported locally.
    package static let abnormal: UInt16 = 1006
    package static let invalidPayload: UInt16 = 1007
    package static let policyViolation: UInt16 = 1008
    package static let messageTooBig: UInt16 = 1009
    package static let internalError: UInt16 = 1011

    /// Whether a peer may send `code` in a close frame: the defined codes 1000-1003 and
    /// 1007-1014 (IANA registered), and the ranges 3000-4999 for libraries and applications.
    /// 1004, 1005, 1006 and 1015 are reserved for local use and make the frame a protocol error.
    package static func isValidOnWire(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }

    /// Whether the application may ask us to send `code`.
    package static func isSendable(_ code: UInt16) -> Bool {
        isValidOnWire(code)
    }
}
