"""Retention as policy: on a model with 30 versions, the console proposes one batch listing every
version it would touch (a dry run anyone who sees the model may read), an approver approves, ops
applies; each version's change is its own Deployment and audit event, and no version holding a
stage or an alias is touched, even one that took an alias after the approval."""

import pytest
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.errors import Conflict
from governance.notify.models import MailKind, Notification
from governance.workflow import services as workflow
from governance.workflow.models import Deployment, ModelPolicy, PromotionRequest
from governance.workflow.tasks import retention_propose_task

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


@pytest.fixture
def thirty(mlflow_factory, use_mlflow_server, synced, role_perms, settings):
    """v30 Production, v29 Staging, v27 @champion, v4 @legacy, v1-v3 Archived, the rest None."""
    settings.WORKFLOW_DELETE_AFTER_DAYS = 0
    name = mlflow_factory.model(mlflow_factory.unique("retain"))
    for _ in range(30):
        mlflow_factory.version(name, with_run=False)
    mlflow_factory.stage(name, 30, "Production")
    mlflow_factory.stage(name, 29, "Staging")
    mlflow_factory.alias(name, "champion", 27)
    mlflow_factory.alias(name, "legacy", 4)
    for v in (1, 2, 3):
        mlflow_factory.stage(name, v, "Archived")
    synced(name)
    from registry_ui.mirror.models import RegisteredModel

    ModelPolicy.objects.create(model=RegisteredModel.objects.get(name=name), retention_keep=10)
    return name


EXPECTED = [(v, "delete") for v in (1, 2, 3)] + [(v, "archive") for v in range(5, 18)]


def test_a_batch_on_thirty_versions_touches_exactly_the_expected_ones(client, thirty, mlflow_factory, synced,
                                                                       scientist, engineer, ops_user, auditor):
    name = thirty
    # The dry run: from the mirror, for anyone who may see the model (an auditor too).
    dry = workflow.retention_dry_run(user=auditor, model_name=name)
    assert [(s["version"], s["action"]) for s in dry["plan"]] == EXPECTED
    client.force_login(auditor)
    page = client.get(reverse("governance:retention"), {"model": name})
    assert page.status_code == 200 and b"v17" in page.content and b"Propose" not in page.content
    with pytest.raises(Exception, match="may not"):
        workflow.retention_request_propose(model_name=name, actor=auditor)
    # The console (the scheduler: no actor) proposes it as one request listing every version, from
    # MLflow's state; a second proposal, by a person on the page, is refused while it is open.
    outcome = retention_propose_task.call()  # the scheduled job's body
    assert outcome["proposed"] == [name]
    req = PromotionRequest.objects.get(model_name=name, operation="retention")
    assert req.requester_username == "system:retention" and req.state == "pending"
    assert retention_propose_task.call()["proposed"] == []  # one open batch per model
    # The approvers are told with the request (their mail is written with its event).
    asked = Notification.objects.filter(event__audit_seq=AuditEvent.objects.get(
        request_id=req.pk, action="request.created").seq, kind=MailKind.APPROVAL_NEEDED)
    assert engineer.username in set(asked.values_list("user__username", flat=True))
    assert [(s["version"], s["action"]) for s in req.plan] == EXPECTED
    client.force_login(scientist)
    again = client.post(reverse("governance:retention"), {"model": name})
    assert again.status_code == 409 and b"open already" in again.content
    with pytest.raises(Conflict, match="open already"):
        workflow.retention_request_propose(model_name=name, actor=scientist)
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment="clean up")
    # After the approval somebody points an alias at v10: the deploy reads MLflow again and leaves it.
    mlflow_factory.alias(name, "pinned", 10)
    req = workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user, comment="apply")
    assert req.state == "deployed"
    versions = {int(v.version): v for v in mlflow_factory.client.search_model_versions(f"name='{name}'")}
    assert sorted(set(range(1, 31)) - set(versions)) == [1, 2, 3]
    archived = sorted(v for v, mv in versions.items() if mv.current_stage == "Archived")
    assert archived == [v for v in range(5, 18) if v != 10]
    assert (versions[30].current_stage, versions[29].current_stage) == ("Production", "Staging")
    assert versions[10].current_stage == "None" and versions[4].current_stage == "None"
    aliases = {k: int(v) for k, v in mlflow_factory.client.get_registered_model(name).aliases.items()}
    assert aliases == {"champion": 27, "legacy": 4, "pinned": 10}
    assert all(versions[v].current_stage == "None" for v in [*range(18, 27), 28])
    # One Deployment and one deploy.succeeded event per version changed; the skip is an event too.
    deps = sorted(Deployment.objects.filter(request=req).values_list("version", "kind", "state"))
    assert deps == sorted([(v, "delete", "succeeded") for v in (1, 2, 3)]
                          + [(v, "stage", "succeeded") for v in range(5, 18) if v != 10])
    events = AuditEvent.objects.filter(request_id=req.pk)
    assert sorted(events.filter(action="deploy.succeeded").values_list("version", flat=True)) == \
        [v for v in [1, 2, 3, *range(5, 18)] if v != 10]
    assert list(events.filter(action="deploy.skipped").values_list("version", flat=True)) == [10]
    applied = events.get(action="retention.applied")
    assert applied.after["skipped"] == [{"version": 10, "action": "archive", "why": "v10 holds @pinned"}]
    assert versions[5].tags["governance.request"].endswith(reverse("governance:request_detail", args=[req.pk]))
    # The sync: the batch explained every change; only the hand-made alias is drift.
    synced(name)
    drift = AuditEvent.objects.filter(action="registry.drift", model_name=name)
    assert [(e.version, e.after) for e in drift] == [(10, {"alias": "pinned", "version": 10})]
    assert workflow.retention_dry_run(user=auditor, model_name=name)["plan"] == [
        {"version": v, "action": "delete", "why": "archived more than 0 days ago"} for v in range(5, 18) if v != 10]
