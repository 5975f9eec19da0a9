"""Model risk against the real MLflow server: a tier changes only through a two-person change and sets
the policy (quorum, required validation, re-certification period); a blocking finding holds back
approval until its closure is accepted by someone other than its owner; every step is audited and shown
on the version page, the review page and the auditor's report; overdue findings are reminded."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.errors import InvalidInput, PolicyViolation, TransitionNotAllowed
from governance.notify.models import MailKind, Notification
from governance.risk import selectors as risk
from governance.risk import services
from governance.risk.models import Finding, FindingState, TierChange
from governance.workflow import services as workflow
from governance.workflow.inbox import awaiting_my_action
from governance.workflow.models import ModelPolicy, RequestState
from governance.workflow.policies import effective_policy
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def actions(name):
    return list(AuditEvent.objects.filter(model_name=name, action__regex=r"^(tier|finding)\.")
                .order_by("seq").values_list("action", flat=True))


def set_tier(model_name, tier, requester, approver):
    change = services.tier_change_request(actor=requester, model_name=model_name, tier=tier, reason="assessed")
    return services.tier_change_approve(actor=approver, change_id=change.pk, comment="agreed")


@pytest.fixture
def engineer2(db):
    return make_user("engineer2", "ml_engineer")


def test_a_tier_changes_only_with_a_second_persons_approval_and_sets_the_policy(promo, scientist, engineer,
                                                                               engineer2):
    name = promo.name
    assert "risk_tier" not in effective_policy(promo.model)  # no tier: the global policy, unchanged
    change = services.tier_change_request(actor=engineer, model_name=name, tier="tier1", reason="credit decisions")
    with pytest.raises(PolicyViolation, match="Separation of duties"):
        services.tier_change_approve(actor=engineer, change_id=change.pk)
    with pytest.raises(PermissionDenied):  # approving takes an approver
        services.tier_change_approve(actor=scientist, change_id=change.pk)
    with pytest.raises(TransitionNotAllowed, match="already pending"):
        services.tier_change_request(actor=scientist, model_name=name, tier="tier2", reason="x")
    with pytest.raises(InvalidInput, match="reason"):
        services.tier_change_request(actor=scientist, model_name=promo.name, tier="tier2", reason="  ")
    assert risk.tier_of(promo.model) == "" and actions(name) == ["tier.change_requested"]
    services.tier_change_approve(actor=engineer2, change_id=change.pk, comment="agreed")
    assert risk.tier_of(promo.model) == "tier1"
    assert actions(name) == ["tier.change_requested", "tier.changed"]
    changed = AuditEvent.objects.get(action="tier.changed", model_name=name)
    assert (changed.before, changed.after["tier"], changed.actor_username) == ({"tier": ""}, "tier1", "engineer2")
    policy = effective_policy(promo.model)
    assert (policy["risk_tier"], policy["quorum"], policy["require_validation"], policy["approval_validity_days"]) \
        == ("tier1", 2, True, 180)
    ModelPolicy.objects.create(model=promo.model, production_quorum=3, approval_validity_days=30)
    assert (effective_policy(promo.model)["quorum"], effective_policy(promo.model)["approval_validity_days"]) == (3, 30)
    # Rejected changes leave the tier alone.
    other = services.tier_change_request(actor=scientist, model_name=name, tier="tier3", reason="low")
    with pytest.raises(InvalidInput, match="comment"):
        services.tier_change_reject(actor=engineer, change_id=other.pk, comment="")
    services.tier_change_reject(actor=engineer, change_id=other.pk, comment="still tier 1")
    assert risk.tier_of(promo.model) == "tier1" and TierChange.objects.get(pk=other.pk).state == "rejected"


def test_tier1_needs_a_validation_and_its_quorum_tier3_moves_with_one_approval(promo, scientist, engineer, engineer2,
                                                                              settings):
    name = promo.name
    settings.MODEL_CARD_TIER_RULES = {}  # the Tier 1 card gate has its own test (tests/test_cards.py)
    set_tier(name, "tier1", scientist, engineer)
    req = workflow.promotion_request_create(actor=scientist, model_name=name, version=2, target_alias="champion",
                                            justification="better")
    with pytest.raises(PolicyViolation, match="requires a validation"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    # The tier's quorum (validation not required in this variant of the table).
    settings.RISK_TIER_POLICY = {**settings.RISK_TIER_POLICY,
                                 "tier1": {"quorum": 2, "require_validation": False, "approval_validity_days": 180}}
    assert workflow.promotion_request_approve(request_id=req.pk, actor=engineer).state == RequestState.PENDING
    assert workflow.promotion_request_approve(request_id=req.pk, actor=engineer2).state == RequestState.APPROVED
    workflow.promotion_request_cancel(request_id=req.pk, actor=scientist)
    set_tier(name, "tier3", scientist, engineer2)
    req = workflow.promotion_request_create(actor=scientist, model_name=name, version=2, target_alias="champion",
                                            justification="low risk")
    assert workflow.promotion_request_approve(request_id=req.pk, actor=engineer).state == RequestState.APPROVED


def test_a_blocking_finding_blocks_approval_until_another_approver_accepts_its_closure(
        client, promo, scientist, engineer, engineer2, auditor):
    name = promo.name
    due = timezone.localdate() + timedelta(days=14)
    with pytest.raises(PermissionDenied):  # findings are raised by approvers
        services.finding_raise(actor=scientist, model_name=name, version=2, severity="blocking",
                               description="x", owner_username="engineer2", due_date=due)
    with pytest.raises(InvalidInput, match="description"):
        services.finding_raise(actor=engineer, model_name=name, version=2, severity="blocking",
                               description=" ", owner_username="engineer2", due_date=due)
    finding = services.finding_raise(actor=engineer, model_name=name, version=2, severity="blocking",
                                     description="Leakage: a feature is computed after the outcome",
                                     owner_username="engineer2", due_date=due)
    services.finding_raise(actor=engineer, model_name=name, version=3, severity="blocking",
                           description="v3 only", owner_username="engineer2", due_date=due)
    req = workflow.promotion_request_create(actor=scientist, model_name=name, version=2, target_alias="champion",
                                            justification="better")
    with pytest.raises(PolicyViolation, match=f"Blocking finding #{finding.pk} on v2"):
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer2)
    assert req.pk not in [r.pk for r in awaiting_my_action(engineer2)[0]]  # the inbox agrees
    # The review page shows the approve button disabled with the reason, and the findings.
    client.force_login(engineer2)
    page = client.get(reverse("governance:request_detail", args=[req.pk])).content.decode()
    assert f"Blocking finding #{finding.pk} on v2" in page and "Leakage: a feature" in page
    assert "v3 only" not in page
    with pytest.raises(InvalidInput, match="remediation note"):
        services.finding_propose_closure(actor=engineer2, finding_id=finding.pk, note="")
    services.finding_propose_closure(actor=engineer2, finding_id=finding.pk, note="feature dropped, see run abc")
    with pytest.raises(PolicyViolation, match="Blocking finding"):  # proposed is not closed
        workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    with pytest.raises(PolicyViolation, match="owner of a finding"):
        services.finding_accept_closure(actor=engineer2, finding_id=finding.pk)
    assert Finding.objects.get(pk=finding.pk).state == FindingState.CLOSURE_PROPOSED
    services.finding_decline_closure(actor=engineer, finding_id=finding.pk, comment="show the re-run")
    services.finding_propose_closure(actor=engineer2, finding_id=finding.pk, note="re-run validation #4 passed")
    services.finding_accept_closure(actor=engineer, finding_id=finding.pk, comment="verified")
    closed = Finding.objects.get(pk=finding.pk)
    assert (closed.state, closed.closed_by, closed.remediation_note) == ("closed", "engineer",
                                                                         "re-run validation #4 passed")
    assert req.pk in [r.pk for r in awaiting_my_action(engineer2)[0]]
    assert workflow.promotion_request_approve(request_id=req.pk, actor=engineer2).state == RequestState.APPROVED
    assert actions(name) == ["finding.raised", "finding.raised", "finding.closure_proposed",
                             "finding.closure_declined", "finding.closure_proposed", "finding.closed"]
    # The version page: the finding and its history; the auditor's report: open findings (v3's).
    version_page = client.get(reverse("registry:version_detail", args=[name, 2])).content.decode()
    assert "Leakage: a feature" in version_page and "finding.closure_declined" in version_page
    client.force_login(auditor)
    report = client.get(reverse("audit:report_index")).content.decode()
    assert "Open model-risk findings (1)" in report and "v3 only" in report


def test_refusals_on_the_pages_change_nothing(client, promo, scientist, engineer, engineer2):
    name = promo.name
    client.force_login(engineer)
    page = client.post(reverse("risk:finding_raise"), {"model": name, "version": 2, "severity": "blocking",
                                                       "description": "", "owner": "engineer2",
                                                       "due_date": "2030-01-01"})
    assert page.status_code == 400 and "A description of the finding is required." in page.content.decode()
    page = client.post(reverse("risk:finding_raise"), {"model": name, "severity": "major", "description": "d",
                                                       "owner": "nobody", "due_date": "2030-01-01"})
    assert page.status_code == 400 and "No active user" in page.content.decode()
    assert not Finding.objects.exists()
    page = client.post(reverse("risk:tier_change_request"), {"model": name, "tier": "tier1", "reason": "r"})
    assert page.status_code == 302
    change = TierChange.objects.get()
    page = client.post(reverse("risk:tier_change_decide", args=[change.pk, "approve"]), {})
    assert page.status_code == 400 and "Separation of duties" in page.content.decode()
    assert risk.tier_of(promo.model) == ""
    finding = services.finding_raise(actor=engineer, model_name=name, version=None, severity="minor",
                                     description="docs thin", owner_username="engineer2",
                                     due_date=timezone.localdate())
    client.force_login(engineer2)
    assert client.post(reverse("risk:finding_transition", args=[finding.pk, "propose"]),
                       {"note": "written"}).status_code == 302
    page = client.post(reverse("risk:finding_transition", args=[finding.pk, "accept"]), {})
    assert page.status_code == 400 and "owner of a finding" in page.content.decode()
    assert Finding.objects.get(pk=finding.pk).state == FindingState.CLOSURE_PROPOSED
    # The model page shows the tier panel with the pending change, decidable by the other approver.
    page = client.get(reverse("registry:model_detail", args=[name])).content.decode()
    assert "Risk tier:" in page and "Approve tier change" in page
    assert client.post(reverse("risk:tier_change_decide", args=[change.pk, "approve"]), {}).status_code == 302
    catalogue = client.get(reverse("registry:catalogue")).content.decode()
    assert "Tier 1" in catalogue


def test_overdue_findings_remind_their_owner_and_the_approvers(promo, scientist, engineer, engineer2):
    assert "governance.risk.tasks.FINDINGS_JOB" in settings.SCHEDULED_JOBS
    late = services.finding_raise(actor=engineer, model_name=promo.name, version=2, severity="major",
                                  description="calibration", owner_username="scientist",
                                  due_date=timezone.localdate() - timedelta(days=1))
    services.finding_raise(actor=engineer, model_name=promo.name, version=2, severity="minor",
                           description="not yet due", owner_username="scientist",
                           due_date=timezone.localdate() + timedelta(days=1))
    assert services.findings_remind() == {promo.name: [late.pk]}
    event = AuditEvent.objects.get(action="finding.overdue")
    mailed = set(Notification.objects.filter(event__audit_seq=event.seq, kind=MailKind.FINDINGS)
                 .values_list("user__username", flat=True))
    assert {"scientist", "engineer", "engineer2"} <= mailed


def test_the_reports_page_shows_the_most_severe_open_findings_first_and_how_many_there_are(client, auditor,
                                                                                          monkeypatch):
    from governance.risk import panels
    from registry_ui.mirror.models import RegisteredModel

    monkeypatch.setattr(panels, "REPORT_FINDINGS", 2)
    model = RegisteredModel.objects.create(name="many-findings")
    today = timezone.localdate()
    for severity, days, text in (("minor", 1, "minor, due first"), ("major", 9, "major, due later"),
                                 ("blocking", 30, "blocking, due last"), ("major", 3, "major, due sooner")):
        Finding.objects.create(model=model, severity=severity, description=text, owner_username="o",
                               due_date=today + timedelta(days=days), raised_by="r")
    Finding.objects.create(model=model, severity="blocking", description="closed already", owner_username="o",
                           due_date=today, raised_by="r", state=FindingState.CLOSED)
    client.force_login(auditor)
    report = client.get(reverse("audit:report_index")).content.decode()
    assert "Open model-risk findings (4)" in report and "The 2 most severe, then oldest due, of 4" in report
    shown = [text for text in ("blocking, due last", "major, due sooner", "major, due later", "minor, due first",
                               "closed already") if text in report]
    assert shown == ["blocking, due last", "major, due sooner"]
    assert report.index("blocking, due last") < report.index("major, due sooner")
