"""`manage.py demo` runs the web server, a task worker and the scheduler as one process tree: all of them
stop on Ctrl-C (SIGINT) and on SIGTERM, a dead child stops the rest, and nothing outlives a killed demo."""

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from django_tasks import TaskResultStatus

from benchmarks.servers import free_port
from tests.fixtures_tasks import ROOT, child_env, process_alive, wait_until
from tests.tasks_for_tests import add

pytestmark = pytest.mark.django_db(transaction=True)


class Demo:
    def __init__(self, tmp_path):
        self.port = free_port()
        self.log = tmp_path / "demo.log"
        self._file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--serve-only", "--addrport", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env=child_env(REGISTRY_SYNC_INTERVAL="3600"), stdout=self._file, stderr=subprocess.STDOUT,
            start_new_session=True)

    def children(self) -> dict[str, int]:
        found = dict(re.findall(r"^\s+(web|worker|scheduler)\s+pid (\d+)", self.log.read_text(), re.M))
        return {k: int(v) for k, v in found.items()} if len(found) == 3 else {}

    def serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/accounts/login/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def close(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._file.close()


@pytest.fixture
def demo(tmp_path):
    started = Demo(tmp_path)
    yield started
    started.close()


def _running(demo) -> dict[str, int]:
    pids = wait_until(demo.children, timeout=60, what="the demo to start its three processes")
    wait_until(demo.serving, timeout=60, what="the demo's web server to answer")
    assert all(process_alive(pid) for pid in pids.values())
    return pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_web_worker_and_scheduler_start_together_and_all_stop_on_a_signal(demo, sig):
    pids = _running(demo)
    result = add.enqueue(2, 3)  # the demo's worker runs tasks
    wait_until(lambda: (result.refresh(), result.status == TaskResultStatus.SUCCESSFUL)[1], timeout=60,
               what="the demo's worker to run a task")

    os.kill(demo.process.pid, sig)

    assert demo.process.wait(timeout=30) == 0, demo.log.read_text()
    assert not [name for name, pid in pids.items() if process_alive(pid)]


def test_a_child_that_dies_stops_the_demo(demo):
    pids = _running(demo)
    os.kill(pids["worker"], signal.SIGKILL)
    assert demo.process.wait(timeout=30) != 0
    assert "worker exited" in demo.log.read_text()
    assert not [name for name, pid in pids.items() if process_alive(pid)]


def test_a_killed_demo_leaves_no_orphan(demo):
    pids = _running(demo)
    demo.process.kill()  # SIGKILL: no handler runs; the kernel tells the children
    demo.process.wait()
    wait_until(lambda: not any(process_alive(pid) for pid in pids.values()), timeout=30,
               what="the children of a killed demo to exit")
