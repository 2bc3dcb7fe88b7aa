import UtilbotGateway
import UtilbotGatewayTypes

/// The library's version, "MAJOR.MINOR.PATCH". A static string: never free it.
/// Thread-safe; never fails.
@c public func ubg_version() -> UnsafePointer<CChar> {
    constantStrings.pointer(libraryVersion)
}

/// The name of a result code, such as "UBG_EINVAL", or "UBG_UNKNOWN" for a value that is not
/// a result code. A static string: never free it. Thread-safe; never fails.
@c public func ubg_result_name(_ result: ubg_result_t) -> UnsafePointer<CChar> {
    guard let code = ErrorCode(rawValue: Int32(truncatingIfNeeded: result.rawValue)) else {
        return constantStrings.pointer("UBG_UNKNOWN")
    }
    return constantStrings.pointer(code.name)
}

/// A one-line English description of a result code ("invalid argument"). A static string:
/// never free it. Thread-safe; never fails. For what exactly went wrong, read the handle's
/// ubg_client_last_error() instead.
@c public func ubg_result_string(_ result: ubg_result_t) -> UnsafePointer<CChar> {
    guard let code = ErrorCode(rawValue: Int32(truncatingIfNeeded: result.rawValue)) else {
        return constantStrings.pointer("unknown result code")
    }
    return constantStrings.pointer(code.defaultMessage)
}

/// The gateway's name for a close or error code ("Wrong Auth Key" for 4001, "No Heartbeat"
/// for 4006, the WebSocket names for 1000-1011), or NULL for a code without one. A static
/// string: never free it. Thread-safe.
@c public func ubg_close_code_name(_ code: Int32) -> UnsafePointer<CChar>? {
    ClosePolicy.name(of: Int(code)).map { constantStrings.pointer($0) }
}

/// Whether a close code makes the client give up for good (1: 4000, 4001, 4007) rather than
/// reconnect (0). Thread-safe.
@c public func ubg_close_code_is_fatal(_ code: Int32) -> Int32 {
    guard let code = UInt16(exactly: code) else { return 0 }
    return ClosePolicy(closeCode: code) == .fatal ? 1 : 0
}

/// The name of a state ("READY"), or "UNKNOWN". A static string: never free it. Thread-safe.
@c public func ubg_state_name(_ state: ubg_state_t) -> UnsafePointer<CChar> {
    let names = ["IDLE", "CONNECTING", "IDENTIFYING", "READY", "RECONNECTING", "CLOSING", "CLOSED", "FAILED"]
    let index = Int(state.rawValue)
    return constantStrings.pointer(index < names.count ? names[index] : "UNKNOWN")
}
