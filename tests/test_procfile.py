"""`honcho start` on the repository's Procfile serves the console: gunicorn answers /healthz, /readyz and a
signed-in page, the scheduler leads and enqueues, the worker runs what it enqueued, and one SIGTERM to
honcho stops every process it started (gunicorn's workers included) without a SIGKILL.

The processes run on the test database with the test settings (tests.fixtures_tasks.child_env), as the
other process tests do; a user and a mirrored model are the only rows the pages need. No MLflow runs
here: pages are served from the mirror, and readiness is told not to require MLflow.
"""

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from benchmarks.servers import free_port
from registry_ui.scheduler import leadership
from registry_ui.scheduler.heartbeat import HEARTBEAT_JOB
from registry_ui.scheduler.jobs import registered_jobs
from registry_ui.scheduler.models import Heartbeat, JobOutcome, Lease, NodeKind, ScheduledJob
from tests.conftest import TEST_PASSWORD
from tests.fixtures_tasks import ROOT, child_env, process_alive, wait_until
from tests.test_demo import sign_in

# Its own processes on the test database: the PostgreSQL suite would run the same Procfile again.
pytestmark = [pytest.mark.own_database, pytest.mark.django_db(transaction=True)]

BIN = Path(sys.executable).parent  # the venv's: honcho, and the `gunicorn` and `python` the Procfile names


def _tree(root: int) -> dict[int, str]:
    """pid -> command line of every live descendant of `root`."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = {}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            if process_alive(pid):
                found[pid] = _cmdline(pid)
                todo.append(pid)
    return found


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


def _all_started(honcho: subprocess.Popen) -> dict[int, str]:
    """The tree once gunicorn's master and its 4 workers, the task worker and the scheduler all run (each
    under the `sh -c` honcho starts it with)."""
    tree = _tree(honcho.pid)
    programs = [c for c in tree.values() if not c.startswith("/bin/sh ")]
    web = [c for c in programs if "gunicorn registry_ui.wsgi" in c]
    ready = (len(web) == 5 and any("manage.py db_worker" in c for c in programs)
             and any("manage.py scheduler" in c for c in programs))
    return tree if ready else {}


def _every_other_job_ran_just_now() -> None:
    """The periodic jobs other than the workers' heartbeat are not due: their first runs would reach for
    MLflow, and a run still in flight at SIGTERM is finished before its worker exits, which can take
    longer than honcho waits before it sends SIGKILL."""
    now = timezone.now()
    for job in registered_jobs().values():
        if job.name != HEARTBEAT_JOB.name:
            ScheduledJob.objects.create(name=job.name, task_path=job.task.module_path,
                                        interval_seconds=job.interval(),
                                        next_run_at=now + timedelta(seconds=job.interval()))


@pytest.fixture
def console_rows(auditor, mirror):
    """What the pages and the stop need: a signed-in user's view of one mirrored model, and no periodic
    job due but the workers' heartbeat."""
    mirror.model("procfile-model")
    _every_other_job_ran_just_now()


@pytest.fixture
def honcho(console_rows, tmp_path):
    """`honcho start` in the checkout, on those rows and a free PORT; its whole tree killed if the test fails."""
    port = free_port()
    log = tmp_path / "honcho.log"
    env = child_env(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", PORT=str(port), HOSTNAME="procfile-test",
        # Nothing listens there: a closed port refuses at once. Readiness reports MLflow without requiring it.
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}", READY_REQUIRE_MLFLOW="false",
        # /readyz then requires a live worker and a leading scheduler.
        READY_MAX_WORKER_AGE="60", READY_MAX_SCHEDULER_AGE="60",
    )
    with log.open("wb") as out:
        process = subprocess.Popen([str(BIN / "honcho"), "start"], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.base_url, process.log = f"http://127.0.0.1:{port}", log
    yield process
    if process.poll() is None:
        for pid in _tree(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.kill()
        process.wait()


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def test_honcho_start_serves_runs_tasks_and_stops_everything_on_sigterm(honcho):
    base = honcho.base_url

    health = wait_until(lambda: (r := _get(f"{base}/healthz")) is not None and r.status_code == 200 and r,
                        timeout=60, what=f"gunicorn to answer /healthz ({honcho.log})")
    assert health.json() == {"status": "ok"}

    # The scheduler leads and enqueues the workers' heartbeat job; the worker runs it and beats.
    wait_until(lambda: ScheduledJob.objects.filter(name=HEARTBEAT_JOB.name, last_outcome=JobOutcome.SUCCEEDED)
               .exists(), timeout=60, what="the worker to run the job the scheduler enqueued")
    ready = _get(f"{base}/readyz")
    assert ready is not None and ready.status_code == 200, ready and ready.text
    checks = ready.json()["checks"]
    assert checks["workers"]["ok"] and checks["scheduler"]["ok"] and checks["scheduler"]["leader"], checks

    opener, _ = sign_in(base, "auditor", TEST_PASSWORD)
    with opener.open(f"{base}/registry/", timeout=10) as page:
        assert page.status == 200 and "procfile-model" in page.read().decode()

    processes = wait_until(lambda: _all_started(honcho), timeout=30, what="all the Procfile's processes")
    pids = set(processes)
    lease = leadership.current_holder(leadership.SCHEDULER_LEASE)
    assert Heartbeat.objects.get(node_id=lease.holder, kind=NodeKind.SCHEDULER).pid in pids
    assert Heartbeat.objects.get(node_id="worker:procfile-test-worker", kind=NodeKind.WORKER).pid in pids

    honcho.send_signal(signal.SIGTERM)
    honcho.wait(timeout=30)
    output = honcho.log.read_text(errors="replace")
    assert "SIGKILL" not in output, output[-3000:]
    # honcho's `sh -c` dies of the SIGTERM (rc=-15); honcho still reads each program's output to its end.
    assert all(f"{name}.1 stopped" in output for name in ("web", "worker", "scheduler")), output[-3000:]
    assert "Shutting down: Master" in output and "shutting down gracefully" in output, output[-3000:]
    wait_until(lambda: not [pid for pid in processes if process_alive(pid)], timeout=5,
               what=f"every process honcho started to exit: {processes}")
    assert not Lease.objects.get(name=leadership.SCHEDULER_LEASE).holder  # the leader let go as it stopped
