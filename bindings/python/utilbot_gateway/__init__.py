"""Python bindings for the Utilbot Gateway client library (ctypes over libutilbot_gateway).

The dev gateway, a local Utilbot-compatible gateway server for tests and offline bot
development, lives in the subpackage ``utilbot_gateway.devserver``
(run it with ``python3 -m utilbot_gateway.devserver --help``).
"""
