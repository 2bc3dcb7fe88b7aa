"""The wheel carries the native library, so it is a platform wheel ("py3-none-<platform>"): it
works with any Python 3, but only on the platform the library was built for."""

import re
from pathlib import Path

from setuptools import setup
from setuptools.dist import Distribution
from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
HEADER = HERE.parents[1] / "include" / "utilbot_gateway.h"


def write_version_from_the_header() -> None:
    """_version.py from UBG_VERSION_STRING of the C header, the one place the version is written
    (outside the repository, as from an sdist, the file as it is)."""
    if not HEADER.is_file():
        return
    found = re.search(r'#define UBG_VERSION_STRING "([^"]+)"', HEADER.read_text())
    if not found:
        raise SystemExit(f"setup.py: no UBG_VERSION_STRING in {HEADER}")
    (HERE / "utilbot_gateway" / "_version.py").write_text(
        '"""The package\'s version: that of the C library it wraps, whose header holds it\n'
        "(UBG_VERSION_STRING). setup.py writes this file from the header when it builds the package;\n"
        'tests/test_prototypes.py checks it against the header and the library."""\n\n'
        f'__version__ = "{found.group(1)}"\n'
    )


write_version_from_the_header()


class BinaryDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(distclass=BinaryDistribution, cmdclass={"bdist_wheel": PlatformWheel})
