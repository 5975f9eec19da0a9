"""The model-risk portfolio: its counts equal counts made directly in the database; tier filter; CSV;
who may see it."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from governance import audit
from governance.audit.models import AuditEvent
from governance.risk import services
from governance.risk.models import OPEN_FINDING_STATES, Finding, ModelRiskTier
from governance.workflow import services as workflow
from governance.workflow.models import Deployment
from registry_ui.mirror.models import RegisteredModel
from tests.conftest import make_user
from tests.fixtures_workflow import build_promo

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]


def test_portfolio_counts_equal_the_database(client, promo, mlflow_factory, scientist, engineer, ops_user, auditor,
                                             django_assert_max_num_queries):
    engineer2 = make_user("engineer2", "ml_engineer")
    low = build_promo(mlflow_factory)
    low.mirror()
    for name, tier in ((promo.name, "tier1"), (low.name, "tier3")):
        change = services.tier_change_request(actor=scientist, model_name=name, tier=tier, reason="assessed")
        services.tier_change_approve(actor=engineer, change_id=change.pk)
    due = timezone.localdate() + timedelta(days=7)
    for name, version, severity in ((promo.name, 2, "blocking"), (promo.name, None, "major"),
                                    (low.name, 3, "minor"), (low.name, 2, "minor")):
        services.finding_raise(actor=engineer, model_name=name, version=version, severity=severity,
                               description="d", owner_username="engineer2", due_date=due)
    closing = Finding.objects.filter(model__name=low.name, version=2).get()
    services.finding_propose_closure(actor=engineer2, finding_id=closing.pk, note="fixed")
    services.finding_accept_closure(actor=engineer, finding_id=closing.pk)
    req = workflow.promotion_request_create(actor=scientist, model_name=low.name, version=2, target_alias="champion",
                                            justification="tier 3")
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    workflow.promotion_request_deploy(request_id=req.pk, actor=ops_user)
    with transaction.atomic():
        audit.record(actor_name="system:sync", action="registry.drift", model=promo.name, after={"what": "stage"})

    client.force_login(scientist)
    assert client.get(reverse("portfolio:portfolio")).status_code == 403
    client.force_login(auditor)
    with django_assert_max_num_queries(30):
        page = client.get(reverse("portfolio:portfolio"))
    assert page.status_code == 200
    ctx = page.context
    open_ = Finding.objects.filter(state__in=OPEN_FINDING_STATES)
    assert ctx["totals"] == {
        "models": RegisteredModel.objects.count(),
        "open_blocking": open_.filter(severity="blocking").count(),
        "open_major": open_.filter(severity="major").count(),
        "open_minor": open_.filter(severity="minor").count(),
        "findings_overdue": 0,
        "deploys_in_period": Deployment.objects.filter(state="succeeded").count(),
        "drift_in_period": AuditEvent.objects.filter(action="registry.drift").count(),
        "rereview_overdue": ctx["totals"]["rereview_overdue"],
    }
    assert (ctx["totals"]["open_blocking"], ctx["totals"]["open_minor"]) == (1, 1)
    assert ctx["by_tier"] == {t: ModelRiskTier.objects.filter(tier=t).count() for t in ("tier1", "tier3")}
    rows = {r["model"]: r for r in ctx["rows"]}
    assert rows[low.name]["last_deploy"] == Deployment.objects.get(request=req).completed_at
    assert rows[promo.name]["last_deploy"] is None and rows[promo.name]["drift_in_period"] == 1
    # Tier 1 re-certifies every 180 days: v1 was put in Production and @champion by hand, never approved.
    assert rows[promo.name]["rereview_overdue"] == 2 and rows[low.name]["rereview_overdue"] == 0
    filtered = client.get(reverse("portfolio:portfolio"), {"tier": "tier1"}).context["rows"]
    assert [r["model"] for r in filtered] == [promo.name]
    exported = client.get(reverse("portfolio:portfolio_csv"), {"tier": "tier3"})
    table = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(r["model"], r["tier"], r["open_minor"]) for r in table] == [(low.name, "tier3", "1")]

    # The reports page's summary (aggregate queries, no rows) says what the rows add up to, filtered or not.
    from governance.portfolio import selectors

    for params in ({}, {"tier": "tier1"}, {"tier": "tier3"}, {"severity": "minor"}, {"q": low.name},
                   {"overdue": "rereview"}, {"since": "2020-01-01", "until": "2020-12-31"}):
        now = timezone.now()
        full, short = selectors.portfolio(auditor, params, now=now), selectors.summary(auditor, params, now=now)
        assert (short.totals, short.by_tier, short.period) == (full.totals, full.by_tier, full.period), params
        assert short.monthly_table() == full.monthly_table()
    assert selectors.summary(auditor).totals["rereview_overdue"] == 2
