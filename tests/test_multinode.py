"""The production shape on one machine: two gunicorn nodes, two RQ workers and two scheduler
candidates on one PostgreSQL and one Redis, a real `mlflow server` behind the counting proxy
(tests/faultproxy.py), and a client that alternates between the nodes.

One stack for the whole module, so its parts run in one test, in order: sessions and lockouts are
shared; sixteen deploys of one request across both nodes write MLflow once; both nodes write audit
events at once for AUDIT_SECONDS and the chain stays whole; a checkpoint signed on node A verifies
on node B; one scheduled sync per interval, and the leader SIGKILLed is replaced within two
intervals; a worker SIGKILLed in the middle of a sync shard has the shard finished by the other,
nothing written twice; a worker SIGKILLed in a validation, once its first result tag reached MLflow,
has the validation finished by the other from the stored result: each tag written once, one
`validation.finished`, the model not run again.

Redis: its own database (MULTINODE_REDIS_URL, default db 12), emptied before and after: RQ's queue
name is the task queue's ("default") and its key prefix is fixed, so a database of its own is what
keeps two runs apart. PostgreSQL only (CI's PostgreSQL suite selects the `multinode` mark).
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import pytest
import requests
from django.db import connection
from rq.job import Job

from benchmarks.servers import free_port
from governance.audit.models import AuditEvent
from governance.tokens.services import api_token_create
from governance.validation.models import ValidationRun, ValidationStatus
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import ModelVersion, RegisteredModel, ShardState, SyncRun, SyncRunState, SyncShard
from registry_ui.scheduler import leadership
from registry_ui.scheduler.models import Heartbeat
from tests.conftest import TEST_PASSWORD, make_user
from tests.fixtures_tasks import Process, wait_until
from tests.test_deploy_faults import ALIAS_WRITE, FaultProxy, approved
from tests.validation_models import log_validation_models

pytestmark = [pytest.mark.multinode, pytest.mark.mlflow, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("MULTINODE_REDIS_URL", "redis://127.0.0.1:6379/12")
SYNC_INTERVAL = 6  # seconds between two scheduled full syncs
LEASE = 3  # the scheduler lease; a killed leader is replaced after it
LOCK_SECONDS = 20  # the sync lock's and a shard claim's lease
# Twenty seconds of both nodes writing at once gives each node a few hundred events interleaved with
# the other's, enough to show a fork or a gap if there were one; a minute would add CI time, not evidence.
AUDIT_SECONDS = 20


class Node:
    def __init__(self, tmp_path, name: str, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Process(tmp_path, name, ["-m", "gunicorn", "registry_ui.wsgi", "--bind", f"127.0.0.1:{self.port}",
                                             "--workers", "2", "--threads", "4", "--timeout", "120",
                                             "--graceful-timeout", "10"], **env)

    def up(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False


def login(session: requests.Session, node: Node, username: str, password: str = TEST_PASSWORD):
    session.get(node.url + "/accounts/login/", timeout=30)
    return session.post(node.url + "/accounts/login/", timeout=30, allow_redirects=False,
                        data={"username": username, "password": password,
                              "csrfmiddlewaretoken": session.cookies.get("csrftoken", "")})


def kill_worker(worker: Process) -> int:
    """SIGKILL an RQ worker as a lost machine or the OOM killer would: RQ runs each job in a work horse
    in a session of its own (os.setsid), so the horse's group goes first, then the worker's (a horse left
    behind would go on using the test database)."""
    pid = worker.process.pid
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except FileNotFoundError:  # already gone
        children = []
    for child in children:
        try:
            os.killpg(child, signal.SIGKILL)
        except ProcessLookupError:  # not a group leader (a gunicorn worker): its parent's group ends it
            pass
    return worker.kill()


def phase(what: str, started: float) -> None:
    print(f"[multinode] {time.monotonic() - started:6.1f} s  {what}", flush=True)  # where the time goes (-s)


@pytest.fixture
def redis_db():
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    yield r
    r.flushdb()


def test_two_nodes_two_workers_two_schedulers(tmp_path, mlflow_server, promo, redis_db):
    if connection.vendor != "postgresql":
        pytest.fail("the multi-node test needs PostgreSQL (run it in the PostgreSQL suite)")
    proxy = FaultProxy(mlflow_server.url)
    models = len(promo.factory.client.search_registered_models(max_results=1000))
    common = {"DJANGO_SECRET_KEY": "multinode-test-key-" + "x" * 40, "CONSOLE_NODES": "2", "TASKS_BACKEND": "rq",
              "REDIS_URL": REDIS_URL, "MLFLOW_TRACKING_URI": proxy.url, "AUDIT_SIGNING_KEY": "multinode-signing",
              "AUDIT_CHECKPOINT_DIR": str(tmp_path / "shared-checkpoints"), "WORKER_BEAT_SECONDS": "0.5",
              "WORKER_LOST_SECONDS": "3", "REGISTRY_SYNC_INTERVAL": str(SYNC_INTERVAL),
              "REGISTRY_SYNC_SHARD_SIZE": str(max(1, models // 3)), "REGISTRY_SYNC_LOCK_SECONDS": str(LOCK_SECONDS)}
    env = {n: {**common, "MGC_VAR_DIR": str(tmp_path / f"var-{n}")} for n in "ab"}  # nothing shared on disk
    procs: list[Process] = []
    try:
        a, b = Node(tmp_path, "node-a", env["a"]), Node(tmp_path, "node-b", env["b"])
        procs += [a.proc, b.proc]
        workers = {f"mn-w{i}": Process(tmp_path, f"mn-w{i}", ["manage.py", "rqworker", "--job-class",
                                                              "django_tasks_rq.Job", "--name", f"mn-w{i}",
                                                              "default"], **env["ab"[i % 2]])
                   for i in (1, 2)}
        schedulers = [Process(tmp_path, f"scheduler-{n}", ["manage.py", "scheduler", "--tick", "0.5", "--lease",
                                                           str(LEASE), "-v", "2"], **env[n]) for n in "ab"]
        procs += [*workers.values(), *schedulers]
        started = time.monotonic()
        wait_until(lambda: a.up() and b.up(), timeout=120, what="both web nodes to answer")
        phase("stack up", started)
        nodes = [a, b]

        # -- a session made on node A is good on node B ----------------------------------------------
        make_user("mn-reader", "auditor")
        s = requests.Session()
        assert login(s, a, "mn-reader").status_code == 302
        assert s.get(b.url + "/registry/", timeout=30, allow_redirects=False).status_code == 200

        # -- five failed logins spread over both nodes lock the account everywhere -------------------
        make_user("mn-victim", "auditor")
        codes = [login(requests.Session(), nodes[i % 2], "mn-victim", "wrong").status_code for i in range(5)]
        assert codes == [200, 200, 200, 200, 429]  # the fifth failure, on node A, counts those on B too
        for node in nodes:
            locked = login(requests.Session(), node, "mn-victim")  # the right password, refused on both nodes
            assert locked.status_code == 429 and "locked" in locked.text.lower()

        phase("sessions and lockout", started)

        # -- sixteen deploys of one approved request, split across both nodes ------------------------
        req = approved(promo, target_alias="champion")
        _, secret = api_token_create(actor=make_user("mn-ops", "ops"), name="multinode", scope="deploy")
        proxy.clear()
        barrier, codes = threading.Barrier(16), [None] * 16

        def deploy(i):
            barrier.wait(30)
            codes[i] = requests.post(f"{nodes[i % 2].url}/api/v1/requests/{req.pk}/deploy/", timeout=120,
                                     headers={"Authorization": f"Token {secret}"}).status_code

        threads = [threading.Thread(target=deploy, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(150)
        assert codes.count(200) == 1 and codes.count(409) == 15, codes
        assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == 1
        assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.succeeded").count() == 1
        assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.started").count() == 1

        phase("16 deploys", started)

        # The model the last phase validates is logged while the audit phase below runs for its fixed
        # time (straight to MLflow, not through the proxy), so it adds no wall-clock time of its own.
        validation_models: dict = {}

        def log_model():
            try:
                validation_models["logged"] = log_validation_models(mlflow_server.url,
                                                                    promo.factory.unique("mn-val"), ("good",))
            except Exception as exc:  # re-raised in the test's thread
                validation_models["error"] = exc

        logger = threading.Thread(target=log_model)
        logger.start()

        # -- both nodes write audit events at once (sign-ins), while the scheduled syncs run ----------
        users = [make_user(f"mn-u{i}", "auditor").username for i in range(4)]
        before = AuditEvent.objects.count()
        stop = time.monotonic() + AUDIT_SECONDS
        failures: list[str] = []

        def sign_in_repeatedly(i):
            while time.monotonic() < stop:
                response = login(requests.Session(), nodes[i % 2], users[i])
                if response.status_code != 302:
                    failures.append(f"{users[i]}: {response.status_code}")

        threads = [threading.Thread(target=sign_in_repeatedly, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(AUDIT_SECONDS + 60)
        assert failures == []
        seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no seq twice
        assert AuditEvent.objects.filter(action="user.login").count() > 20 and len(seqs) > before
        signed = Process(tmp_path, "checkpoint-a", ["manage.py", "verify_audit", "--checkpoint"], **env["a"])
        assert signed.process.wait(120) == 0, signed.output()
        assert "signed checkpoint written" in signed.output()
        checked = Process(tmp_path, "verify-b", ["manage.py", "verify_audit"], **env["b"])
        assert checked.process.wait(120) == 0, checked.output()
        assert re.search(r"checkpoint", checked.output(), re.I), checked.output()

        phase("audit chain and checkpoint", started)

        # -- one sync per interval from the one leader; the leader killed, the other leads ----------
        elapsed = time.monotonic() - started
        enqueued = [p.output().count("enqueued mirror.sync") for p in schedulers]
        assert min(enqueued) == 0 and 1 <= max(enqueued) <= elapsed / SYNC_INTERVAL + 1, (enqueued, elapsed)
        first = leadership.current_holder(leadership.SCHEDULER_LEASE).holder
        leader = next(p for p in schedulers if p.process.pid == Heartbeat.objects.get(node_id=first).pid)
        follower = next(p for p in schedulers if p is not leader)
        assert leader.kill() == -signal.SIGKILL
        killed_at = time.monotonic()
        wait_until(lambda: (h := leadership.current_holder(leadership.SCHEDULER_LEASE)) and h.holder != first,
                   timeout=2 * SYNC_INTERVAL, interval=0.2, what="the other scheduler to lead within two intervals")
        assert time.monotonic() - killed_at <= 2 * SYNC_INTERVAL
        wait_until(lambda: "enqueued mirror.sync" in follower.output(), timeout=2 * SYNC_INTERVAL + 10,
                   what="the new leader to enqueue the sync")

        phase("scheduler leader killed and replaced", started)

        # -- a worker SIGKILLed in the middle of a sync shard: the other finishes it, once ------------
        wait_until(lambda: not SyncRun.objects.filter(state__in=[SyncRunState.RUNNING,
                                                                  SyncRunState.FINISHING]).exists(),
                   timeout=60, what="the running sync to end")
        promo.factory.client.set_registered_model_alias(promo.name, "challenger", "3")  # drift to report once
        # One shard's read of its versions is held; its worker is killed meanwhile.
        proxy.rule("model-versions/search", "hold", seconds=40, times=1, methods=["GET"])
        wait_until(lambda: proxy.log()["held"] >= 1, timeout=3 * SYNC_INTERVAL + 30, interval=0.2,
                   what="a shard of the next scheduled sync to be held in its MLflow read")
        time.sleep(3)  # a shard beside it (a bigger registry, two workers) ends meanwhile; the held one cannot
        held = SyncShard.objects.filter(state=ShardState.RUNNING, run__state=SyncRunState.RUNNING).order_by(
            "claimed_until").first()
        rq_name = Job.fetch(held.claimed_by, connection=redis_db).worker_name
        assert [n for n, w in workers.items() if f"({held.claimed_by})" in (out := w.output())
                and f"Job OK ({held.claimed_by})" not in out] == [rq_name]  # that worker runs it now
        assert kill_worker(workers[rq_name]) == -signal.SIGKILL
        workers["mn-w3"] = Process(tmp_path, "mn-w3", ["manage.py", "rqworker", "--job-class", "django_tasks_rq.Job",
                                                        "--name", "mn-w3", "default"], **env["a"])
        procs.append(workers["mn-w3"])
        run = wait_until(lambda: (r := SyncRun.objects.get(pk=held.run_id)).state == SyncRunState.DONE and r,
                         timeout=60, interval=0.5, what="the sync run to finish on the other workers")
        again = SyncShard.objects.get(pk=held.pk)
        assert again.state == ShardState.DONE and again.attempts == 2 and again.claimed_by == held.claimed_by
        assert set(run.shards.values_list("state", flat=True)) == {ShardState.DONE}
        assert "requeued task" in follower.output()
        drift = AuditEvent.objects.filter(model_name=promo.name, action="registry.drift")
        assert drift.filter(comment__contains="@challenger").count() == 1
        phase("worker killed mid-shard, shard finished by another", started)

        # -- a worker SIGKILLed in a validation, after its first tag reached MLflow: finished once ----
        # The kill that matters for "nothing written twice": the run's result and tags are stored and one
        # tag has landed in MLflow, but the run is not marked finished. The requeued task must finish it
        # from the stored result, write only the tags MLflow lacks, and record one validation.finished.
        logger.join(180)
        if "error" in validation_models:
            raise validation_models["error"]
        logged = validation_models["logged"]
        version = logged.versions["good"]
        wait_until(lambda: ModelVersion.objects.filter(model__name=logged.name, version=version).exists(),
                   timeout=3 * SYNC_INTERVAL + 30, what="the scheduled sync to mirror the validated model")
        ModelPolicy.objects.create(model=RegisteredModel.objects.get(name=logged.name), validation={
            "dataset": logged.dataset_uri, "target": "label", "thresholds": {"roc_auc": {"min": 0.55}},
            "latency": {"batch_size": 8, "warmup": 1, "repeats": 3}})
        _, request_secret = api_token_create(actor=make_user("mn-scientist", "data_scientist"), name="mn-val",
                                             scope="request")
        proxy.clear()
        # The first tag write is forwarded to MLflow at once and its answer held: the worker waits for it.
        proxy.rule("model-versions/set-tag", "delay", seconds=60, times=1, methods=["POST"],
                   body={"name": logged.name})
        created = requests.post(f"{b.url}/api/v1/requests/", timeout=60, headers={
            "Authorization": f"Token {request_secret}"}, json={"model": logged.name, "version": version,
                                                              "target_alias": "champion", "justification": "retrained"})
        assert created.status_code == 201, created.text
        run = ValidationRun.objects.get(request_id=created.json()["id"])  # queued on RQ by node B's commit
        phase("validation requested", started)
        wait_until(lambda: proxy.log()["held"] >= 1, timeout=300, interval=0.1,
                   what=f"validation #{run.pk} to write its first tag\n{proxy.log()}")
        run.refresh_from_db()  # as the attempt about to be killed left it
        rq_name = Job.fetch(run.claimed_by, connection=redis_db).worker_name
        assert kill_worker(workers[rq_name]) == -signal.SIGKILL
        killed_at = time.time()
        assert run.status == ValidationStatus.RUNNING and run.result and run.tags_written and run.claimed_by
        first_tag = proxy.writes("model-versions/set-tag", name=logged.name)
        # Killed inside the client's timeout on that write (MLFLOW_WEB_TIMEOUT, 5 s): it sent no retry of it.
        assert len(first_tag) == 1 and killed_at - first_tag[0]["forwarded_at"] < 5, (first_tag, killed_at)
        phase("validation killed in its tag write", started)
        # One worker is left, busy with the scheduled syncs queued before the requeued task: a new one
        # (it starts while the reaper waits out WORKER_LOST_SECONDS) keeps the wait short.
        workers["mn-w4"] = Process(tmp_path, "mn-w4", ["manage.py", "rqworker", "--job-class", "django_tasks_rq.Job",
                                                        "--name", "mn-w4", "default"], **env["b"])
        procs.append(workers["mn-w4"])
        done = wait_until(lambda: (r := ValidationRun.objects.get(pk=run.pk)).finished_at and r, timeout=60,
                          interval=0.3, what=f"validation #{run.pk} to be finished by another worker")
        assert f"requeued task {run.claimed_by}" in follower.output()
        finishers = wait_until(lambda: [n for n, w in workers.items() if f"Job OK ({run.claimed_by})" in w.output()],
                               timeout=30, what="the worker that finished the validation to log it")  # just after
        assert len(finishers) == 1 and finishers != [rq_name], finishers
        # The same task took its own claim back and finished from the stored result: the model did not run again.
        assert done.claimed_by == run.claimed_by and done.result == run.result
        assert done.status == (ValidationStatus.PASSED if run.result["status"] == "passed"
                               else ValidationStatus.FAILED), done.reason
        written = [w["body"]["key"] for w in proxy.writes("model-versions/set-tag", name=logged.name)]
        assert sorted(written) == sorted(run.tags_written) and done.tags_written == run.tags_written, written
        assert first_tag[0]["body"]["key"] in written
        tags = promo.factory.client.get_model_version(logged.name, str(version)).tags
        assert all(tags.get(k) == str(v) for k, v in run.tags_written.items()), tags
        assert tags["validation_status"] == done.status
        assert AuditEvent.objects.filter(action="validation.finished", after__run=run.pk).count() == 1
        phase(f"worker killed in a validation's tag write, finished by another from the stored result "
              f"(the model's run: {run.result.get('wall_s')} s, {run.result.get('timings')})", started)
    finally:
        for p in procs:
            if p.process.poll() is None:
                kill_worker(p)
        proxy.stop()

