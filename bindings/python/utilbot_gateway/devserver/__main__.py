"""`python3 -m utilbot_gateway.devserver`: run the dev gateway (see the package docstring).

The dev gateway needs the package's `devserver` extra (websockets, cryptography); the client
package does not. Without it this exits with status 2 and one line on stderr naming the module
that cannot be imported, not a traceback.
"""

import importlib
import sys

EXTRA_MODULES = ("websockets", "cryptography")
EXTRA_HINT = "the dev gateway needs its extra: pip install 'utilbot-gateway[devserver]'"


def _missing_extra() -> "str | None":
    """Why the extra cannot be used ("cannot import websockets: ..."), or None when it can."""
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as error:
            return f"cannot import {name}: {' '.join(str(error).split()) or type(error).__name__}"
    return None


def _run() -> int:
    problem = _missing_extra()
    if problem is None:
        try:
            from .cli import main
        except ImportError as error:
            # A submodule of the extra that the check above does not import (else: a real bug).
            if (error.name or "").partition(".")[0] not in EXTRA_MODULES:
                raise
            problem = f"cannot import {error.name}: {' '.join(str(error).split())}"
        else:
            return main()
    print(f"{EXTRA_HINT} ({problem})", file=sys.stderr)
    return 2


sys.exit(_run())
