"""The package's version: that of the C library it wraps, whose header holds it
(UBG_VERSION_STRING). setup.py writes this file from the header when it builds the package;
tests/test_prototypes.py checks it against the header and the library."""

__version__ = "0.1.0"
