"""Re-certification: a policy gives approvals of protected holders a validity; holders whose approval is
older (or missing) enter the re-review queue until an approver re-certifies them; the reminder lists
them and the auditor's reports page shows them."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.notify.models import MailKind, Notification
from governance.workflow import services as workflow
from governance.workflow.models import ModelPolicy
from governance.workflow.recertification import (
    recertification_confirm,
    recertification_queue,
    recertification_remind,
)

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def due(user, **kw):
    return [(d["model"], d["version"], d["target"]) for d in recertification_queue(user, **kw)]


def test_old_or_missing_approvals_enter_the_queue_until_recertified(client, promo, scientist, engineer, ops_user,
                                                                    auditor):
    name = promo.name
    assert (name, 1, "Production") not in due(auditor)  # no validity set: approvals never expire
    ModelPolicy.objects.create(model=promo.model, approval_validity_days=180)
    # v1 was put in Production and @champion by hand: nothing ever approved it.
    assert due(auditor) == [(name, 1, "Production"), (name, 1, "@champion")]
    req = workflow.promotion_request_create(actor=scientist, model_name=name, version=2, target_alias="champion",
                                            justification="better")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    assert due(auditor) == [(name, 1, "Production")]  # @champion: v2, approved just now
    with pytest.raises(PermissionDenied):
        recertification_confirm(actor=scientist, model_name=name, version=1, target="Production", comment="fine")
    client.force_login(engineer)
    page = client.post(reverse("governance:recertification"), {"model_name": name, "version": 1,
                                                                "target": "Production", "comment": "still good"})
    assert page.status_code == 302
    assert due(auditor) == []
    event = AuditEvent.objects.get(action="recertification.confirmed", model_name=name)
    assert (event.version, event.after["target"], event.actor_username) == (1, "Production", engineer.username)
    # 181 days on, both approvals have lapsed: the reminder names them in one event for the model, and
    # the model's approvers are mailed.
    later = timezone.now() + timedelta(days=181)
    assert sorted(due(auditor, now=later)) == sorted([(name, 1, "Production"), (name, 2, "@champion")])
    reminded = recertification_remind(now=later)
    assert sorted((d["version"], d["target"]) for d in reminded[name]) == [(1, "Production"), (2, "@champion")]
    reminder = AuditEvent.objects.get(action="recertification.reminded")
    assert reminder.model_name == name and len(reminder.after["due"]) == 2
    mailed = Notification.objects.filter(event__audit_seq=reminder.seq, kind=MailKind.RECERTIFICATION)
    assert engineer.username in set(mailed.values_list("user__username", flat=True))
    # The queue page and the auditor's reports page list what is due now (nothing, after re-certifying).
    client.force_login(auditor)
    queue_page = client.get(reverse("governance:recertification")).content.decode()
    assert "Nothing is due." in queue_page
    report = client.get(reverse("audit:report_index")).content.decode()
    assert "Due for re-certification (0)" in report and "Open emergency reviews (0)" in report


def test_the_queue_is_shown_a_page_at_a_time_and_the_report_lists_the_oldest(client, promo, engineer, auditor,
                                                                              monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from governance.workflow import panels, views

    ModelPolicy.objects.create(model=promo.model, approval_validity_days=180)
    monkeypatch.setattr(views, "RECERTIFICATION_PAGE", 1)
    monkeypatch.setattr(panels, "REPORT_QUEUE", 1)
    url = reverse("governance:recertification")
    client.force_login(engineer)
    first = client.get(url).content.decode()
    assert "2 holders due: 1-1 shown" in first and f"{promo.name}</td><td>v1</td><td>Production" in first
    assert 'href="?page=2">next</a>' in first and "Re-certify</button>" in first  # an approver's buttons
    second = client.get(url, {"page": 2}).content.decode()
    assert "@champion" in second and "Production</td>" not in second and "Re-certify</button>" in second
    # The buttons are decided for the whole page at once: as many queries for two holders as for one.
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    monkeypatch.setattr(views, "RECERTIFICATION_PAGE", 2)
    with CaptureQueriesContext(connection) as two:
        both = client.get(url).content.decode()
    assert both.count("Re-certify</button>") == 2 and len(two.captured_queries) == len(one.captured_queries)
    refused = client.get(url, {"page": "last"})
    assert refused.status_code == 400 and "page: Enter a whole number." in refused.content.decode()
    assert "Nothing is due." not in refused.content.decode()  # a refused page says nothing of the queue

    client.force_login(auditor)  # may see the queue, may not re-certify
    assert "Re-certify</button>" not in client.get(url).content.decode()
    report = client.get(reverse("audit:report_index")).content.decode()
    assert "Due for re-certification (2)" in report
    assert "The first 1: the never approved, then the oldest approval; all 2 on" in report
    assert f'href="{url}"' in report
