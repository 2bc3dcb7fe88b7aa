/// The stage between the WebSocket and the session: the gateway payload a message carries. A text
/// message is its payload; a binary one is inflated when the connection asked for compression
/// (docs/PROTOCOL.md, "Compression") and taken as it is otherwise. One per connection: a new
/// connection makes a new one, so the zlib stream starts over in this one place.
package final class PayloadDecoder {
    private let inflater: Inflater?

    package init(compressed: Bool, maxMessageSize: Int) throws(GatewayError) {
        inflater = compressed ? try Inflater(maxMessageSize: maxMessageSize) : nil
    }

    /// The payload of `event`: nil for control frames and for a message that carries only part
    /// of a compressed payload (the rest comes with the next). The slice may point into the
    /// decoder's buffer: drop it before the next call. Throws for corrupt or oversized compressed
    /// data; `closeCode(for:)` says how the connection ends then.
    package func payload(of event: WebSocketStateMachine.Event) throws(GatewayError) -> ArraySlice<UInt8>? {
        switch event {
        case .text(let message):
            return message
        case .binary(let bytes):
            guard let inflater else { return bytes }
            let inflated = bytes.withUnsafeBytes { wire in
                Result { () throws(GatewayError) -> ArraySlice<UInt8>? in try inflater.inflateIntoBuffer(wire) }
            }
            return try inflated.get()
        case .ping, .pong, .closed:
            return nil
        }
    }

    package static func closeCode(for error: GatewayError) -> UInt16 {
        error.code == .messageTooLarge ? CloseCode.messageTooBig : CloseCode.invalidPayload
    }
}
