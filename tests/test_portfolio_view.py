"""The portfolio without MLflow (its reads are the console's own tables): filters, the monthly charts,
the CSV of the filtered set, 400 on a bad filter, and queries that do not grow with the number of models
(the re-certification queue included)."""

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.risk import services as risk
from governance.risk.models import OPEN_FINDING_STATES, Finding
from governance.workflow.models import Approval, Deployment, ModelPolicy, PromotionRequest, RequestState
from governance.workflow.recertification import recertification_queue
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def _model(name: str, *, production: int | None = 1, champion: int | None = None) -> RegisteredModel:
    model = RegisteredModel.objects.create(name=name)
    for n in (1, 2):
        ModelVersion.objects.create(model=model, version=n, stage="Production" if n == production else "None")
    if champion:
        ModelAlias.objects.create(model=model, alias="champion", version=champion)
    return model


def _deployed(model, version: int, *, when, target_alias="champion", approver="engineer2") -> Deployment:
    """A deploy that happened (rows as the workflow leaves them), at `when`."""
    req = PromotionRequest.objects.create(model=model, model_name=model.name, version=version,
                                          target_alias=target_alias, justification="j", requester_username="s",
                                          state=RequestState.DEPLOYED)
    approval = Approval.objects.create(request=req, approver_username=approver)
    Approval.objects.filter(pk=approval.pk).update(created_at=when)
    return Deployment.objects.create(request=req, model_name=model.name, version=version, kind="alias",
                                     target=target_alias, state="succeeded", actor_username="ops",
                                     completed_at=when)


def _tier(model, tier, scientist, engineer):
    change = risk.tier_change_request(actor=scientist, model_name=model.name, tier=tier, reason="assessed")
    risk.tier_change_approve(actor=engineer, change_id=change.pk)


@pytest.fixture
def estate(scientist, engineer):
    """Three models: a Tier 1 with a blocking finding, overdue; a Tier 3 deployed twice; one unassigned."""
    make_user("engineer2", "ml_engineer")
    high, low, plain = _model("credit-score", champion=1), _model("shelf-sorter", champion=2), _model("plain")
    _tier(high, "tier1", scientist, engineer)
    _tier(low, "tier3", scientist, engineer)
    soon, past = timezone.localdate() + timedelta(days=7), timezone.localdate() - timedelta(days=3)
    risk.finding_raise(actor=engineer, model_name=high.name, version=2, severity="blocking", description="bias",
                       owner_username="engineer2", due_date=past)
    risk.finding_raise(actor=engineer, model_name=high.name, version=None, severity="minor", description="docs",
                       owner_username="scientist", due_date=soon)
    closed = risk.finding_raise(actor=engineer, model_name=low.name, version=None, severity="major",
                                description="leak", owner_username="scientist", due_date=soon)
    risk.finding_propose_closure(actor=scientist, finding_id=closed.pk, note="fixed, see run 42")
    risk.finding_accept_closure(actor=engineer, finding_id=closed.pk)
    now = timezone.now()
    _deployed(low, 2, when=now - timedelta(days=1))
    _deployed(low, 1, when=now - timedelta(days=400))  # before the default period of 12 months
    return {"high": high, "low": low, "plain": plain}


def _page(client, **params):
    return client.get(reverse("portfolio:portfolio"), params)


def test_filters_narrow_the_rows_and_the_csv_is_the_filtered_set(client, estate, auditor):
    client.force_login(auditor)
    names = lambda **p: [r["model"] for r in _page(client, **p).context["rows"]]  # noqa: E731
    assert names() == ["credit-score", "plain", "shelf-sorter"]
    assert names(tier="tier1") == ["credit-score"] and names(tier="none") == ["plain"]
    assert names(severity="blocking") == ["credit-score"] and names(severity="major") == []  # closed
    assert names(owner="scientist") == ["credit-score"] and names(owner="engineer2") == ["credit-score"]
    assert names(overdue="findings") == ["credit-score"]
    assert names(state="blocked") == ["credit-score"] and names(q="shelf") == ["shelf-sorter"]
    assert names(state="production") == ["credit-score", "plain", "shelf-sorter"]
    # Tier 1 re-certifies every 180 days; credit-score's holders were never approved: overdue now.
    assert names(overdue="rereview") == ["credit-score"]
    csv_page = client.get(reverse("portfolio:portfolio_csv"), {"tier": "tier3"})
    assert csv_page.status_code == 200 and csv_page["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(csv_page.content.decode())))
    assert [(r["model"], r["tier"], r["deploys_in_period"], r["open_major"]) for r in table] == [
        ("shelf-sorter", "tier3", "1", "0")]
    page = _page(client, tier="tier1")
    assert 'href="/portfolio/portfolio.csv?tier=tier1"' in page.content.decode()
    # An empty cell stays empty (only text starting with = + - @ is escaped against spreadsheet formulas).
    plain = next(csv.DictReader(io.StringIO(client.get(reverse("portfolio:portfolio_csv"), {"q": "plain"})
                                            .content.decode())))
    assert (plain["tier"], plain["validation"], plain["last_deploy"]) == ("", "", "")


def test_totals_and_months_equal_counts_made_in_the_database(client, estate, auditor):
    client.force_login(auditor)
    page = _page(client)
    ctx = page.context
    open_ = Finding.objects.filter(state__in=OPEN_FINDING_STATES)
    assert ctx["totals"]["open_blocking"] == open_.filter(severity="blocking").count() == 1
    assert ctx["totals"]["findings_overdue"] == open_.filter(due_date__lt=timezone.localdate()).count() == 1
    start, end = ctx["period"]
    assert ctx["totals"]["deploys_in_period"] == Deployment.objects.filter(
        completed_at__gte=start, completed_at__lte=end, state="succeeded").count() == 1
    months = {m["month"]: m for m in ctx["months"]}
    assert len(months) == 12
    this_month = timezone.localdate().strftime("%Y-%m")
    # Raised this month: blocking, minor and major (since closed); closed this month: the major one.
    assert (months[this_month]["Blocking"], months[this_month]["Major"], months[this_month]["Minor"],
            months[this_month]["Closed"]) == (1, 1, 1, 1)
    yesterday = timezone.localtime(timezone.now() - timedelta(days=1)).strftime("%Y-%m")
    assert months[yesterday]["deploys"] >= 1 and sum(m["deploys"] for m in months.values()) == 1
    # The charts are plotly figures drawn by the static charts.js, data through json_script.
    figures = ctx["figures"]
    assert [t["name"] for t in figures["deploys"]["data"]] == ["Tier 3"]
    assert [t["type"] for t in figures["findings"]["data"]] == ["bar", "bar", "bar", "scatter"]
    body = page.content.decode()
    assert 'id="portfolio-figures"' in body and "js/charts.js" in body and "plotly-scatter-bar.min.js" in body
    # A period from the year before picks the older deploy only.
    old = timezone.localtime(timezone.now() - timedelta(days=400)).date()
    ctx = _page(client, since=old.replace(day=1).isoformat(), until=(old + timedelta(days=1)).isoformat()).context
    assert ctx["totals"]["deploys_in_period"] == 1 and len(ctx["months"]) in (1, 2)


@pytest.mark.parametrize("params", [{"tier": "tier9"}, {"state": "nope"}, {"since": "yesterday"},
                                    {"since": "2026-05-02", "until": "2026-05-01"}, {"owner": "a\nb"}])
def test_a_bad_filter_is_a_400_naming_the_field(client, auditor, params):
    client.force_login(auditor)
    page = _page(client, **params)
    assert page.status_code == 400
    field = next(iter(params)) if "until" not in params else "until"
    assert f"{field}:" in page.context["error"]
    assert client.get(reverse("portfolio:portfolio_csv"), params).status_code == 400


def test_who_sees_the_portfolio(client, role_users, estate):
    for role, status in {"scientist": 403, "ops": 403, "outsider": 403, "engineer": 200, "auditor": 200,
                         "admin": 200}.items():
        client.force_login(role_users[role])
        for name in ("portfolio:portfolio", "portfolio:portfolio_csv"):
            assert client.get(reverse(name)).status_code == status, (role, name)


def _scale(n: int, scientist, engineer) -> None:
    """n more Tier 1 models with holders, findings, deploys and re-certifications."""
    from governance.workflow.models import Recertification

    now = timezone.now()
    for i in range(n):
        model = _model(f"bulk-{n}-{i}", champion=2)
        ModelPolicy.objects.create(model=model, approval_validity_days=30)
        _deployed(model, 2, when=now - timedelta(days=40 + i))
        Recertification.objects.create(model_name=model.name, version=1, target="Production", approver_username="e",
                                       comment="ok")
        Finding.objects.create(model=model, severity="minor", description="d", owner_username="scientist",
                               due_date=date(2026, 1, 1), raised_by="engineer")


def test_queries_do_not_grow_with_the_number_of_models(client, estate, auditor, scientist, engineer,
                                                       django_assert_max_num_queries):
    client.force_login(auditor)
    _page(client)  # warm per-process caches (content types, permissions)
    recertification_queue(auditor)  # and the user's permission cache

    def count() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert _page(client, state="production").status_code == 200
        with CaptureQueriesContext(connection) as queue:
            recertification_queue(auditor)
        return len(page.captured_queries), len(queue.captured_queries)

    _scale(3, scientist, engineer)
    small = count()
    _scale(30, scientist, engineer)
    assert count() == small
    assert small[1] <= 8
    with django_assert_max_num_queries(30):
        _page(client, overdue="any", severity="minor", state="production")
    due = {(d["model"], d["version"], d["target"]) for d in recertification_queue(auditor)}
    # each bulk model: @champion v2 approved 40+ days ago (validity 30) is due; Production v1 re-certified now is not
    assert ("bulk-3-0", 2, "@champion") in due and ("bulk-3-0", 1, "Production") not in due


def test_a_period_may_start_in_an_earlier_year(client, auditor):
    client.force_login(auditor)
    ctx = _page(client, since="2025-11-15", until="2026-02-03").context
    assert [m["month"] for m in ctx["months"]] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert ctx["period"][0] == datetime(2025, 11, 15, tzinfo=timezone.get_current_timezone())


def test_the_auditor_report_includes_the_portfolio_of_its_period(client, estate, auditor, scientist):
    client.force_login(auditor)
    old = timezone.localtime(timezone.now() - timedelta(days=400)).date()
    page = client.get(reverse("audit:report_index"), {"since": old.replace(day=1).isoformat(),
                                                      "until": old.isoformat()})
    assert page.status_code == 200
    body = page.content.decode()
    assert f"Model-risk portfolio, {old.replace(day=1).isoformat()} to {old.isoformat()}" in body
    assert 'id="report-portfolio-figures"' in body and "1 deploy," in body  # the older deploy only
    (section,) = [c for t, c in page.context["sections"] if t == "risk/audit_portfolio.html"]
    assert [m["month"] for m in section["months"]] == [old.strftime("%Y-%m")]
    assert section["portfolio"].totals["deploys_in_period"] == 1
    period = {"since": old.replace(day=1).isoformat(), "until": old.isoformat()}
    rows = _page(client, **period).context["rows"]  # the portfolio page of that period: whose deploy it was
    assert {r["model"]: r["deploys_in_period"] for r in rows if r["deploys_in_period"]} == {"shelf-sorter": 1}
    # The models themselves are on the portfolio page, a page at a time, not all of them on this one.
    assert 'id="audit-portfolio-models"' not in body
    assert reverse("portfolio:portfolio") + "?since=" in body
    assert client.get(reverse("audit:report_index"), {"since": "2026-02-30"}).status_code == 400
    client.force_login(scientist)  # no approver, no auditor: the reports page without the portfolio
    assert "audit-portfolio" not in client.get(reverse("audit:report_index")).content.decode()


def test_the_table_is_paged_while_totals_and_csv_cover_every_model(client, auditor, settings, monkeypatch):
    from governance.portfolio import views

    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    for i in range(5):
        RegisteredModel.objects.create(name=f"m{i}")
    client.force_login(auditor)
    second = _page(client, page=2, q="m")
    assert [r["model"] for r in second.context["rows"]] == ["m2", "m3"] and second.context["totals"]["models"] == 5
    assert 'href="?q=m&amp;page=3"' in second.content.decode()
    assert len(client.get(reverse("portfolio:portfolio_csv"), {"q": "m"}).content.decode().splitlines()) == 6
