"""What a new contributor sees: `swift test` on a fresh clone, before `make bootstrap` has made the
Python peers, stops at once with one line saying what to do instead of failing test after test.
The fresh clone is simulated by pointing UBG_PYTHON at a Python that does not exist."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built_tests() -> None:
    # A no-op after `make test-swift`; builds the test bundle when this file runs alone.
    subprocess.run(["swift", "build", "--build-tests"], cwd=ROOT, check=True, capture_output=True, timeout=1800)


@pytest.mark.parametrize(
    ("suite", "line"),
    [
        ("WebSocketConnectionIntegrationTests", "integration tests: no Python at"),
        ("GatewaySessionTests", "gateway tests: no Python at"),
    ],
)
def test_swift_test_without_bootstrap_stops_with_one_line(built_tests: None, suite: str, line: str) -> None:
    env = {**os.environ, "UBG_PYTHON": "/nonexistent/bin/python3"}
    result = subprocess.run(
        ["swift", "test", "--skip-build", "--filter", suite],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # swift test passes the tests' stderr on to its stdout
        text=True,
        timeout=600,
    )
    assert result.returncode != 0, result.stdout[-2000:]
    stops = [text for text in result.stdout.splitlines() if "make bootstrap" in text]
    assert len(stops) == 1, result.stdout[-2000:]
    assert stops[0].startswith(line), stops[0]
    # It stops before any test could fail on its own: no failure reports, only the one line.
    assert "failed" not in result.stdout.lower().replace("0 failed", ""), result.stdout[-2000:]
