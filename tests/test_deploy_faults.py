"""A deploy writes MLflow exactly once, whatever the network does: a fault-injecting proxy process
(tests/faultproxy.py) sits between the console and the real `mlflow server` and delays, drops,
fails or resets the write, or holds it until after the console gave up; it counts the writes
MLflow actually received. Deployers are also killed with SIGKILL before, during and after the write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from benchmarks.servers import free_port
from governance.audit.models import AuditEvent
from governance.errors import DeployFailed
from governance.workflow import services as workflow
from governance.workflow.models import Deployment, PromotionRequest
from registry_ui.mirror.sync import sync_model
from tests.conftest import make_user
from tests.fixtures_tasks import database_url

pytestmark = [pytest.mark.mlflow]

ROOT = Path(__file__).resolve().parent.parent
ALIAS_WRITE = "/registered-models/alias"
# The deploys here move @champion; the same step also points the rollback alias at the old holder, which
# is a second alias write the faults must not hit.
CHAMPION = {"alias": "champion"}
STAGE_WRITE = "/model-versions/transition-stage"
TAG_WRITE = "/model-versions/set-tag"
TIMEOUT = 1.5  # the console's MLflow timeout in these tests; faults hold answers well past it


class FaultProxy:
    def __init__(self, upstream: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faultproxy.py"), "--upstream", upstream,
                                         "--port", str(self.port)], start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.log()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("fault proxy did not start")

    def _call(self, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def rule(self, match: str, fault: str, **kw) -> None:
        self._call("/__faults__/rules", {"match": match, "fault": fault, **kw})

    def clear(self) -> None:
        self._call("/__faults__/clear", {})

    def log(self) -> dict:
        return self._call("/__faults__/log")

    def writes(self, *paths: str, **body) -> list[dict]:
        """The write requests MLflow received (forwarded by the proxy) to any of these paths, whose JSON body
        has the given values (`alias="champion"`; `key_prefix=` matches the start of a tag's key)."""
        prefix = body.pop("key_prefix", None)
        return [w for w in self.log()["writes"] if w["forwarded"] and any(p in w["path"] for p in paths)
                and all((w.get("body") or {}).get(k) == v for k, v in body.items())
                and (prefix is None or str((w.get("body") or {}).get("key", "")).startswith(prefix))]

    def wait(self, condition, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.log()):
            if time.monotonic() > deadline:
                raise AssertionError(f"proxy never reached the expected state: {self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(10)


@pytest.fixture(scope="module")
def fault_proxy(mlflow_server):
    proxy = FaultProxy(mlflow_server.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def proxy(fault_proxy, promo, settings):
    """The console talks to MLflow through the proxy with a short timeout (and the stock read retry)."""
    fault_proxy.clear()
    settings.MLFLOW_TRACKING_URI = fault_proxy.url
    settings.MLFLOW_WEB_TIMEOUT = TIMEOUT
    settings.MLFLOW_WEB_RETRIES = 1
    yield fault_proxy
    fault_proxy.clear()


def approved(promo, *, target_alias="", target_stage="") -> PromotionRequest:
    scientist = make_user("sci", "data_scientist")
    engineer = make_user("eng", "ml_engineer")
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias=target_alias, target_stage=target_stage,
                                            justification="better")
    return workflow.promotion_request_approve(request_id=req.pk, actor=engineer)


def actions(req) -> list[str]:
    return list(AuditEvent.objects.filter(request_id=req.pk).order_by("seq").values_list("action", flat=True))


def champion(promo) -> int:
    return int(promo.factory.client.get_registered_model(promo.name).aliases["champion"])


def stage_of(promo, version: int) -> str:
    return promo.factory.client.get_model_version(promo.name, str(version)).current_stage


def drift(promo) -> list:
    return list(AuditEvent.objects.filter(action="registry.drift", model_name=promo.name).values_list("comment",
                                                                                                   flat=True))


def run_at_once(fn, args_list):
    barrier = threading.Barrier(len(args_list))
    results = [None] * len(args_list)

    def worker(i, args):
        try:
            barrier.wait(60)
            results[i] = fn(*args)
        except BaseException as exc:  # collected and asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return results


# --------------------------------------------------------------------------------------------------
# Retries: one attempt at a time
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_retries_of_a_failed_deploy_write_mlflow_once(proxy, promo):
    req = approved(promo, target_alias="champion")
    first = make_user("ops-first", "ops")
    proxy.rule(ALIAS_WRITE, "reset", body=CHAMPION)  # the connection dies before MLflow sees the move
    with pytest.raises(DeployFailed, match="not applied"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=first)
    assert PromotionRequest.objects.get(pk=req.pk).state == "failed"
    assert proxy.writes(ALIAS_WRITE, alias="champion") == [] and champion(promo) == 1

    ops = [make_user(f"ops{i}", "ops") for i in range(16)]

    def retry(user):
        client = Client()
        client.force_login(user)
        return client.post(reverse("requests_api:request_deploy", args=[req.pk]), {"comment": "retry"},
                           content_type="application/json")

    responses = run_at_once(retry, [(u,) for u in ops])
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 15, [(r.status_code, r.content) for r in responses]
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.json()["state"] == "deployed"
    details = [r.json()["detail"] for r in responses if r.status_code == 409]
    assert all("in progress (started" in d or "deployed" in d for d in details), details
    assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == 1  # counted at the proxy: what MLflow received
    assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.succeeded").count() == 1
    assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.started").count() == 2
    assert champion(promo) == 2
    assert PromotionRequest.objects.get(pk=req.pk).state == "deployed"


@pytest.mark.django_db(transaction=True)
def test_a_second_click_while_a_deploy_holds_the_lease_is_told_who_and_since_when(proxy, promo):
    from governance.errors import Conflict

    req = approved(promo, target_alias="champion")
    first, second = make_user("ops-a", "ops"), make_user("ops-b", "ops")
    proxy.rule(ALIAS_WRITE, "delay", body=CHAMPION, seconds=TIMEOUT * 2)
    outcome = run_at_once_in_background(lambda: workflow.promotion_request_deploy(request_id=req.pk, actor=first))
    proxy.wait(lambda log: log["held"] >= 1)  # the first deploy is waiting on MLflow's answer
    with pytest.raises(Conflict, match=r"in progress \(started \d\d:\d\d by ops-a\)"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=second)
    assert outcome().state == "deployed"
    assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == 1


def run_at_once_in_background(fn):
    box = {}

    def worker():
        try:
            box["result"] = fn()
        except BaseException as exc:  # handed back to the test below
            box["result"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()

    def result():
        thread.join(120)
        if isinstance(box.get("result"), BaseException):
            raise box["result"]
        return box["result"]

    return result


# --------------------------------------------------------------------------------------------------
# No blind re-send: a write with no usable answer is read back
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["delay", "drop", "error"])
def test_a_write_applied_but_not_answered_is_one_write_and_the_console_agrees(proxy, promo, fault):
    req = approved(promo, target_alias="champion")
    ops = make_user("ops-x", "ops")
    proxy.rule(ALIAS_WRITE, fault, body=CHAMPION, seconds=TIMEOUT * 3)
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops)
    assert req.state == "deployed" and champion(promo) == 2
    assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == 1
    assert len(proxy.writes(TAG_WRITE, key_prefix="governance.deploy.alias.champion")) == 1
    dep = Deployment.objects.get(request=req)
    assert dep.state == "succeeded" and dep.after == {"alias": "champion", "version": 2}
    assert actions(req)[-2:] == ["deploy.started", "deploy.succeeded"]
    sync_model(promo.name, uri=promo.factory.uri)
    assert drift(promo) == []


@pytest.mark.django_db
def test_a_reset_write_is_not_applied_and_the_retry_sends_it_once(proxy, promo):
    req = approved(promo, target_alias="champion")
    ops = make_user("ops-x", "ops")
    proxy.rule(ALIAS_WRITE, "reset", body=CHAMPION)
    with pytest.raises(DeployFailed, match="not applied"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops)
    assert Deployment.objects.get(request=req).state == "failed" and proxy.writes(ALIAS_WRITE, alias="champion") == []
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops)
    assert req.state == "deployed" and champion(promo) == 2 and len(proxy.writes(ALIAS_WRITE, alias="champion")) == 1


# --------------------------------------------------------------------------------------------------
# A write that lands after the console gave up on it
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_write_landing_late_is_recorded_as_the_deploys_success_not_drift(proxy, promo):
    req = approved(promo, target_stage="Staging")
    ops = make_user("ops-x", "ops")
    proxy.rule(STAGE_WRITE, "hold", seconds=TIMEOUT * 3)  # reaches MLflow after the console read it back
    with pytest.raises(DeployFailed, match="not applied"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops)
    dep = Deployment.objects.get(request=req)
    assert dep.state == "failed" and PromotionRequest.objects.get(pk=req.pk).state == "failed"
    proxy.wait(lambda log: any(w["forwarded"] and STAGE_WRITE in w["path"] for w in log["writes"]))
    assert stage_of(promo, 2) == "Staging"

    sync_model(promo.name, uri=promo.factory.uri)
    assert drift(promo) == []
    dep.refresh_from_db()
    req.refresh_from_db()
    assert dep.state == "succeeded" and req.state == "deployed"
    landed_ms = promo.factory.client.get_model_version(promo.name, "2").last_updated_timestamp
    assert abs(dep.landed_at.timestamp() * 1000 - landed_ms) < 1  # MLflow's own time, not when we noticed
    assert req.deployed_at == dep.landed_at
    event = AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded")
    assert event.actor_username == "system:sync" and event.after["landed_late"] is True
    assert event.after["evidence"]["mark_seen"] == dep.marker
    assert len(proxy.writes(STAGE_WRITE)) == 1


# --------------------------------------------------------------------------------------------------
# The deployer killed before, during and after the MLflow call
# --------------------------------------------------------------------------------------------------


def _deploy_in_child(req, username: str, proxy_url: str) -> subprocess.Popen:
    code = ("from django.contrib.auth import get_user_model\n"
            "from governance.workflow import services\n"
            f"services.promotion_request_deploy(request_id={req.pk}, "
            f"actor=get_user_model().objects.get(username={username!r}))\n")
    env = {**os.environ, "DATABASE_URL": database_url(), "MLFLOW_TRACKING_URI": proxy_url,
           "MLFLOW_WEB_TIMEOUT": "30", "DJANGO_SETTINGS_MODULE": "registry_ui.settings"}
    return subprocess.Popen([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


CRASHES = {
    # point: (rule, decision, MLflow writes of the move, champion after)
    "before the write (reading the candidate)": (("/model-versions/get", "hold", {"methods": ["GET"]}),
                                                 "not applied", 0, 1),
    "during the write (applied, no answer yet)": ((ALIAS_WRITE, "delay", {"body": CHAMPION}), "applied", 1, 2),
    "during the write (not yet at MLflow)": ((ALIAS_WRITE, "hold", {"body": CHAMPION}), "not applied", 1, 2),
    "after the write (confirming)": (("/registered-models/get", "hold", {"methods": ["GET"], "after": ALIAS_WRITE,
                                                                         "after_body": CHAMPION}),
                                     "applied", 1, 2),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("point", list(CRASHES))
def test_a_deployer_killed_mid_deploy_is_resolved_from_mlflow_once_and_is_never_drift(proxy, promo, point):
    from django.core.management import call_command

    (match, fault, extra), decision, moves, holder = CRASHES[point]
    req = approved(promo, target_alias="champion")
    make_user("ops-k", "ops")
    late = point == "during the write (not yet at MLflow)"
    proxy.rule(match, fault, seconds=8 if late else 120, **extra)
    child = _deploy_in_child(req, "ops-k", proxy.url)
    try:
        proxy.wait(lambda log: log["held"] >= 1, timeout=120)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(10)
    assert PromotionRequest.objects.get(pk=req.pk).state == "deploying"

    # Restarted: the resolver settles what the dead deployer left, from MLflow's state.
    call_command("resolve_outbox", stale_seconds=0)
    call_command("resolve_outbox", stale_seconds=0)  # converged: a second pass decides nothing more
    decisions = [e for e in actions(req) if e in ("deploy.succeeded", "deploy.not_applied")]
    assert decisions == ["deploy.succeeded" if decision == "applied" else "deploy.not_applied"]
    assert PromotionRequest.objects.get(pk=req.pk).state == ("deployed" if decision == "applied" else "failed")
    if late:  # the held write reaches MLflow now, after the resolver decided "not applied"
        proxy.wait(lambda log: any(w["forwarded"] and ALIAS_WRITE in w["path"] and (w.get("body") or {}).get("alias")
                                   == "champion" for w in log["writes"]))
    sync_model(promo.name, uri=promo.factory.uri)
    assert drift(promo) == []
    assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == moves and champion(promo) == holder
    if late:
        assert PromotionRequest.objects.get(pk=req.pk).state == "deployed"
        assert actions(req)[-2:] == ["deploy.not_applied", "deploy.succeeded"]


# --------------------------------------------------------------------------------------------------
# The resolver on the record; failures in one line
# --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_resolver_decision_is_an_event_with_its_evidence_and_a_dead_mlflow_is_one_line(proxy, promo,
                                                                                          settings):
    from django.core.management import CommandError, call_command

    settings.MLFLOW_WEB_RETRIES = 0
    req = approved(promo, target_alias="champion")
    ops = make_user("ops-x", "ops")
    proxy.rule(ALIAS_WRITE, "drop", body=CHAMPION)  # applied, never answered...
    proxy.rule("/registered-models/get", "reset", methods=["GET"], after=ALIAS_WRITE, after_body=CHAMPION,
               times=10)  # ...nor read back
    with pytest.raises(DeployFailed, match="reading it back failed"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops)
    dep = Deployment.objects.get(request=req)
    assert dep.state == "pending" and PromotionRequest.objects.get(pk=req.pk).state == "failed"

    dead = f"http://127.0.0.1:{free_port()}"
    settings.MLFLOW_TRACKING_URI = dead
    with pytest.raises(CommandError) as exc:
        call_command("resolve_outbox", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    message = str(exc.value)
    assert "\n" not in message and dead in message and "connection refused" in message
    assert "reading the versions and aliases of" in message
    unknown = AuditEvent.objects.get(request_id=req.pk, action="deploy.outcome_unknown")
    assert unknown.after["decision"] == "still unknown" and dead in unknown.after["evidence"]["read"]

    proxy.clear()
    settings.MLFLOW_TRACKING_URI = proxy.url
    call_command("resolve_outbox", stdout=open(os.devnull, "w"))  # noqa: SIM115
    decided = AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded")
    assert decided.actor_username == "system:outbox"
    assert decided.after["evidence"]["mark_seen"] == dep.marker
    assert decided.after["evidence"]["target"] == {"alias": "champion", "version": 2}
    assert actions(req)[-3:] == ["deploy.failed", "deploy.outcome_unknown", "deploy.succeeded"]
    assert PromotionRequest.objects.get(pk=req.pk).state == "deployed" and champion(promo) == 2
    assert len(proxy.writes(ALIAS_WRITE, alias="champion")) == 0  # the resolver only reads: the one write came before
    sync_model(promo.name, uri=promo.factory.uri)
    assert drift(promo) == []


@pytest.mark.django_db
def test_a_sync_that_cannot_reach_mlflow_says_what_where_and_why_in_one_line(settings):
    import io

    from django.core.management import CommandError, call_command

    dead = f"http://127.0.0.1:{free_port()}"
    settings.MLFLOW_TRACKING_URI = dead
    err = io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("sync_registry", stdout=io.StringIO(), stderr=err)
    message = str(exc.value)
    assert message.startswith("sync failed: ") and "\n" not in message
    assert "listing registered models" in message and dead in message and "connection refused" in message
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_the_sync_progress_total_is_mlflows_count_not_the_mirrors(use_mlflow_server, mlflow_factory, settings):
    import io

    from django.core.management import call_command

    from registry_ui.mirror.models import RegisteredModel

    settings.REGISTRY_SYNC_PAGE_SIZE = 1000
    mlflow_factory.model()
    RegisteredModel.objects.create(name="only-in-the-mirror")  # a stale mirror must not set the total
    in_mlflow, token = 0, None
    while True:
        page = mlflow_factory.client.search_registered_models(max_results=1000, page_token=token)
        in_mlflow += len(page)
        token = page.token
        if not token:
            break
    out = io.StringIO()
    call_command("sync_registry", stdout=out)
    bars = [line for line in out.getvalue().splitlines() if line.startswith("[")]
    assert bars[-1].endswith(f" {in_mlflow}/{in_mlflow} models")
