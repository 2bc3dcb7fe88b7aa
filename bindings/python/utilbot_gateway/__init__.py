"""Python bindings for the Utilbot Gateway client library (libutilbot_gateway, through ctypes).

    from utilbot_gateway import Client

    with Client("my-key") as client:
        @client.on("GLOBAL_GUILD_COUNT")
        def count(event):
            print(event.data["guilds"])
        client.run_forever()

`AsyncClient` is the asyncio face of the same client. The dev gateway, a local
Utilbot-compatible gateway server for tests and offline bot development, is the subpackage
``utilbot_gateway.devserver`` (``python3 -m utilbot_gateway.devserver --help``).
"""

from ._version import __version__
from .aio import AsyncClient
from .client import DEFAULT_URL, Client
from .errors import (
    ClientClosedError,
    ConnectionFailedError,
    GatewayRefusedError,
    InvalidArgumentError,
    InvalidJSONError,
    InvalidStateError,
    ProtocolError,
    ProxyError,
    QueueFullError,
    TLSError,
    UbgError,
    WrongIdentifyError,
    WrongKeyError,
    WrongVersionError,
)
from .events import Event, EventType, LogLevel, State, Stats


def version() -> str:
    """The version of the loaded C library."""
    from . import _ffi

    return _ffi.lib().ubg_version().decode()


__all__ = [
    "__version__",
    "AsyncClient",
    "Client",
    "ClientClosedError",
    "ConnectionFailedError",
    "DEFAULT_URL",
    "Event",
    "EventType",
    "GatewayRefusedError",
    "InvalidArgumentError",
    "InvalidJSONError",
    "InvalidStateError",
    "LogLevel",
    "ProtocolError",
    "ProxyError",
    "QueueFullError",
    "State",
    "Stats",
    "TLSError",
    "UbgError",
    "WrongIdentifyError",
    "WrongKeyError",
    "WrongVersionError",
    "version",
]
