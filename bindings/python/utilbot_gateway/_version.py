"""The package's version: that of the C library it wraps (Sources/UtilbotGateway/Version.swift),
checked by tests/test_prototypes.py."""

__version__ = "0.1.0"
