/// One WebSocket frame with its payload unmasked. A decoded frame's payload is a slice of the
/// decoder's buffer: no copy per frame.
package struct Frame: Equatable, Sendable {
    package var fin: Bool
    package var opcode: Opcode
    package var payload: ArraySlice<UInt8>

    package init(fin: Bool = true, opcode: Opcode, payload: ArraySlice<UInt8>) {
        self.fin = fin
        self.opcode = opcode
        self.payload = payload
    }

    package init(fin: Bool = true, opcode: Opcode, payload: [UInt8] = []) {
        self.init(fin: fin, opcode: opcode, payload: payload[...])
    }
}

/// Why the connection must be failed, with the close code to send (RFC 6455 §7.1.7).
package struct WebSocketFailure: Error, Equatable, Sendable {
    package var closeCode: UInt16
    package var error: GatewayError

    package init(_ closeCode: UInt16, _ code: ErrorCode, _ message: String) {
        self.closeCode = closeCode
        self.error = GatewayError(code, message)
    }

    static func protocolError(_ message: String) -> WebSocketFailure {
        WebSocketFailure(CloseCode.protocolError, .protocolViolation, message)
    }
}
