"""The wheel (`make wheel`) installed into a fresh virtual environment, with nothing else: the
examples run against the dev gateway with no Swift toolchain and no repository on any path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway_process import Gateway

from utilbot_gateway import __version__

ROOT = Path(__file__).resolve().parents[3]


def built_wheel() -> Path:
    wheels = sorted((ROOT / "dist").glob("utilbot_gateway-*.whl"))
    assert wheels, "no wheel in dist/: run `make wheel` first"
    return wheels[-1]


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("wheel") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-deps", "--disable-pip-version-check", "-q", str(built_wheel())],
        check=True,
        timeout=120,
    )
    return python


def isolated_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "UBG_LIBRARY", "LD_PRELOAD")}
    # No Swift toolchain on any search path: only the system's directories.
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


def test_the_wheel_bundles_a_library_that_needs_no_swift_runtime(clean_venv):
    code = "import utilbot_gateway; print(utilbot_gateway.__file__); print(); print(utilbot_gateway.version())"
    result = subprocess.run([str(clean_venv), "-c", code], env=isolated_env(), cwd="/", capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    location, _, version = result.stdout.decode().splitlines()
    assert location.startswith(str(clean_venv.parent.parent)), location  # imported from the venv, not the repository
    assert version == __version__
    library = Path(location).parent / "libutilbot_gateway.so"
    ldd = subprocess.run(["ldd", str(library)], capture_output=True, timeout=30).stdout.decode()
    assert "libswift" not in ldd and "not found" not in ldd, ldd


@pytest.mark.parametrize("example", ["bot.py", "async_bot.py"])
def test_the_examples_run_from_the_clean_venv(clean_venv, example):
    server = Gateway("--tls", "--key", "wheel-key")
    try:
        result = subprocess.run(
            [str(clean_venv), str(ROOT / "examples" / "python" / example), server.url(), "wheel-key", server.ca],
            env=isolated_env(),
            cwd="/",
            capture_output=True,
            timeout=60,
        )
    finally:
        server.stop()
    output = result.stdout.decode()
    assert result.returncode == 0, output + result.stderr.decode()
    assert "ready: identified with the gateway" in output
    assert "global: " in output and "closed with 1000" in output
