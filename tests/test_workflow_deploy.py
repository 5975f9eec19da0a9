"""Deploy when MLflow fails: the request goes to 'failed' with the error kept, nothing is lost, the
outbox is resolved by reading MLflow, and a retry works."""

import pytest
from django.core.management import call_command

from governance.audit.models import AuditEvent
from governance.errors import DeployFailed, EvidenceUnavailable
from governance.workflow import services as workflow
from governance.workflow.models import Deployment, PromotionRequest
from registry_ui.mirror import client as mlflow_gateway
from tests.conftest import MlflowFactory
from tests.fixtures_workflow import build_promo

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow, pytest.mark.usefixtures("role_perms")]


def approved_champion(promo, scientist, engineer):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="better")
    return workflow.promotion_request_approve(request_id=req.pk, actor=engineer)


def test_mlflow_down_at_deploy_refuses_it_changes_nothing_and_a_later_deploy_works(cuttable_mlflow, settings,
                                                                                   scientist, engineer, ops_user):
    settings.MLFLOW_TRACKING_URI = cuttable_mlflow.url
    settings.MLFLOW_WEB_RETRIES = 0
    factory = MlflowFactory(cuttable_mlflow.url)
    promo = build_promo(factory)
    promo.mirror()
    req = approved_champion(promo, scientist, engineer)
    cuttable_mlflow.kill()
    # The evidence cannot be read again, so nothing is claimed or sent: the request stays approved.
    with pytest.raises(EvidenceUnavailable, match="MLflow could not be read"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="first try")
    req.refresh_from_db()
    assert req.state == "approved" and req.deploy_attempt == 0
    assert not Deployment.objects.filter(request=req).exists()
    refused = AuditEvent.objects.get(request_id=req.pk, action="request.evidence_unavailable")
    assert refused.after["refused"] == "deploy" and "connection refused" in refused.after["error"]
    cuttable_mlflow.start()
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="retry")
    assert req.state == "deployed"
    assert factory.client.get_registered_model(promo.name).aliases["champion"] in ("2", 2)
    assert list(Deployment.objects.filter(request=req).values_list("state", flat=True)) == ["succeeded"]
    assert [e for e in AuditEvent.objects.filter(request_id=req.pk).order_by("seq").values_list("action", flat=True)
            ][-3:] == ["request.evidence_unavailable", "deploy.started", "deploy.succeeded"]


def test_write_done_but_confirmation_lost_is_resolved_by_reading_mlflow(promo, scientist, engineer, ops_user,
                                                                       monkeypatch):
    req = approved_champion(promo, scientist, engineer)
    real_read, real_write = mlflow_gateway.read_model_pointers, mlflow_gateway.deploy_alias
    calls = {"read": 0, "write": 0}

    def flaky_read(name, **kw):
        calls["read"] += 1
        if calls["read"] == 2:  # the confirming re-read after the write
            raise mlflow_gateway.MlflowUnavailable("connection reset while confirming")
        return real_read(name, **kw)

    def counting_write(*args, **kw):
        calls["write"] += 1
        return real_write(*args, **kw)

    monkeypatch.setattr(mlflow_gateway, "read_model_pointers", flaky_read)
    monkeypatch.setattr(mlflow_gateway, "deploy_alias", counting_write)
    with pytest.raises(DeployFailed):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    assert PromotionRequest.objects.get(pk=req.pk).state == "failed"
    call_command("resolve_outbox")
    req.refresh_from_db()
    assert req.state == "deployed" and calls["write"] == 1
    dep = Deployment.objects.get(request=req)
    assert dep.state == "succeeded" and dep.after == {"alias": "champion", "version": 2}
    assert AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded").actor_username == "system:outbox"


def test_crashed_deploy_left_deploying_is_resolved_as_not_applied_then_retried(promo, scientist, engineer,
                                                                              ops_user, monkeypatch):
    req = approved_champion(promo, scientist, engineer)

    def crash(*args, **kw):
        raise SystemExit("worker killed")  # not an error we handle: the process is gone

    monkeypatch.setattr(mlflow_gateway, "read_version", crash)
    with pytest.raises(SystemExit):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    monkeypatch.undo()
    assert PromotionRequest.objects.get(pk=req.pk).state == "deploying"
    assert workflow.resolve_outbox(stale_seconds=3600) == {"succeeded": 0, "failed": 0, "unreachable": 0}
    assert workflow.resolve_outbox(stale_seconds=0) == {"succeeded": 0, "failed": 1, "unreachable": 0}
    req.refresh_from_db()
    assert req.state == "failed"
    decided = AuditEvent.objects.get(request_id=req.pk, action="deploy.not_applied")
    assert decided.actor_username == "system:outbox" and "no write intent" in decided.after["evidence"]["finding"]
    assert workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user).state == "deployed"
