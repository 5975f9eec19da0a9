"""The time machine: what held @champion / Production at a time, who approved it and on what evidence,
for times before, between and after three deploys, on the page and the API."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.workflow import services as workflow
from governance.workflow.timemachine import held_at

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def deploy(promo, version, scientist, engineer, ops_user):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=version,
                                            target_alias="champion", justification=f"v{version} please")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer, comment=f"ok v{version}")
    assert workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user).state == "deployed"
    return req.pk, timezone.now()


def test_what_held_champion_before_between_and_after_three_deploys(client, promo, synced, scientist, engineer,
                                                                   ops_user, auditor):
    synced(promo.name)  # the mirror knows when MLflow created the model
    promo.factory.client.set_model_version_tag(promo.name, "3", "validation_status", "passed")
    before = timezone.now()
    r1, t1 = deploy(promo, 2, scientist, engineer, ops_user)
    r2, t2 = deploy(promo, 3, scientist, engineer, ops_user)
    r3, t3 = deploy(promo, 1, scientist, engineer, ops_user)

    def ask(at, **target):
        return held_at(user=auditor, model_name=promo.name, at=at, **(target or {"target_alias": "champion"}))

    first = ask(before)
    assert (first["version"], first["approval"]) == (1, None)
    assert first["via"] == "held before the console recorded any change of this target"
    for (rid, at, version) in ((r1, t1, 2), (r2, t2, 3), (r3, t3, 1)):
        answer = ask(at)
        assert answer["version"] == version and answer["via"] == "deploy"
        approval = answer["approval"]
        assert approval["request"] == rid and [a["approver"] for a in approval["approved_by"]] == [engineer.username]
        assert approval["evidence"]["candidate"]["version"] == version  # frozen at that approval
        assert approval["deployed_by"] == ops_user.username
    # Between deploys: up to the instant the second deploy is recorded, the first one's holder.
    landed2 = AuditEvent.objects.get(request_id=r2, action="deploy.succeeded").timestamp
    assert ask(landed2 - timedelta(microseconds=1))["version"] == 2
    assert ask(landed2)["version"] == 3
    # @rollback followed each replaced holder; Production never moved (the mirror's state, no record).
    assert ask(t2, target_alias="rollback")["version"] == 2
    assert ask(t3, target_alias="rollback")["version"] == 3
    assert ask(t3, target_stage="Production")["version"] == 1
    assert ask(before - timedelta(days=365))["via"] == "the model did not exist yet"
    # The API and the page give the same answer; the model page carries the form.
    client.force_login(auditor)
    model_page = client.get(reverse("registry:model_detail", args=[promo.name])).content.decode()
    assert f'action="{reverse("governance:time_machine")}"' in model_page and 'type="datetime-local"' in model_page
    api = client.get(reverse("requests_api:held_at"), {"model": promo.name, "target": "alias:champion",
                                                        "at": t2.isoformat()})
    assert api.status_code == 200 and api.json()["version"] == 3 and api.json()["approval"]["request"] == r2
    later = (t3 + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")  # the page's input has whole seconds
    page = client.get(reverse("governance:time_machine"), {"model": promo.name, "target": "alias:champion",
                                                           "at": later})
    assert page.status_code == 200
    assert f"#{r3}</a>" in page.content.decode() and "<strong>v1</strong>" in page.content.decode()
    bad = client.get(reverse("requests_api:held_at"), {"model": promo.name, "target": "alias:champion",
                                                        "at": "yesterday"})
    assert bad.status_code == 400
