"""Break-glass: an ops user who also holds the break-glass permission deploys and rolls back without
approval, with a mandatory reason; it is marked as an emergency (request, events, MLflow tag, inbox),
the approvers are named at once, and a post-hoc review stays open until an approver closes it."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.notify.models import MailKind, Notification
from governance.workflow import services as workflow
from registry_ui.mirror.models import ModelVersion

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def post(client, user, name, *args, data=None):
    client.force_login(user)
    return client.post(reverse(f"requests_api:{name}", args=args), data or {}, content_type="application/json")


@pytest.fixture
def glass_holder(ops_user):
    ops_user.user_permissions.add(Permission.objects.get(codename="break_glass_promotion"))
    return type(ops_user).objects.get(pk=ops_user.pk)  # a fresh object: permissions are cached per instance


def test_break_glass_deploy_and_rollback_are_emergencies_with_open_reviews(client, promo, synced, glass_holder,
                                                                          ops_user, engineer, scientist, auditor):
    synced(promo.name)
    body = {"model": promo.name, "version": 2, "target_alias": "champion", "reason": ""}
    assert post(client, glass_holder, "break_glass", data=body).status_code == 400  # the reason is mandatory
    other_ops = type(ops_user).objects.create_user("ops2", password="x")
    other_ops.groups.add(*ops_user.groups.all())
    refused = post(client, other_ops, "break_glass", data={**body, "reason": "fire"})
    assert refused.status_code == 403  # deploy permission alone is not enough
    done = post(client, glass_holder, "break_glass", data={**body, "reason": "v1 leaks memory in prod"})
    assert done.status_code == 201, done.json()
    req = done.json()
    assert req["state"] == "deployed" and req["emergency"] and req["reviewed_at"] is None
    assert [h["action"] for h in req["history"]] == ["request.created", "request.break_glass", "deploy.started",
                                                     "deploy.succeeded"]
    glass = AuditEvent.objects.get(request_id=req["id"], action="request.break_glass")
    assert glass.after["emergency"] and "group:ml_engineer" in glass.after["approvers_told"]
    assert glass.comment == "v1 leaks memory in prod" and glass.actor_username == glass_holder.username
    assert AuditEvent.objects.get(request_id=req["id"], action="deploy.succeeded").after["emergency"] is True
    # The approvers are mailed at once (the mail is written with the event and sent by a task).
    mailed = Notification.objects.filter(event__audit_seq=glass.seq, kind=MailKind.EMERGENCY)
    assert set(mailed.values_list("user__username", flat=True)) == {engineer.username}
    mv = promo.factory.client.get_model_version(promo.name, "2")
    assert mv.tags["governance.emergency"].startswith(f"break-glass by {glass_holder.username}")
    assert {k: int(v) for k, v in promo.factory.client.get_registered_model(promo.name).aliases.items()} == {
        "champion": 2, "rollback": 1}
    # Had the sync seen the emergency mark before the deploy recorded it, it would say "the console's";
    # the same key written by hand on a version no break-glass deployed is not.
    ModelVersion.objects.filter(model__name=promo.name, version=2).update(tags={})
    promo.factory.client.set_model_version_tag(promo.name, "3", "governance.emergency", "not really")
    synced(promo.name)
    seen = {(e.version, e.before["tag"]): e.after.get("written_by")
            for e in AuditEvent.objects.filter(model_name=promo.name, action="registry.tag_set")}
    assert seen[(2, "governance.emergency")] == seen[(2, "governance.request")] == "console"
    assert seen[(3, "governance.emergency")] is None
    # The open review is on every approver's inbox; the breaker cannot close it, an approver can.
    client.force_login(engineer)
    inbox = client.get(reverse("governance:inbox")).content.decode()
    assert "Open emergency reviews (1)" in inbox and "EMERGENCY" in inbox
    client.force_login(auditor)
    report = client.get(reverse("audit:report_index")).content.decode()
    assert "Open emergency reviews (1)" in report and f"#{req['id']} {promo.name}" in report
    assert post(client, glass_holder, "request_review", req["id"], data={"comment": "fine"}).status_code == 403
    assert post(client, engineer, "request_review", req["id"], data={}).status_code == 400
    # Break-glass rollback: @rollback (v1) goes back to @champion, again without approval.
    back = post(client, glass_holder, "break_glass", data={"model": promo.name, "target_alias": "champion",
                                                           "rollback": True, "reason": "v2 is worse"})
    assert back.status_code == 201 and back.json()["version"] == 1 and back.json()["state"] == "deployed"
    assert promo.factory.client.get_registered_model(promo.name).aliases["champion"] in (1, "1")
    assert sorted(r.pk for r in workflow.open_emergency_reviews(engineer)) == sorted([back.json()["id"], req["id"]])
    closed = post(client, engineer, "request_review", req["id"], data={"comment": "leak confirmed, ok"})
    assert closed.status_code == 200 and closed.json()["reviewed_by"] == engineer.username
    event = AuditEvent.objects.get(request_id=req["id"], action="emergency.review_closed")
    assert event.after == {"review": "closed", "late": False}
    assert [r.pk for r in workflow.open_emergency_reviews(scientist)] == [back.json()["id"]]
    synced(promo.name)
    assert not AuditEvent.objects.filter(action="registry.drift", model_name=promo.name).exists()
    # In an incident even a version failing a gate may go out: the failing gate is on the record.
    unvalidated = post(client, glass_holder, "break_glass", data={"model": promo.name, "version": 3,
                                                                  "target_alias": "champion", "reason": "hotfix"})
    assert unvalidated.status_code == 201 and unvalidated.json()["state"] == "deployed", unvalidated.json()
    gates = AuditEvent.objects.get(request_id=unvalidated.json()["id"], action="request.break_glass").after["gates"]
    assert [g["gate"] for g in gates if not g["passed"]] == ["tag:validation_status"]
