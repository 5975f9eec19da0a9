"""Eight people clicking approve, then deploy, on the same request at once: exactly one state
change, exactly one MLflow write, and no 5xx or "database is locked" for anyone. Runs on SQLite
(IMMEDIATE transactions) and PostgreSQL (row locks) alike."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.errors import DomainError
from governance.workflow import services as workflow
from governance.workflow.models import Deployment, PromotionRequest
from registry_ui.mirror import client as mlflow_gateway
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.mlflow]

N = 8


def run_at_once(fn, args_list):
    barrier = threading.Barrier(len(args_list))
    results = [None] * len(args_list)

    def worker(i, args):
        try:
            barrier.wait(30)
            results[i] = fn(*args)
        except BaseException as exc:  # collected and asserted on below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def test_eight_approvers_and_eight_deployers_at_once(promo, scientist, monkeypatch):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="race")
    engineers = [make_user(f"eng{i}", "ml_engineer") for i in range(N)]
    outcomes = run_at_once(lambda u: workflow.promotion_request_approve(request_id=req.pk, actor=u),
                           [(u,) for u in engineers])
    wins = [o for o in outcomes if isinstance(o, PromotionRequest)]
    losses = [o for o in outcomes if not isinstance(o, PromotionRequest)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, DomainError) and o.status == 409 for o in losses), outcomes
    assert AuditEvent.objects.filter(request_id=req.pk, action="request.approved").count() == 1

    writes = []
    real_write = mlflow_gateway.deploy_alias

    def counting_write(*args, **kw):
        writes.append(args)
        return real_write(*args, **kw)

    monkeypatch.setattr(mlflow_gateway, "deploy_alias", counting_write)
    ops = [make_user(f"ops{i}", "ops") for i in range(N)]

    def deploy_via_api(user):
        client = Client()
        client.force_login(user)
        return client.post(reverse("requests_api:request_deploy", args=[req.pk]), {"comment": "now"},
                           content_type="application/json")

    responses = run_at_once(deploy_via_api, [(u,) for u in ops])
    assert not [r for r in responses if isinstance(r, BaseException)], responses
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (N - 1), [r.content for r in responses]
    assert all("detail" in r.json() for r in responses if r.status_code == 409)
    assert len(writes) == 1
    assert Deployment.objects.filter(request_id=req.pk).count() == 1
    assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.started").count() == 1
    assert PromotionRequest.objects.get(pk=req.pk).state == "deployed"
    assert promo.factory.client.get_registered_model(promo.name).aliases["champion"] in ("2", 2)
