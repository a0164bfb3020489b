"""Start a local service as a child process, wait until it accepts connections, stop it cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, host: str = "127.0.0.1", timeout: float = 30.0,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode} before listening")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class ServiceProcess:
    """A child process in its own process group, so stopping it also stops anything it started."""

    name: str
    argv: Sequence[str]
    port: int
    env: dict[str, str] | None = None
    log_path: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, *, timeout: float = 30.0) -> ServiceProcess:
        stdout = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            list(self.argv),
            env={**os.environ, **(self.env or {})},
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.port:  # a service with no port (a worker) is only checked to be alive
            wait_for_port(self.port, timeout=timeout, process=self.process)
        elif self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode} at start")
        return self

    def stop(self, *, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
