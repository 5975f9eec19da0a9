"""Fixtures of background work: a real task worker process (`manage.py db_worker`) on the test database.

The worker is a separate process, so it sees only committed rows: tests that use it run with
`transactional_db` (requested by the fixture itself). Settings changed with pytest's `settings`
fixture do not reach it; pass what it needs through `env` (for example MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests are using now (the test database, not the configured one)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie has exited; its name may hold ") ", hence rsplit)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child Django process on the test database with the test settings."""
    return {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings",
            "PYTHONUNBUFFERED": "1", **extra}


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, interval: float = 0.1,
               what: str = "the condition") -> object:
    """Poll `predicate` until it returns something truthy; fail the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Process:
    """A child Django process on the test database (its output kept for the failure message)."""

    def __init__(self, tmp_path, name, args, **env):
        self.name = name
        self.log_path = tmp_path / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=child_env(**env), stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        code = self.process.wait(timeout=15)
        self._log.close()
        return code


class Worker:
    """One `manage.py db_worker` child process; its output goes to a log file kept with the test's tmp dir."""

    def __init__(self, *, env: dict[str, str], log: Path, queues: str = "*", worker_id: str = "test-worker"):
        self.log = log
        self._file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--queue-name", queues, "--interval", "0.1",
             "--no-startup-delay", "--no-reload", "--worker-id", worker_id],
            cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, *, kill: bool = False) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._file.close()


@pytest.fixture
def start_worker(transactional_db, tmp_path) -> Iterator[Callable[..., Worker]]:
    """start_worker(**env) starts a real task worker on the test database; all are stopped at teardown."""
    workers: list[Worker] = []

    def start(*, queues: str = "*", worker_id: str | None = None, **env: str) -> Worker:
        wid = worker_id or f"test-worker-{len(workers) + 1}"
        worker = Worker(env=child_env(**env), log=tmp_path / f"{wid}.log", queues=queues, worker_id=wid)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def task_worker(start_worker) -> Worker:
    """One running task worker on every queue."""
    return start_worker()
