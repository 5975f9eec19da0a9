"""Several nodes on one database: heartbeats, the scheduler's leader lease (one live scheduler
enqueues; a SIGKILLed leader is replaced once its lease runs out), worker heartbeats, and the full-sync
lock as a short lease that a sync killed mid-way does not hold for long."""

import os
import signal
import textwrap
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from registry_ui.mirror.models import SyncState
from registry_ui.mirror.sync import SyncBusy, sync_registry
from registry_ui.scheduler import heartbeat, leadership
from registry_ui.scheduler.heartbeat import worker_heartbeat
from registry_ui.scheduler.models import Heartbeat, Lease, NodeKind
from tests.fixtures_tasks import Process, wait_until

pytestmark = pytest.mark.django_db


def test_a_lease_has_one_holder_until_it_runs_out_or_is_released():
    assert leadership.hold("job", holder="a", seconds=30)
    assert not leadership.hold("job", holder="b", seconds=30)
    assert leadership.hold("job", holder="a", seconds=30)  # renewal
    Lease.objects.filter(name="job").update(expires_at=timezone.now() - timedelta(seconds=1))  # a dies
    assert leadership.hold("job", holder="b", seconds=30)
    assert not leadership.hold("job", holder="a", seconds=30)  # the old holder does not come back
    leadership.release("job", holder="b")
    assert leadership.current_holder("job") is None
    assert leadership.hold("job", holder="a", seconds=30)


def test_a_beat_is_one_row_per_process_and_silent_ones_are_forgotten():
    leadership.beat(node_id="worker:w1", kind=NodeKind.WORKER)
    leadership.beat(node_id="worker:w1", kind=NodeKind.WORKER)
    leadership.beat(node_id="worker:old", kind=NodeKind.WORKER)
    Heartbeat.objects.filter(node_id="worker:old").update(last_beat_at=timezone.now() - timedelta(days=2))
    assert Heartbeat.objects.count() == 2
    assert leadership.forget_silent(older_than=timedelta(days=1)) == 1
    assert list(Heartbeat.objects.values_list("node_id", flat=True)) == ["worker:w1"]


def test_the_operations_page_shows_each_scheduler_and_worker_with_its_heartbeat(client, ops_user):
    leadership.beat(node_id="scheduler:a", kind=NodeKind.SCHEDULER)
    leadership.beat(node_id="scheduler:b", kind=NodeKind.SCHEDULER)
    leadership.beat(node_id="worker:w1", kind=NodeKind.WORKER)
    leadership.hold(leadership.SCHEDULER_LEASE, holder="scheduler:b", seconds=30)
    client.force_login(ops_user)
    html = client.get(reverse("operations:dashboard")).content.decode()
    assert 'data-node="scheduler:a"' in html and 'data-node="worker:w1"' in html
    row_b = html.split('data-node="scheduler:b"')[1].split("</tr>")[0]
    row_a = html.split('data-node="scheduler:a"')[1].split("</tr>")[0]
    assert "leader" in row_b and "candidate" in row_a


def test_a_web_process_beats_after_a_response_at_most_once_an_interval_and_shows_on_the_operations_page(
        client, ops_user, settings):
    settings.WEB_HEARTBEAT_INTERVAL, settings.CONSOLE_NODE_ID = 30, "node-a"
    heartbeat.reset_web_beat()
    assert client.get("/healthz").status_code == 200
    assert not Heartbeat.objects.exists()  # the liveness probe never touches the database
    client.get(reverse("login"))
    [row] = Heartbeat.objects.all()
    assert (row.node_id, row.kind, row.pid) == (f"web:node-a:{os.getpid()}", NodeKind.WEB, os.getpid())
    first = row.last_beat_at
    client.force_login(ops_user)
    html = client.get(reverse("operations:dashboard")).content.decode()
    assert Heartbeat.objects.get().last_beat_at == first  # within the interval: no second write
    web_row = html.split(f'data-node="web:node-a:{os.getpid()}"')[1].split("</tr>")[0]
    assert web_row.startswith("><td>web</td>") and f"pid {os.getpid()}" in web_row
    heartbeat.reset_web_beat()  # the interval has passed
    client.get(reverse("login"))
    assert Heartbeat.objects.get().last_beat_at > first


def _leader():
    lease = leadership.current_holder(leadership.SCHEDULER_LEASE)
    return lease.holder if lease else None


@pytest.mark.django_db(transaction=True)
def test_two_schedulers_one_leads_and_the_other_takes_over_when_the_leader_is_killed(tmp_path):
    args = ["manage.py", "scheduler", "--tick", "0.2", "--lease", "2", "-v", "2"]  # -v 2: says what it enqueues
    a = Process(tmp_path, "scheduler-a", args)
    b = Process(tmp_path, "scheduler-b", args)
    try:
        wait_until(lambda: Heartbeat.objects.filter(kind=NodeKind.SCHEDULER).count() == 2 and _leader(),
                   timeout=60, what="two scheduler candidates beating, one of them leading")
        first = _leader()
        by_pid = {p.process.pid: p for p in (a, b)}
        leader_proc = by_pid[Heartbeat.objects.get(node_id=first).pid]
        follower = b if leader_proc is a else a
        wait_until(lambda: "waiting (another scheduler leads)" in follower.output(), timeout=30,
                   what="the other candidate to wait")
        assert "leading" in leader_proc.output()
        wait_until(lambda: "enqueued workers.heartbeat" in leader_proc.output(), timeout=30,
                   what="the leader to enqueue the due jobs")
        assert "enqueued" not in follower.output()  # only the leader enqueues
        assert leader_proc.kill() == -signal.SIGKILL
        second = wait_until(lambda: (h := _leader()) and h != first and h, timeout=30,
                            what="the other scheduler to lead once the killed leader's lease ran out")
        assert Heartbeat.objects.get(node_id=second).pid == follower.process.pid
        assert follower.kill(signal.SIGTERM) == 0  # a clean stop releases the lease at once
        assert _leader() is None
    finally:
        a.kill()
        b.kill()


@pytest.mark.django_db(transaction=True)
def test_a_worker_beats_with_its_worker_id_when_it_runs_a_task(start_worker):
    start_worker(worker_id="node-7")
    worker_heartbeat.enqueue()
    beat = wait_until(lambda: Heartbeat.objects.filter(node_id="worker:node-7").first(), timeout=60,
                      what="the worker's heartbeat")
    assert beat.kind == NodeKind.WORKER and beat.pid


SLOW_SYNC = textwrap.dedent("""
    import time, django
    django.setup()
    from registry_ui.mirror.sync import sync_registry

    def stall(done, total):
        print("page done", flush=True)
        time.sleep(600)  # killed here, holding the lock, mid-way through the scan

    sync_registry(progress=stall)
""")


@pytest.mark.mlflow
@pytest.mark.django_db(transaction=True)
def test_a_sync_killed_mid_way_holds_the_lock_only_until_its_short_lease_runs_out(
        tmp_path, mlflow_server, mlflow_factory, use_mlflow_server):
    mlflow_factory.model()
    mlflow_factory.model()
    child = Process(tmp_path, "sync", ["-c", SLOW_SYNC], MLFLOW_TRACKING_URI=mlflow_server.url,
                    REGISTRY_SYNC_PAGE_SIZE="1", REGISTRY_SYNC_LOCK_SECONDS="3")
    try:
        wait_until(lambda: "page done" in child.output(), timeout=60, what="the child sync's first page")
        assert SyncState.objects.get(pk=1).lock_owner  # it holds the lock mid-way
        assert child.kill() == -signal.SIGKILL
    finally:
        child.kill()
    assert SyncState.objects.get(pk=1).lock_owner  # the dead sync's lease is still there

    def next_sync_runs():
        try:
            return sync_registry()
        except SyncBusy:
            return None

    report = wait_until(next_sync_runs, timeout=30, interval=0.5,
                        what="the next sync to take the lock once the killed one's lease ran out")
    assert report.models_seen >= 2 and SyncState.objects.get(pk=1).lock_owner == ""
