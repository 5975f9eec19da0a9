"""The promotion workflow against a real MLflow server: request, approve, deploy, gates, SoD,
evidence freezing, rollback, quorum."""

import pytest

from governance.audit.models import AuditEvent
from governance.errors import Conflict, InvalidInput, PolicyViolation, TransitionNotAllowed
from governance.workflow import services as workflow
from governance.workflow.explain import deployment_explains
from governance.workflow.models import Deployment, ModelPolicy, PromotionRequest
from registry_ui.mirror.models import ModelAlias, ModelVersion
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def actions(req):
    return list(AuditEvent.objects.filter(request_id=req.pk).order_by("seq").values_list("action", flat=True))


def champion_request(promo, scientist, version=2, **kw):
    return workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=version,
                                             target_alias="champion", justification="better accuracy", **kw)


def test_request_approve_deploy_moves_champion_in_mlflow_and_mirror(promo, scientist, engineer, ops_user):
    req = champion_request(promo, scientist)
    assert req.state == "pending"
    assert req.evidence["candidate"]["metrics"]["accuracy"] == 0.9
    assert req.evidence["incumbent"]["version"] == 1
    assert all(g["passed"] for g in req.gate_results)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="looks good")
    assert req.state == "approved"
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="go")
    assert req.state == "deployed" and req.deployed_by == "ops"
    assert promo.factory.client.get_registered_model(promo.name).aliases["champion"] in ("2", 2)
    assert ModelAlias.objects.get(model=promo.model, alias="champion").version == 2
    assert actions(req) == ["request.created", "request.approved", "deploy.started", "deploy.succeeded"]
    done = AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded")
    assert done.before == {"alias": "champion", "version": 1}
    assert done.after["version"] == 2
    dep = Deployment.objects.get(request=req)
    assert dep.state == "succeeded"
    # Its deployer confirmed it and wrote the mirror, so a sync never sees this move; the same move made
    # again later (by hand) is not this deploy's.
    move = {"model_name": promo.name, "version": 2, "kind": "alias", "name": "champion", "before": 1, "after": 2}
    assert not deployment_explains(**move)
    # Had the console recorded it as not applied, the move would be that deploy's late landing, and only
    # from the holder it found (v1) to its own version.
    Deployment.objects.filter(pk=dep.pk).update(state="failed")
    assert deployment_explains(**move)
    assert not deployment_explains(**{**move, "before": 3})
    assert not deployment_explains(model_name=promo.name, version=3, kind="alias", name="champion", before=2,
                                   after=3)


def test_production_stage_deploy_archives_previous_holder(promo, scientist, engineer, ops_user):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_stage="Production", archive_existing=True, justification="j")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    client = promo.factory.client
    assert client.get_model_version(promo.name, "2").current_stage == "Production"
    assert client.get_model_version(promo.name, "1").current_stage == "Archived"
    stages = dict(ModelVersion.objects.filter(model=promo.model).values_list("version", "stage"))
    assert stages[2] == "Production" and stages[1] == "Archived"
    assert not deployment_explains(model_name=promo.name, version=1, kind="stage", name="stage",
                                   before="Production", after="Archived")  # confirmed: nothing left to explain
    Deployment.objects.filter(request=req).update(state="failed")  # as if it had landed after the console gave up
    assert deployment_explains(model_name=promo.name, version=1, kind="stage", name="stage",
                               before="Production", after="Archived")
    assert deployment_explains(model_name=promo.name, version=2, kind="stage", name="stage",
                               before="None", after="Production")
    assert not deployment_explains(model_name=promo.name, version=3, kind="stage", name="stage",
                                   before="None", after="Staging")


def test_nobody_approves_their_own_request(shared_promo, db):
    both = make_user("both", "data_scientist")
    both.groups.add(*__import__("django.contrib.auth.models", fromlist=["Group"]).Group.objects.filter(
        name="ml_engineer"))
    req = champion_request(shared_promo, both)
    with pytest.raises(PolicyViolation, match="own request"):
        workflow.promotion_request_approve(request_id=req.pk, actor=both)
    with pytest.raises(PolicyViolation, match="own request"):
        workflow.promotion_request_reject(request_id=req.pk, actor=both, comment="no")
    assert PromotionRequest.objects.get(pk=req.pk).state == "pending"


def test_production_deployer_is_neither_requester_nor_approver(promo, scientist, engineer, ops_user):
    from django.contrib.auth.models import Group

    engineer.groups.add(Group.objects.get(name="ops"))
    scientist.groups.add(Group.objects.get(name="ops"))
    req = champion_request(promo, scientist)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    for who in (scientist, engineer):
        with pytest.raises(PolicyViolation, match="Separation of duties"):
            workflow.promotion_request_deploy(request_id=req.pk, actor=who)
    assert workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user).state == "deployed"


def test_unprotected_alias_may_be_deployed_by_its_approver(promo, scientist, engineer):
    from django.contrib.auth.models import Group

    engineer.groups.add(Group.objects.get(name="ops"))
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="challenger", justification="try it")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    assert workflow.promotion_request_deploy(request_id=req.pk, actor=engineer).state == "deployed"


def test_failing_gate_blocks_production_approval_and_is_recorded(shared_promo, scientist, engineer):
    req = champion_request(shared_promo, scientist, version=3)
    assert [g["gate"] for g in req.gate_results if not g["passed"]] == ["tag:validation_status"]
    with pytest.raises(PolicyViolation, match="validation_status"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="please", override=True)
    req.refresh_from_db()
    assert req.state == "pending"
    assert not req.gate_results[0]["passed"]


def test_non_production_failing_gate_needs_override_with_comment(shared_promo, scientist, engineer, settings):
    settings.WORKFLOW_DEFAULT_GATES = {**settings.WORKFLOW_DEFAULT_GATES,
                                       "metric_thresholds": {"accuracy": {"min": 0.75}}}
    req = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=3,
                                            target_stage="Staging", justification="smoke test")
    assert not req.gate_results[0]["passed"]
    with pytest.raises(PolicyViolation, match="override"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    with pytest.raises(PolicyViolation, match="override"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer, override=True,
                                             comment="staging only, accepted")
    assert req.state == "approved" and req.override


def test_candidate_must_not_be_worse_than_the_incumbent_when_configured(shared_promo, scientist, engineer):
    ModelPolicy.objects.create(model=shared_promo.model, compare_metric="accuracy", required_tags={})
    worse = champion_request(shared_promo, scientist, version=3)
    gate = next(g for g in worse.gate_results if g["gate"] == "not_worse:accuracy")
    assert not gate["passed"] and "0.7" in gate["detail"] and "0.8" in gate["detail"]
    with pytest.raises(PolicyViolation):
        workflow.promotion_request_approve(request_id=worse.pk, actor=engineer)
    workflow.promotion_request_cancel(request_id=worse.pk, actor=scientist)
    better = champion_request(shared_promo, scientist, version=2)
    assert next(g for g in better.gate_results if g["gate"] == "not_worse:accuracy")["passed"]


def test_lineage_gate_requires_a_run_with_a_dataset(shared_promo, scientist, settings):
    settings.WORKFLOW_DEFAULT_GATES = {**settings.WORKFLOW_DEFAULT_GATES, "require_lineage": True}
    with_ds = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2,
                                                target_stage="Staging", justification="j")
    no_ds = workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=3,
                                              target_alias="shadow", justification="j")
    assert next(g for g in with_ds.gate_results if g["gate"] == "lineage")["passed"]
    assert not next(g for g in no_ds.gate_results if g["gate"] == "lineage")["passed"]


def test_evidence_is_frozen_and_a_tag_changed_after_approval_sends_the_request_back(promo, scientist, engineer,
                                                                                    ops_user):
    req = champion_request(promo, scientist)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    frozen = PromotionRequest.objects.get(pk=req.pk).approval_evidence
    # Someone flips the validation tag in MLflow after approval; the mirror catches up.
    promo.factory.client.set_model_version_tag(promo.name, "2", "validation_status", "failed")
    promo.mirror()
    req.refresh_from_db()
    assert req.approval_evidence == frozen
    assert req.approval_evidence["candidate"]["tags"]["validation_status"] == "passed"
    with pytest.raises(Conflict, match="validation_status"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    req.refresh_from_db()
    assert req.state == "pending" and req.needs_reapproval
    assert req.reapproval["changes"] == [{"what": "candidate.tags.validation_status", "old": "passed",
                                          "new": "failed"}]
    assert promo.factory.client.get_registered_model(promo.name).aliases["champion"] in ("1", 1)
    assert not Deployment.objects.filter(request=req).exists()
    assert actions(req)[-1] == "request.reapproval_required"


def test_quorum_needs_distinct_approvals_for_production(shared_promo, scientist, engineer, settings):
    settings.PRODUCTION_QUORUM = 2
    second = make_user("engineer2", "ml_engineer")
    req = champion_request(shared_promo, scientist)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    assert req.state == "pending"
    with pytest.raises(TransitionNotAllowed, match="already approved"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    req = workflow.promotion_request_approve(request_id=req.pk, actor=second)
    assert req.state == "approved" and req.approvals.count() == 2
    assert actions(req).count("request.approved") == 2


def test_second_open_request_for_the_same_target_is_refused(shared_promo, scientist):
    champion_request(shared_promo, scientist)
    with pytest.raises(Conflict):
        champion_request(shared_promo, scientist, version=3)


def test_reject_requires_a_comment_and_request_needs_justification(shared_promo, scientist, engineer):
    req = champion_request(shared_promo, scientist)
    with pytest.raises(InvalidInput):
        workflow.promotion_request_reject(request_id=req.pk, actor=engineer, comment="  ")
    assert workflow.promotion_request_reject(request_id=req.pk, actor=engineer, comment="no").state == "rejected"
    with pytest.raises(InvalidInput):
        workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2,
                                          target_alias="champion", justification="")
    with pytest.raises(InvalidInput):
        workflow.promotion_request_create(actor=scientist, model_name=shared_promo.name, version=2, target_alias="x",
                                          target_stage="Staging", justification="j")


def test_rollback_puts_back_the_previous_holder(promo, scientist, engineer, ops_user, settings):
    settings.PRODUCTION_QUORUM = 2
    engineer2 = make_user("engineer2", "ml_engineer")
    req = champion_request(promo, scientist)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer2)
    workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    back = workflow.promotion_request_rollback(actor=ops_user, model_name=promo.name, target_alias="champion",
                                               justification="v2 misbehaves", urgent=True)
    assert back.version == 1 and back.rollback and back.urgent
    back = workflow.promotion_request_approve(request_id=back.pk, actor=engineer)
    assert back.state == "approved"  # urgent: quorum 1
    with pytest.raises(PolicyViolation, match="Separation of duties"):
        workflow.promotion_request_deploy(request_id=back.pk, actor=ops_user)  # ops requested it
    other_ops = make_user("ops2", "ops")
    workflow.promotion_request_deploy(request_id=back.pk, actor=other_ops)
    assert promo.factory.client.get_registered_model(promo.name).aliases["champion"] in ("1", 1)


def test_cancel_by_requester_only_and_not_after_deploy(shared_promo, scientist, engineer):
    from django.core.exceptions import PermissionDenied

    req = champion_request(shared_promo, scientist)
    with pytest.raises(PermissionDenied):
        workflow.promotion_request_cancel(request_id=req.pk, actor=engineer)
    assert workflow.promotion_request_cancel(request_id=req.pk, actor=scientist).state == "cancelled"
    with pytest.raises(TransitionNotAllowed):
        workflow.promotion_request_cancel(request_id=req.pk, actor=scientist)


def test_page_shows_why_a_gate_blocks_approval(client, shared_promo, scientist, engineer):
    from django.urls import reverse

    req = champion_request(shared_promo, scientist, version=3)
    client.force_login(engineer)
    response = client.post(reverse("governance:request_approve", args=[req.pk]), {"comment": "pls"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "validation_status must be &#x27;passed&#x27;" in body and "FAILED" in body
    assert PromotionRequest.objects.get(pk=req.pk).state == "pending"
    assert not AuditEvent.objects.filter(request_id=req.pk, action="request.approved").exists()
