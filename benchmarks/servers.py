"""Child processes on loopback: a real `mlflow server` and a real WSGI server, for the benchmark and
the test suite's MLflow fixtures (tests/conftest.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChildServer:
    """A server process in its own session (so stop() ends it and its workers), healthy when `probe` answers."""

    def __init__(self, name: str, args: list[str], *, url: str, probe: str, env: dict, log: Path):
        self.name, self.args, self.url, self.probe, self.env, self.log = name, args, url, probe, env, log
        self.process: subprocess.Popen | None = None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + self.probe, timeout=2) as r:  # noqa: S310 - loopback URL we built
                return r.status < 500
        except OSError:
            return False

    def start(self, timeout: float = 120) -> ChildServer:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log}")
            if self.healthy():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def kill(self) -> None:
        """End the server abruptly (tests of a server dying mid-operation)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.process = None

    def __enter__(self) -> ChildServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def mlflow_server(backend_uri: str, artifacts: Path, workdir: Path, *, workers: int = 1) -> ChildServer:
    port = free_port()
    args = [_bin("mlflow"), "server", "--backend-store-uri", backend_uri,
            "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers)]
    # MLflow 3's job runner (GenAI jobs; about eight processes of ~230 MB) serves nothing a registry
    # uses: it would only take memory and CPU from what is measured.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return ChildServer("mlflow server", args, url=f"http://127.0.0.1:{port}", probe="/health",
                       env=env, log=workdir / "mlflow-server.log")


def wsgi_server(env: dict, workdir: Path, *, threads: int = 4, workers: int = 1) -> ChildServer:
    """The console under gunicorn (one worker by default, a few threads), the way it is deployed."""
    port = free_port()
    args = [_bin("gunicorn"), "registry_ui.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), "--timeout", "120", "--graceful-timeout", "3",
            "--log-level", "warning"]
    return ChildServer("gunicorn", args, url=f"http://127.0.0.1:{port}", probe="/accounts/login/",
                       env=env, log=workdir / "gunicorn.log")
