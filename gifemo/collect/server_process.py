"""Run the labelling app in a child process on a free loopback port (tests, benchmarks, scripts).

A real uvicorn process, not an in-process test client: it can be killed with SIGKILL to check
that committed answers survive, and several clients can write to it at once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    """A running server: its process and base URL."""

    process: subprocess.Popen
    url: str
    log: Path

    def kill(self) -> None:
        """SIGKILL (no cleanup, no shutdown handlers) and reap."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(db: str | Path, log: str | Path, *, port: int | None = None,
                 timeout_s: float = 30.0) -> ServerProcess:
    """Start ``python -m gifemo.collect.cli serve`` on 127.0.0.1 and wait until it answers."""
    port = port or free_port()
    log = Path(log)
    with open(log, "ab") as fh:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from gifemo.collect.cli import main; sys.exit(main())",
             "serve", "--db", str(db), "--port", str(port), "--log-level", "warning"],
            stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}; log {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/api/me", timeout=1.0).status_code == 401:
                return ServerProcess(proc, url, log)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server did not answer on {url} within {timeout_s} s; log {log}:\n{log.read_text()[-2000:]}")
