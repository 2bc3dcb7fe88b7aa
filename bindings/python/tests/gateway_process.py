"""The dev gateway as a blocking subprocess for the binding's tests (the devserver's own tests
use an asyncio helper in conftest.py)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

PYTHON_ROOT = Path(__file__).resolve().parents[1]


class Gateway:
    def __init__(self, *arguments: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(PYTHON_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "utilbot_gateway.devserver", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.info = json.loads(self._line(30))

    def url(self, query: str = "v=1") -> str:
        return f"{self.info['url']}?{query}"

    @property
    def ca(self) -> str:
        return self.info["ca"]

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        self.process.stdin.flush()
        return json.loads(self._line(10))

    def stats(self) -> dict[str, Any]:
        return self.command({"cmd": "stats"})["stats"]

    def _line(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, "the dev gateway did not answer"
        line = self.process.stdout.readline()
        assert line, "the dev gateway exited"
        return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(10)
