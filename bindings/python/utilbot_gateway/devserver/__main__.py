"""`python3 -m utilbot_gateway.devserver`: run the dev gateway (see the package docstring)."""

import sys

from .cli import main

sys.exit(main())
