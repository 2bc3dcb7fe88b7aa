"""Exceptions: one base class, `UbgError`, with a subclass per kind of failure. Each carries the
library's result code and its message."""

from __future__ import annotations

from ._ffi import Result


class UbgError(Exception):
    """Base of every error the library reports. `code` is the result code, `message` the
    library's explanation of what went wrong."""

    def __init__(self, code: Result, message: str) -> None:
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message


class InvalidArgumentError(UbgError, ValueError):
    """An argument was rejected (UBG_EINVAL), for example event data that is not a JSON object."""


class InvalidJSONError(InvalidArgumentError):
    """Data that is not JSON (UBG_EJSON); the message says where."""


class InvalidStateError(UbgError):
    """The call is not allowed now (UBG_ESTATE), e.g. a setting changed after connect()."""


class ClientClosedError(UbgError):
    """The client is closed (UBG_ECLOSED, or an already freed handle)."""


class QueueFullError(UbgError):
    """A bounded queue is full (UBG_EQUEUEFULL): try again later."""


class ConnectionFailedError(UbgError):
    """Resolving, connecting or the WebSocket upgrade failed (UBG_ERESOLVE, UBG_ECONNECT,
    UBG_EHANDSHAKE, UBG_ETIMEOUT, UBG_EIO, ...). Reported on CLOSED events; the client retries."""


class TLSError(ConnectionFailedError):
    """TLS failed (UBG_ETLS), for example an untrusted certificate or a host name mismatch."""


class ProxyError(ConnectionFailedError):
    """The proxy refused or broke the tunnel to the gateway (wrong credentials, a refused port)."""


class ProtocolError(UbgError):
    """The gateway sent something the library could not accept: malformed JSON, corrupt zlib
    data, a message too large, a WebSocket protocol violation."""


class GatewayRefusedError(UbgError):
    """The gateway refused the client for good (UBG_EREFUSED); `close_code` says why."""

    close_code: int | None = None

    def __init__(self, code: Result, message: str, close_code: int | None = None) -> None:
        super().__init__(code, message)
        if close_code is not None:
            self.close_code = close_code


class WrongVersionError(GatewayRefusedError):
    """4000: wrong or outdated gateway version."""

    close_code = 4000


class WrongKeyError(GatewayRefusedError):
    """4001: the key is wrong or expired."""

    close_code = 4001


class WrongIdentifyError(GatewayRefusedError):
    """4007: a wrong identify payload."""

    close_code = 4007


_BY_CODE: dict[Result, type[UbgError]] = {
    Result.EINVAL: InvalidArgumentError,
    Result.EJSON: InvalidJSONError,
    Result.ESTATE: InvalidStateError,
    Result.ECLOSED: ClientClosedError,
    Result.EHANDLE: ClientClosedError,
    Result.EQUEUEFULL: QueueFullError,
    Result.ETLS: TLSError,
    Result.ERESOLVE: ConnectionFailedError,
    Result.ECONNECT: ConnectionFailedError,
    Result.EHANDSHAKE: ConnectionFailedError,
    Result.ETIMEOUT: ConnectionFailedError,
    Result.EIO: ConnectionFailedError,
    Result.EPROXY: ProxyError,
    Result.EPROTOCOL: ProtocolError,
    Result.ETOOLARGE: ProtocolError,
    Result.EUTF8: ProtocolError,
    Result.EDECOMPRESS: ProtocolError,
    Result.EREFUSED: GatewayRefusedError,
}

_REFUSALS: dict[int, type[GatewayRefusedError]] = {
    4000: WrongVersionError,
    4001: WrongKeyError,
    4007: WrongIdentifyError,
}


def error_for(code: int, message: str) -> UbgError:
    """The exception for a result code and message."""
    try:
        result = Result(code)
    except ValueError:
        return UbgError(Result.EIO, f"unknown result code {code}: {message}")
    return _BY_CODE.get(result, UbgError)(result, message)


def refusal(close_code: int, message: str) -> GatewayRefusedError:
    """The exception for a fatal close code (4000, 4001, 4007)."""
    cls = _REFUSALS.get(close_code, GatewayRefusedError)
    return cls(Result.EREFUSED, message, close_code)
