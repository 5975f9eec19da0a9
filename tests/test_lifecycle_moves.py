"""Every registry move is a governed request (demote to None, set/move/remove an alias, archive, delete
an archived version), end to end through the API against the real MLflow server; a deploy that
replaces a protected holder gives it @rollback in the same step; each deploy writes tags back that
MLflow's client shows, and the sync reports none of it as drift."""

import pytest
from django.urls import reverse
from django_tasks_db.models import DBTaskResult

from governance.audit.models import AuditEvent
from governance.errors import InvalidInput, PolicyViolation
from governance.workflow import services as workflow
from governance.workflow.models import Deployment, PromotionRequest
from governance.workflow.services import write_back_late_landing_task
from registry_ui.mirror import client as gateway
from registry_ui.mirror.models import ModelAlias, ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def api(client, user, name, *args, data=None):
    client.force_login(user)
    response = client.post(reverse(f"requests_api:{name}", args=args), data or {}, content_type="application/json")
    return response


def move(client, promo, scientist, engineer, ops_user, **fields):
    """Request (scientist), approve (engineer), deploy (ops) through the API; returns the request id."""
    created = api(client, scientist, "request_list", data={"model": promo.name, "justification": "lifecycle",
                                                           **fields})
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    approved = api(client, engineer, "request_approve", rid, data={"comment": "ok"})
    assert approved.status_code == 200, approved.json()
    deployed = api(client, ops_user, "request_deploy", rid, data={"comment": "go"})
    assert deployed.status_code == 200, deployed.json()
    assert deployed.json()["state"] == "deployed"
    return rid


def actions(rid):
    return list(AuditEvent.objects.filter(request_id=rid).order_by("seq").values_list("action", flat=True))


def drift(name):
    return list(AuditEvent.objects.filter(action="registry.drift", model_name=name).values_list("after", flat=True))


def mlflow_version(promo, version):
    return promo.factory.client.get_model_version(promo.name, str(version))


FLOW = ["request.created", "request.approved", "deploy.started", "deploy.succeeded"]


def test_demote_production_to_none_writes_tags_back_and_is_no_drift(client, promo, synced, scientist, engineer,
                                                                   ops_user):
    synced(promo.name)
    rid = move(client, promo, scientist, engineer, ops_user, version=1, target_stage="None")
    assert actions(rid) == FLOW
    mv = mlflow_version(promo, 1)
    assert mv.current_stage == "None"
    # Written back: MLflow's own client shows who approved, when, and where the decision lives.
    assert mv.tags["approved_by"] == engineer.username
    assert mv.tags["demoted_to_none"]
    assert mv.tags["governance.request"].endswith(reverse("governance:request_detail", args=[rid]))
    done = AuditEvent.objects.get(request_id=rid, action="deploy.succeeded")
    assert done.after["tags_written"]["approved_by"] == engineer.username
    report = synced(promo.name)
    assert drift(promo.name) == [] and not report.changes and not report.observed
    # Had the sync seen the write-back before the deploy recorded it, it would say "the console's";
    # the same key written by somebody else in MLflow is not.
    ModelVersion.objects.filter(model__name=promo.name, version=1).update(tags={})
    promo.factory.client.set_model_version_tag(promo.name, "3", "approved_by", "mallory")
    # v1's link names a deployed request, but not a break-glass one: an emergency mark there is not ours.
    promo.factory.client.set_model_version_tag(promo.name, "1", "governance.emergency", "by hand")
    synced(promo.name)
    seen = {(e.version, e.before["tag"]): e.after.get("written_by")
            for e in AuditEvent.objects.filter(model_name=promo.name, action="registry.tag_set")}
    assert seen[(1, "approved_by")] == seen[(1, "demoted_to_none")] == "console"
    assert seen[(1, "governance.deploy.stage.None")] == "console"
    assert seen[(3, "approved_by")] is None
    assert seen[(1, "governance.emergency")] is None
    assert drift(promo.name) == []


def test_alias_set_move_and_remove_are_governed_and_explained(client, promo, synced, scientist, engineer, ops_user):
    synced(promo.name)
    first = move(client, promo, scientist, engineer, ops_user, version=2, target_alias="challenger")
    second = move(client, promo, scientist, engineer, ops_user, version=3, target_alias="challenger")
    assert promo.factory.client.get_registered_model(promo.name).aliases["challenger"] in (3, "3")
    assert mlflow_version(promo, 3).tags["promoted_to_challenger"]
    # Removing names the alias and the version it points at; anything else is refused before approval.
    wrong = api(client, scientist, "request_list", data={"model": promo.name, "version": 2, "operation": "remove_alias",
                                                         "target_alias": "challenger", "justification": "x"})
    assert wrong.status_code == 400 and "points at v3" in wrong.json()["detail"]
    removed = move(client, promo, scientist, engineer, ops_user, version=3, operation="remove_alias",
                   target_alias="challenger")
    assert "challenger" not in promo.factory.client.get_registered_model(promo.name).aliases
    assert not ModelAlias.objects.filter(model__name=promo.name, alias="challenger").exists()
    assert mlflow_version(promo, 3).tags["removed_from_challenger"]
    assert [actions(r) for r in (first, second, removed)] == [FLOW] * 3
    dep = Deployment.objects.get(request_id=removed)
    assert (dep.kind, dep.before, dep.after) == ("unalias", {"alias": "challenger", "version": 3},
                                                 {"alias": "challenger", "version": None})
    synced(promo.name)
    assert drift(promo.name) == []
    # A removal done by hand, though, is drift.
    promo.factory.alias(promo.name, "challenger", 2)
    synced(promo.name)
    promo.factory.client.delete_registered_model_alias(promo.name, "challenger")
    synced(promo.name)
    assert drift(promo.name) == [{"alias": "challenger", "version": 2}, {"alias": "challenger", "version": None}]


def test_archive_then_delete_after_retention_never_a_version_with_stage_or_alias(
        client, promo, synced, settings, scientist, engineer, ops_user):
    synced(promo.name)
    # Deleting v3 before it is archived, or v1 that holds Production and @champion: refused at approval.
    for version in (3, 1):
        req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=version,
                                                operation="delete", justification="clean up")
        with pytest.raises(PolicyViolation, match="only an Archived version"):
            workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
        workflow.promotion_request_cancel(request_id=req.pk, actor=scientist)
    archived = move(client, promo, scientist, engineer, ops_user, version=3, target_stage="Archived")
    assert mlflow_version(promo, 3).current_stage == "Archived"
    # Within the retention (30 days by default) it stays.
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=3, operation="delete",
                                            justification="clean up")
    with pytest.raises(PolicyViolation, match="archived at least 30 days ago"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_cancel(request_id=req.pk, actor=scientist)
    settings.WORKFLOW_DELETE_AFTER_DAYS = 0
    # Approved, then somebody points an alias at it by hand: the deploy reads MLflow again and refuses.
    created = api(client, scientist, "request_list", data={"model": promo.name, "version": 3, "operation": "delete",
                                                           "justification": "retention"})
    rid = created.json()["id"]
    assert api(client, engineer, "request_approve", rid).status_code == 200
    promo.factory.alias(promo.name, "keep", 3)
    synced(promo.name)
    refused = api(client, ops_user, "request_deploy", rid)
    assert refused.status_code == 409 and "holding an alias" in refused.json()["detail"]
    assert mlflow_version(promo, 3).current_stage == "Archived"
    promo.factory.client.delete_registered_model_alias(promo.name, "keep")
    synced(promo.name)
    assert api(client, engineer, "request_approve", rid).status_code == 200
    assert api(client, ops_user, "request_deploy", rid).json()["state"] == "deployed"
    assert sorted(int(v.version) for v in promo.factory.client.search_model_versions(f"name='{promo.name}'")) == [1, 2]
    assert not ModelVersion.objects.filter(model__name=promo.name, version=3).exists()
    assert actions(archived) == FLOW
    assert actions(rid) == ["request.created", "request.approved", "request.reapproval_required",
                            "request.approved", "deploy.started", "deploy.succeeded"]
    # The sync sees nothing to explain (the deploy wrote the mirror); the hand-made alias was drift.
    synced(promo.name)
    assert drift(promo.name) == [{"alias": "keep", "version": 3}, {"alias": "keep", "version": None}]
    # The client itself refuses to delete a version holding a stage or alias, read fresh before the call.
    with pytest.raises(gateway.WriteRefused, match="holds stage Production, aliases @champion"):
        gateway.deploy_delete(promo.name, 1)


def test_champion_deploy_gives_previous_holder_rollback_in_the_same_step(client, promo, synced, scientist, engineer,
                                                                        ops_user):
    synced(promo.name)
    rid = move(client, promo, scientist, engineer, ops_user, version=2, target_alias="champion")
    aliases = promo.factory.client.get_registered_model(promo.name).aliases
    assert {k: int(v) for k, v in aliases.items()} == {"champion": 2, "rollback": 1}
    dep = Deployment.objects.get(request_id=rid)
    assert dep.rollback_move == {"alias": "rollback", "version": 1, "was": None}
    assert mlflow_version(promo, 1).tags["governance.deploy.alias.rollback"] == dep.marker
    assert AuditEvent.objects.get(request_id=rid, action="deploy.succeeded").after["rollback"]["now"] == 1
    synced(promo.name)
    assert drift(promo.name) == []
    # "Roll back" offers the @rollback version first.
    assert workflow.previous_holder(promo.model, target_alias="champion") == 1
    back = workflow.promotion_request_rollback(actor=scientist, model_name=promo.name, target_alias="champion",
                                               justification="v2 misbehaves")
    assert back.version == 1 and back.rollback


def test_a_late_landing_with_rollback_is_credited_to_the_deploy_not_drift(promo, synced, scientist, engineer,
                                                                         ops_user, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    synced(promo.name)
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_stage="Production", archive_existing=True, justification="up")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    real_read = gateway.read_model_pointers
    calls = {"n": 0}

    def confirmation_lost(name, **kw):
        calls["n"] += 1
        if calls["n"] == 2:  # the read-back after the writes
            raise gateway.MlflowUnavailable("connection reset while confirming")
        return real_read(name, **kw)

    monkeypatch.setattr(gateway, "read_model_pointers", confirmation_lost)
    with pytest.raises(Exception, match="Deploy failed"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    monkeypatch.setattr(gateway, "read_model_pointers", real_read)
    PromotionRequest.objects.filter(pk=req.pk).update(lease_expires_at=None)
    # The sync sees v2 in Production, v1 archived and @rollback on v1: all three the deploy's own.
    with django_capture_on_commit_callbacks(execute=True):
        report = synced(promo.name)
    assert len(report.changes) == 3
    assert drift(promo.name) == []
    req.refresh_from_db()
    assert req.state == "deployed"
    assert AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded").actor_username == "system:sync"

    # The deployer never wrote its tags back: the credit enqueued a task that does, once.
    assert "promoted_to_production" not in mlflow_version(promo, 2).tags
    queued = DBTaskResult.objects.get(task_path__endswith="write_back_late_landing_task")
    dep = Deployment.objects.get(request=req, state="succeeded")
    assert queued.args_kwargs["args"] == [dep.pk]
    assert write_back_late_landing_task.call(dep.pk)["tags_written"]["approved_by"] == engineer.username
    tags = mlflow_version(promo, 2).tags
    assert tags["approved_by"] == engineer.username and "promoted_to_production" in tags
    assert tags["governance.request"].endswith(f"/governance/requests/{req.pk}/")
    written = AuditEvent.objects.get(request_id=req.pk, action="deploy.tags_written")
    assert set(written.after["tags_written"]) == {"promoted_to_production", "approved_by", "governance.request"}
    assert write_back_late_landing_task.call(dep.pk)["tags_written"] == {}  # run again: nothing written twice
    assert AuditEvent.objects.filter(request_id=req.pk, action="deploy.tags_written").count() == 1
    again = synced(promo.name)
    assert again.changes == [] and drift(promo.name) == []


def test_a_deploy_settled_by_the_resolver_still_writes_its_tags_back(promo, scientist, engineer, ops_user,
                                                                      monkeypatch):
    from django.core.management import call_command

    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="challenger", justification="try it")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    real_read = gateway.read_model_pointers
    calls = {"n": 0}

    def confirmation_lost(name, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise gateway.MlflowUnavailable("connection reset while confirming")
        return real_read(name, **kw)

    monkeypatch.setattr(gateway, "read_model_pointers", confirmation_lost)
    with pytest.raises(Exception, match="Deploy failed"):
        workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    monkeypatch.setattr(gateway, "read_model_pointers", real_read)
    assert "promoted_to_challenger" not in mlflow_version(promo, 2).tags
    call_command("resolve_outbox")
    req.refresh_from_db()
    assert req.state == "deployed"
    tags = mlflow_version(promo, 2).tags
    assert tags["approved_by"] == engineer.username and tags["promoted_to_challenger"]
    done = AuditEvent.objects.get(request_id=req.pk, action="deploy.succeeded")
    assert done.actor_username == "system:outbox" and done.after["tags_written"]["approved_by"] == engineer.username
    assert ModelVersion.objects.get(model__name=promo.name, version=2).tags["approved_by"] == engineer.username


def test_demote_delete_and_protected_alias_removal_follow_production_quorum_and_sod(
        client, promo, synced, settings, scientist, engineer, ops_user):
    """Moving out of Production, deleting, and removing a protected alias go through the same rules as a
    promotion to Production: two approvals (PRODUCTION_QUORUM=2), nobody approves their own request, and
    the deployer is neither its requester nor one of its approvers."""
    from django.contrib.auth.models import Group

    from tests.conftest import make_user

    settings.PRODUCTION_QUORUM = 2
    settings.WORKFLOW_DELETE_AFTER_DAYS = 0
    synced(promo.name)
    engineer2 = make_user("engineer2", "ml_engineer")
    # One person holding every role: only the separation of duties stands in their way.
    dana = make_user("dana")
    dana.groups.add(*Group.objects.filter(name__in=["data_scientist", "ml_engineer", "ops"]))
    engineer.groups.add(Group.objects.get(name="ops"))
    # The contrast: archiving v3 (None -> Archived) is not Production-like, so one approval is enough.
    move(client, promo, scientist, engineer, ops_user, version=3, target_stage="Archived")
    assert AuditEvent.objects.filter(action="request.approved", model_name=promo.name).get().after["quorum"] == 1
    moves = [{"version": 1, "target_stage": "Staging"},  # out of Production (to Staging, not None)
             {"version": 1, "operation": "remove_alias", "target_alias": "champion"},
             {"version": 3, "operation": "delete"}]
    for fields in moves:
        created = api(client, dana, "request_list", data={"model": promo.name, "justification": "sod", **fields})
        assert created.status_code == 201, (fields, created.json())
        rid = created.json()["id"]
        own = api(client, dana, "request_approve", rid, data={"comment": "mine"})
        assert own.status_code == 400 and "own request" in own.json()["detail"], fields
        first = api(client, engineer, "request_approve", rid, data={"comment": "ok"})
        assert first.status_code == 200 and first.json()["state"] == "pending", (fields, first.json())
        again = api(client, engineer, "request_approve", rid, data={"comment": "ok again"})
        assert again.status_code == 409 and "already approved" in again.json()["detail"], fields
        # Deploying waits for the quorum, whoever tries.
        assert api(client, ops_user, "request_deploy", rid).status_code == 409, fields
        second = api(client, engineer2, "request_approve", rid, data={"comment": "ok"})
        assert second.status_code == 200 and second.json()["state"] == "approved", (fields, second.json())
        quorums = [(e.after["approvals"], e.after["quorum"], e.after["state"])
                   for e in AuditEvent.objects.filter(request_id=rid, action="request.approved").order_by("seq")]
        assert quorums == [(1, 2, "pending"), (2, 2, "approved")], fields
        for who, why in ((dana, "the requester may not deploy"), (engineer, "an approver may not deploy")):
            refused = api(client, who, "request_deploy", rid, data={"comment": "go"})
            assert refused.status_code == 400 and why in refused.json()["detail"], (fields, refused.json())
        deployed = api(client, ops_user, "request_deploy", rid, data={"comment": "go"})
        assert deployed.status_code == 200 and deployed.json()["state"] == "deployed", (fields, deployed.json())
        assert actions(rid) == ["request.created", "request.approved", "request.approved", "deploy.started",
                                "deploy.succeeded"], fields
    mlflow = promo.factory.client
    assert mlflow_version(promo, 1).current_stage == "Staging"
    assert "champion" not in mlflow.get_registered_model(promo.name).aliases
    assert sorted(int(v.version) for v in mlflow.search_model_versions(f"name='{promo.name}'")) == [1, 2]


def test_a_retention_batch_cannot_be_asked_for_through_the_request_api(client, promo, scientist):
    """Retention batches come from the policy's plan (retention page or scheduled job), never from a
    caller naming a version: the API refuses the operation by name, before any service runs."""
    refused = api(client, scientist, "request_list", data={"model": promo.name, "version": 2,
                                                           "operation": "retention", "justification": "tidy"})
    assert refused.status_code == 400, refused.json()
    body = refused.json()
    assert "operation" in body["fields"] and "retention page" in body["detail"], body
    assert "has no version" not in body["detail"]
    assert not PromotionRequest.objects.filter(model_name=promo.name).exists()
    # The service says the same to any other caller.
    with pytest.raises(InvalidInput, match="retention batch is proposed"):
        workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2, operation="retention",
                                          justification="tidy")
