"""Decisions judge the evidence MLflow shows at the moment they are taken, never the mirror.

Each test changes something in the real `mlflow server` the way a user of MLflow would (a metric
corrected on the run, a run deleted, the server stopped) after the mirror was filled, and checks what
request, approve and deploy then decide and record.
"""

import time

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.errors import Conflict, EvidenceUnavailable, PolicyViolation
from governance.workflow import services as workflow
from governance.workflow.models import Approval, Deployment, ModelPolicy, PromotionRequest
from tests.conftest import MlflowFactory, make_user
from tests.fixtures_workflow import Promo

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow, pytest.mark.usefixtures("role_perms")]

DATASET = {"name": "train", "digest": "d1g3st", "context": "training"}
MARK = "governance.deploy.alias.champion"


def build_auc_model(factory: MlflowFactory) -> tuple[Promo, str]:
    """v1 holds @champion (auc 0.80); v2 is the candidate (auc 0.91), validated, with a dataset input;
    each version has a run of its own, so correcting one touches no other test. Mirrored."""
    experiment = factory.experiment()
    r1 = factory.run(experiment_id=experiment, metrics={"auc": 0.80}, params={"depth": 3}, dataset=DATASET)
    r2 = factory.run(experiment_id=experiment, metrics={"auc": 0.91}, params={"depth": 5}, dataset=DATASET)
    name = factory.model(factory.unique("fresh"))
    v1 = factory.version(name, run_id=r1, tags={"validation_status": "passed"})
    factory.version(name, run_id=r2, tags={"validation_status": "passed"})
    factory.alias(name, "champion", v1)
    promo = Promo(name=name, model=None, factory=factory)
    promo.mirror()
    ModelPolicy.objects.create(model=promo.model, metric_thresholds={"auc": {"min": 0.85}})
    return promo, r2


@pytest.fixture
def auc_model(mlflow_factory, use_mlflow_server) -> tuple[Promo, str]:
    return build_auc_model(mlflow_factory)


def correct_metric(factory: MlflowFactory, run_id: str, key: str, value: float) -> None:
    """Log a new value for the key on the finished run, later than the first: MLflow's latest value."""
    time.sleep(0.01)
    factory.client.log_metric(run_id, key, value, timestamp=int(time.time() * 1000) + 1000, step=0)


def request_champion(promo, scientist) -> PromotionRequest:
    return workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                             target_alias="champion", justification="higher auc")


def gate(gates: list[dict], name: str) -> dict:
    return next(g for g in gates if g["gate"] == name)


def actions(req) -> list[str]:
    return list(AuditEvent.objects.filter(request_id=req.pk).order_by("seq").values_list("action", flat=True))


def champion_in_mlflow(promo) -> int:
    return int(promo.factory.client.get_registered_model(promo.name).aliases["champion"])


def marks_in_mlflow(promo, version: int) -> dict:
    return {k: v for k, v in promo.factory.client.get_model_version(promo.name, str(version)).tags.items()
            if k.startswith("governance.deploy")}


def test_request_and_approve_judge_a_metric_corrected_after_the_mirror_was_filled(auc_model, scientist, engineer,
                                                                                  settings):
    promo, run_id = auc_model
    correct_metric(promo.factory, run_id, "auc", 0.70)
    promo.mirror()  # the mirror read this run once, with auc 0.91, and still says so
    req = request_champion(promo, scientist)
    assert req.evidence["candidate"]["metrics"]["auc"] == 0.70
    assert req.evidence["source"] == "mlflow" and req.evidence["read_at"]
    assert req.evidence["incumbent"]["version"] == 1 and req.evidence["incumbent"]["metrics"]["auc"] == 0.80
    threshold = gate(req.gate_results, "threshold:auc")
    assert not threshold["passed"] and "it is 0.7" in threshold["detail"]
    with pytest.raises(PolicyViolation, match="auc must be >= 0.85; it is 0.7"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="ok")

    # Corrected upwards again, after the request: approve reads MLflow again and judges 0.93.
    correct_metric(promo.factory, run_id, "auc", 0.93)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="ok now")
    assert req.state == "approved"
    assert req.approval_evidence["candidate"]["metrics"]["auc"] == 0.93
    assert gate(req.approval_evidence["gates"], "threshold:auc")["passed"]
    assert req.approval_evidence["policy"] == {
        "origin": "model policy",
        "rules": {**settings.WORKFLOW_DEFAULT_GATES, "metric_thresholds": {"auc": {"min": 0.85}},
                  "quorum": settings.PRODUCTION_QUORUM, "rollback_alias": settings.WORKFLOW_ROLLBACK_ALIAS,
                  "delete_after_days": settings.WORKFLOW_DELETE_AFTER_DAYS,
                  "retention_keep": settings.WORKFLOW_RETENTION_KEEP,
                  "approval_validity_days": settings.WORKFLOW_APPROVAL_VALIDITY_DAYS}}


def test_a_gate_failing_at_deploy_sends_the_request_back_for_reapproval(auc_model, scientist, engineer, ops_user,
                                                                       client):
    promo, run_id = auc_model
    ModelPolicy.objects.filter(model=promo.model).update(production_quorum=2)
    engineer2 = make_user("engineer2", "ml_engineer")
    req = request_champion(promo, scientist)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="fine")
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer2, comment="fine too")
    assert req.state == "approved" and req.approval_evidence["candidate"]["metrics"]["auc"] == 0.91

    correct_metric(promo.factory, run_id, "auc", 0.70)
    with pytest.raises(Conflict, match="needs re-approval") as refused:
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="ship it")
    assert "candidate.metrics.auc 0.91 -> 0.7" in str(refused.value)

    # Nothing reached MLflow: no move, no deploy mark, no outbox entry, no attempt claimed.
    assert champion_in_mlflow(promo) == 1 and marks_in_mlflow(promo, 2) == {}
    assert not Deployment.objects.filter(request=req).exists()
    req.refresh_from_db()
    assert req.state == "pending" and req.needs_reapproval and req.deploy_attempt == 0
    assert req.reapproval["changes"] == [{"what": "candidate.metrics.auc", "old": 0.91, "new": 0.70}]
    assert [g["gate"] for g in req.reapproval["failing_gates"]] == ["threshold:auc"]
    assert not gate(req.gate_results, "threshold:auc")["passed"]

    # One event, whose before/after are the difference; the earlier approvals stay on record, superseded.
    assert actions(req)[-1] == "request.reapproval_required"
    assert "deploy.started" not in actions(req)
    event = AuditEvent.objects.get(request_id=req.pk, action="request.reapproval_required")
    assert event.actor_username == "ops" and event.comment == "ship it"
    assert event.before["state"] == "approved" and sorted(event.before["approvals"]) == ["engineer", "engineer2"]
    # The approvers are told it is their turn again (governance.notify), in the same transaction.
    from governance.notify.models import Notification

    assert sorted(Notification.objects.filter(event__audit_seq=event.seq, kind="approval_needed")
                  .values_list("user__username", flat=True)) == ["engineer", "engineer2"]
    assert event.before["evidence"] == {"candidate.metrics.auc": 0.91}
    assert event.after["evidence"] == {"candidate.metrics.auc": 0.70}
    assert event.before["gates"]["threshold:auc"]["passed"] is True
    assert event.after["gates"]["threshold:auc"] == {"passed": False,
                                                     "detail": "auc must be >= 0.85; it is 0.7"}
    assert event.after["state"] == "pending"
    assert Approval.objects.filter(request=req).count() == 2
    assert not Approval.objects.filter(request=req, superseded_at__isnull=True).exists()

    # The page and the API say so, with the difference.
    client.force_login(ops_user)
    page = client.get(reverse("governance:request_detail", args=[req.pk])).content.decode()
    assert 'id="needs-reapproval"' in page and "candidate.metrics.auc" in page and "0.91" in page
    assert "superseded" in page
    body = client.get(reverse("requests_api:request_detail", args=[req.pk])).json()
    assert body["state"] == "pending" and body["needs_reapproval"] is True
    assert body["reapproval"]["changes"] == [{"what": "candidate.metrics.auc", "old": 0.91, "new": 0.70}]
    assert [a["superseded"] for a in body["approvals"]] == [True, True]

    # Fixed in MLflow: the same approvers may approve again, and only their new approvals count.
    correct_metric(promo.factory, run_id, "auc", 0.92)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="re-checked")
    assert req.state == "pending"  # one fresh approval of the two the policy asks for
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer2, comment="re-checked")
    assert req.state == "approved" and not req.needs_reapproval
    assert req.approval_evidence["candidate"]["metrics"]["auc"] == 0.92
    assert workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user).state == "deployed"
    assert champion_in_mlflow(promo) == 2
    assert AuditEvent.objects.filter(request_id=req.pk, action="request.reapproval_required").count() == 1


def test_a_change_that_still_passes_the_gates_deploys_and_is_in_the_deploy_event(auc_model, scientist, engineer,
                                                                                 ops_user):
    promo, run_id = auc_model
    req = request_champion(promo, scientist)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    correct_metric(promo.factory, run_id, "auc", 0.88)
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    assert req.state == "deployed" and champion_in_mlflow(promo) == 2
    done = AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded")
    since = done.after["evidence_since_approval"]
    assert since["changes"] == [{"what": "candidate.metrics.auc", "old": 0.91, "new": 0.88}]
    assert since["approved_on"] == req.approval_evidence["read_at"] and since["read_at"] > since["approved_on"]
    assert gate(since["gates"], "threshold:auc")["passed"]
    assert not req.needs_reapproval and "request.reapproval_required" not in actions(req)


def test_a_deleted_run_fails_the_lineage_gate_and_shows_in_the_evidence(auc_model, scientist, client):
    promo, run_id = auc_model
    ModelPolicy.objects.filter(model=promo.model).update(require_lineage=True)
    promo.factory.client.delete_run(run_id)
    promo.mirror()  # the mirror still holds the run and its dataset input
    req = request_champion(promo, scientist)
    lineage = gate(req.gate_results, "lineage")
    assert not lineage["passed"] and "deleted" in lineage["detail"]
    candidate = req.evidence["candidate"]
    assert candidate["run_deleted"] is True and candidate["run_lifecycle_stage"] == "deleted"
    assert candidate["datasets"] and candidate["run_present"]  # there, but deleted
    client.force_login(scientist)
    page = client.get(reverse("governance:request_detail", args=[req.pk])).content.decode()
    assert '<td id="candidate-run-state"><strong class="error">deleted</strong>' in page
    assert 'FAILED</span><span class="visually-hidden">: lineage' in page


def test_mlflow_stopped_refuses_request_approve_and_deploy_and_changes_nothing(private_mlflow_server, settings,
                                                                               scientist, engineer, ops_user,
                                                                               client):
    settings.MLFLOW_TRACKING_URI = private_mlflow_server.url
    settings.MLFLOW_WEB_RETRIES = 0
    promo, _ = build_auc_model(MlflowFactory(private_mlflow_server.url))
    pending = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                                target_alias="challenger", justification="try")
    approved = request_champion(promo, scientist)
    approved = workflow.promotion_request_approve(request_id=approved.pk, actor=engineer)
    requests_before = list(PromotionRequest.objects.order_by("pk").values_list("pk", "state", "deploy_attempt"))
    approvals_before = Approval.objects.count()
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    private_mlflow_server.kill()

    with pytest.raises(EvidenceUnavailable, match="MLflow could not be read") as exc:
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                          target_stage="Staging", justification="stage it")
    # A new connection is refused; one kept alive from before the kill is closed without an answer.
    assert ("connection refused" in str(exc.value) or "connection closed without an answer" in str(exc.value)) \
        and "nothing was changed" in str(exc.value)
    client.force_login(engineer)
    response = client.post(reverse("requests_api:request_approve", args=[pending.pk]), {"comment": "ok"},
                           content_type="application/json")
    assert response.status_code == 503 and "MLflow could not be read" in response.json()["detail"]
    client.force_login(ops_user)
    response = client.post(reverse("governance:request_deploy", args=[approved.pk]), {"comment": "go"})
    assert response.status_code == 503
    assert "MLflow could not be read" in response.content.decode()

    assert list(PromotionRequest.objects.order_by("pk").values_list("pk", "state", "deploy_attempt")) \
        == requests_before
    assert Approval.objects.count() == approvals_before and not Deployment.objects.exists()
    refusals = list(AuditEvent.objects.filter(seq__gt=last_seq, action__startswith="request.").order_by("seq"))
    assert [(e.action, e.after["refused"], e.request_id) for e in refusals] == [
        ("request.evidence_unavailable", "request", None),
        ("request.evidence_unavailable", "approve", pending.pk),
        ("request.evidence_unavailable", "deploy", approved.pk)]
    assert all(e.after.get("state") == e.before.get("state") for e in refusals if e.before)


def test_a_failed_deploy_retried_after_a_gate_started_failing_goes_back_for_reapproval(auc_model, scientist,
                                                                                      engineer, ops_user,
                                                                                      monkeypatch):
    from governance.errors import DeployFailed
    from registry_ui.mirror import client as gateway

    promo, run_id = auc_model
    req = workflow.promotion_request_approve(request_id=request_champion(promo, scientist).pk, actor=engineer)

    def refused(*args, **kwargs):
        raise gateway.MlflowUnavailable("setting alias @champion refused by MLflow")

    monkeypatch.setattr(gateway, "deploy_alias", refused)
    with pytest.raises(DeployFailed):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    monkeypatch.undo()
    assert PromotionRequest.objects.get(pk=req.pk).state == "failed"

    correct_metric(promo.factory, run_id, "auc", 0.70)
    with pytest.raises(Conflict, match="needs re-approval"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="retry")
    req.refresh_from_db()
    assert req.state == "pending" and req.needs_reapproval and req.error == ""
    assert champion_in_mlflow(promo) == 1
    assert actions(req)[-3:] == ["deploy.started", "deploy.failed", "request.reapproval_required"]
    assert AuditEvent.objects.get(request_id=req.pk, action="request.reapproval_required").before["state"] == "failed"
