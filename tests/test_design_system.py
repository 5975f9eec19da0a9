"""The console's one visual language: numbers to 4 significant figures with the full value on hover,
one date format with relative time and the ISO moment in a tooltip, markdown excerpts sanitised,
the favicon, the drift banner on the model page, and the review page's reading of the evidence."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.urls import reverse

from governance import audit
from governance.workflow.review import gate_rows, metric_direction, metric_rows, timeline
from registry_ui.pages.formatting import number_html, sig4, when_html
from registry_ui.pages.markdown import render_markdown_excerpt
from tests.conftest import make_user


@pytest.mark.parametrize(("value", "text"), [
    (0.9234567, "0.9235"), (1234.567, "1235"), (12345.678, "12350"), (0.000123456, "0.0001235"), (3, "3"),
    (0.98, "0.98"), (-0.5, "-0.5"), (2.5e-7, "2.5e-07"), (None, ""), ("n/a", "n/a"), (float("nan"), "nan"),
])
def test_numbers_have_four_significant_figures(value, text):
    assert sig4(value) == text


def test_the_full_number_is_on_hover_only_when_it_was_shortened():
    assert number_html(0.9234567) == '<span class="number" title="0.9234567">0.9235</span>'
    assert number_html(0.98) == '<span class="number">0.98</span>'
    assert "—" in number_html(None)


def test_one_date_format_with_relative_time_and_iso_tooltip():
    moment = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    html = when_html(moment, now=moment + timedelta(hours=3))
    assert html == ('<time datetime="2026-11-23T08:00:00+00:00" title="2026-11-23T08:00:00+00:00">'
                    "2026-11-23 08:00 UTC (3\xa0hours ago)</time>")
    assert "2026-11-23 08:00 UTC" in when_html("2026-11-23T08:00:00.123456+00:00")  # ISO strings from JSON


def test_markdown_excerpt_renders_inline_and_drops_the_dangerous():
    html = render_markdown_excerpt("# Title\n\nFlags **card fraud** <script>alert(1)</script> [x](javascript:alert(1))")
    assert "<strong>card fraud</strong>" in html
    assert "<script" not in html and "alert(1)" not in html and "javascript:" not in html and "<h1" not in html
    assert len(render_markdown_excerpt("word " * 100)) < 140


@pytest.mark.django_db
def test_favicon_is_served_to_everyone(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"


@pytest.mark.django_db
def test_drift_shows_as_a_banner_on_the_model_page(client, mirror):
    model = mirror.model("fraud")
    mirror.version(model)
    make_user("ana", "data_scientist")
    client.force_login(make_user("eve", "auditor"))
    assert 'id="drift-banner"' not in client.get(reverse("registry:model_detail", args=["fraud"])).content.decode()
    with transaction.atomic():
        audit.record(actor_name="system:sync", action="registry.drift", model="fraud", version=1,
                     before={"stage": "Staging"}, after={"stage": "Production"})
    page = client.get(reverse("registry:model_detail", args=["fraud"])).content.decode()
    banner = page.split('id="drift-banner"')[1].split("</section>")[0]
    assert "1 change in the last 30 days" in banner and "v1 stage: Staging → Production" in banner
    assert "action=registry.drift" in banner and "model=fraud" in banner


def test_metric_direction_comes_from_the_policy_then_the_name():
    rules = {"compare_metric": "auc", "higher_is_better": True, "metric_thresholds": {"latency_ms": {"max": 50}}}
    assert metric_direction("auc", rules) == "higher"
    assert metric_direction("latency_ms", rules) == "lower"
    assert metric_direction("val_loss", {}) == "lower" and metric_direction("f1", {}) == "higher"
    assert metric_direction("rmse", {"compare_metric": "rmse", "higher_is_better": False}) == "lower"


def test_metric_rows_colour_better_and_worse_by_direction():
    rows = {r.key: r for r in metric_rows({"metrics": {"auc": 0.9, "val_loss": 0.3, "new": 1}},
                                          {"metrics": {"auc": 0.8, "val_loss": 0.2}}, {"compare_metric": "auc"})}
    assert rows["auc"].verdict == "better" and round(rows["auc"].delta, 6) == 0.1 and rows["auc"].in_policy
    assert rows["val_loss"].verdict == "worse" and rows["val_loss"].direction == "lower"
    assert rows["new"].delta is None and rows["new"].verdict == ""
    assert next(iter(rows)) == "auc"  # the policy's metrics first


def test_gate_rows_show_threshold_and_value_read():
    rules = {"required_tags": {"validation_status": "passed"}, "metric_thresholds": {"auc": {"min": 0.85}},
             "compare_metric": "auc", "higher_is_better": True}
    gates = [{"gate": "tag:validation_status", "passed": False, "detail": "..."},
             {"gate": "threshold:auc", "passed": True, "detail": "..."},
             {"gate": "not_worse:auc", "passed": True, "detail": "..."},
             {"gate": "lineage", "passed": False, "detail": "no dataset input"}]
    rows = gate_rows(gates, {"tags": {"validation_status": "pending"}, "metrics": {"auc": 0.91}},
                     {"version": 5, "metrics": {"auc": 0.88}}, rules)
    assert [(r.threshold, r.value, r.passed) for r in rows] == [
        ("= passed", "pending", False), ("≥ 0.85", 0.91, True), ("≥ incumbent v5 (0.88)", 0.91, True),
        ("", None, False)]
    assert rows[3].detail == "no dataset input"


class _Req:
    pk, version, model_name, target_label, rollback = 7, 7, "churn", "@champion", False


def test_timeline_reads_as_sentences():
    history = [
        {"at": "2026-11-23T08:00:00+00:00", "actor": "ana", "action": "request.created", "comment": "better auc"},
        {"at": "2026-11-23T09:00:00+00:00", "actor": "bob", "action": "request.approved", "comment": "",
         "after": {"approvals": 1, "quorum": 2}},
        {"at": "2026-11-23T10:00:00+00:00", "actor": "ops", "action": "deploy.succeeded", "comment": "",
         "before": {"version": 5}},
    ]
    lines = [e["text"] for e in timeline(_Req(), history, {"version": 5})]
    assert lines == ["ana requested v7 → @champion (replacing v5)", "bob approved (1 of 2 approvals)",
                     "ops deployed v7 to @champion (replacing v5)"]


@pytest.mark.django_db
def test_admin_shows_recorded_json_indented_and_null_as_a_dash(client, admin_user):
    with transaction.atomic():
        event = audit.record(actor_name="system:sync", action="registry.drift", model="fraud", version=1,
                             before=None, after={"stage": "Production", "aliases": ["champion"]})
    client.force_login(admin_user)
    page = client.get(reverse("admin:governance_auditevent_change", args=[event.pk])).content.decode()
    assert '<pre class="json">{\n  &quot;aliases&quot;: [\n    &quot;champion&quot;\n  ],' in page
    assert '<div class="readonly">null</div>' not in page  # before: nothing recorded, shown as a dash
    assert "Model Governance Console: administration" in page
    home = client.get(reverse("admin:index")).content.decode()
    assert 'id="governance-links"' in home and f'href="{reverse("audit:search")}"' in home
