"""The registry pages in a real Chromium: catalogue search as you type, model and version pages,
the comparison with plotly charts actually drawn, the lineage graph, and descriptions made inert."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from tests.conftest import browser_login, draw_every_chart, make_user
from tests.fixtures_pages import MirrorFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EVIL = """Model **notes**.

<script>alert('script')</script>
<img src="/static/none.png" onerror="alert('img')" id="evil-img">
[click me](javascript:alert('link'))
"""


def seed(n_versions: int = 4) -> None:
    f = MirrorFactory()
    f.synced(ok_at=datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    fraud = f.model("fraud-detector", description="Flags **card fraud** in real time.",
                    tags={"team": "risk", "domain": "cards"})
    for i in range(n_versions):
        f.version(
            fraud, stage="Production" if i == n_versions - 2 else ("Staging" if i == n_versions - 1 else "None"),
            metrics={"train_accuracy": 0.90 + i / 100, "val_accuracy": 0.85 + i / 90, "test_accuracy": 0.84 + i / 95,
                     "val_loss": 0.5 - i / 50, "test_rmse": 3.0 - i / 10},
            params={"learning_rate": str(0.1 / (i + 1)), "max_depth": str(3 + i % 4), "n_estimators": "200",
                    "optimizer": ["adam", "sgd"][i % 2]},
            datasets=[{"name": "transactions-train", "digest": "9f1c2ab0", "context": "training"},
                      {"name": "transactions-eval", "digest": "77aa01c3", "context": "evaluation"}],
            history={"train_loss": [1.0 / (s + 1) + i / 50 for s in range(12)],
                     "val_accuracy": [0.6 + s / 40 + i / 100 for s in range(12)]},
            description=f"Version {i + 1} of the fraud model.",
        )
    f.alias(fraud, "champion", n_versions - 1)
    f.alias(fraud, "challenger", n_versions)
    lite = f.model("fraud-lite", description="Small fraud model", tags={"team": "risk"})
    f.version(lite, datasets=[{"name": "transactions-train", "digest": "9f1c2ab0", "context": "training"}],
              metrics={"val_accuracy": 0.8}, git_commit="")
    churn = f.model("churn-classifier", description="Who leaves", tags={"team": "growth"})
    f.version(churn, with_run=False)


@pytest.fixture
def signed_in(page, live_server):
    seed()
    make_user("anna", "data_scientist")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    browser_login(page, live_server, "anna")
    return errors


def test_catalogue_search_as_you_type(page, live_server, signed_in, screenshot):
    page.goto(f"{live_server.url}/registry/")
    assert page.get_by_role("heading", level=1).inner_text() == "Registered models"
    assert "Registry data as of 2026-11-23 08:00 UTC" in page.locator("#sync-status").inner_text()
    rows = page.locator("table.catalogue tbody tr")
    assert rows.count() == 3
    screenshot("catalogue")
    page.get_by_label("Search").press_sequentially("fraud", delay=30)
    expect(rows).to_have_count(2)
    assert "q=fraud" in page.url  # the filtered view is linkable (hx-push-url)
    assert "churn-classifier" not in page.locator("#catalogue-results").inner_text()
    page.get_by_label("Stage").select_option("Production")
    expect(rows).to_have_count(1)
    row = page.locator("table.catalogue tbody tr").first
    assert "fraud-detector" in row.inner_text() and "v3" in row.inner_text()
    page.get_by_label("Search").fill("")
    page.get_by_label("Tag", exact=True).fill("team=growth")
    page.get_by_label("Stage").select_option("")
    page.get_by_label("Tag", exact=True).press("Enter")
    expect(page.locator("#catalogue-results")).to_contain_text("churn-classifier")
    assert rows.count() == 1
    page.get_by_role("link", name="churn-classifier").click()
    page.wait_for_url("**/registry/models/churn-classifier/")
    assert not [e for e in signed_in if "Content Security Policy" in e]


def test_model_page_and_keyboard_compare(page, live_server, signed_in, screenshot):
    page.goto(f"{live_server.url}/registry/models/fraud-detector/")
    assert page.get_by_role("heading", level=1).inner_text() == "fraud-detector"
    assert page.locator("#model-description strong").inner_text() == "card fraud"
    assert page.locator("table.versions tbody tr").count() == 4
    holders = page.locator("#stage-holders").inner_text()
    assert "Production" in holders and "@champion" in holders
    screenshot("model")
    # Keyboard only: tick two versions with Space, submit with Enter.
    page.get_by_label("Compare version 4").focus()
    page.keyboard.press("Space")
    page.get_by_label("Compare version 2").focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Compare selected versions").focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/registry/compare/**")
    assert page.locator("#compare-metrics thead th").count() == 3
    draw_every_chart(page)


def test_version_page(page, live_server, signed_in, screenshot):
    page.goto(f"{live_server.url}/registry/models/fraud-detector/versions/3/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("fraud-detector")
    splits = page.locator("table.metrics-splits")
    assert [t.strip() for t in splits.locator("thead th").all_inner_texts()] == ["Metric", "train", "val", "test"]
    assert "9f1c2ab0" in page.locator("#datasets").inner_text()
    assert "0123456789abcdef" in page.locator("#source").inner_text()
    assert page.get_by_role("heading", name="Parameters").is_visible()
    screenshot("version")
    page.get_by_role("link", name="Lineage").click()
    page.wait_for_url("**/lineage/")


def test_comparison_draws_plotly_charts_for_twenty_versions(page, live_server, screenshot):
    seed(n_versions=20)
    make_user("erik", "ml_engineer")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    scripts = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    browser_login(page, live_server, "erik")
    versions = ",".join(str(i) for i in range(1, 21))
    page.goto(f"{live_server.url}/registry/compare/?model=fraud-detector&versions={versions}"
              "&baseline=fraud-detector v1")
    page.wait_for_load_state("load")
    charts = page.locator("[data-figure]")
    total = charts.count()
    assert total >= 5  # bars per metric family, history curves, parallel coordinates
    # A chart more than a screen below the viewport waits until the reader scrolls towards it.
    page.wait_for_timeout(300)
    assert page.evaluate("document.getElementById('chart-parcoords').getBoundingClientRect().top > 2 * innerHeight")
    assert page.locator("#chart-parcoords").get_attribute("data-drawn") is None
    draw_every_chart(page)
    # The partial bundle drew them: scatter and bar are all it knows.
    assert [u.rsplit("/", 1)[1] for u in scripts if "plotly" in u] == ["plotly-scatter-bar.min.js"]
    assert sorted(page.evaluate("Object.keys(Plotly.PlotSchema.get().traces)")) == ["bar", "scatter"]
    # One plot SVG per chart (plotly's main-svg plus its hover layer).
    for chart in charts.all():
        assert chart.locator("svg.main-svg").count() >= 1
    # Bars: plotly drew its SVG with one bar trace per version.
    bars = page.locator("#chart-bars-0")
    assert bars.locator("g.trace.bars").count() == 20
    assert bars.locator("g.point path").count() >= 20
    # History curves: one line per version.
    curve = page.locator("[data-figure^=history-]").first
    assert curve.locator("g.trace.scatter path.js-line").count() == 20
    # Parallel coordinates (SVG lines, no WebGL needed): a line per version across param axes.
    assert page.locator("#chart-parcoords g.trace.scatter path.js-line").count() == 20
    assert "optimizer" in page.locator("#chart-parcoords").text_content()
    best = page.locator("#compare-metrics td.best")
    assert best.count() >= 5
    page.get_by_role("link", name="Show all parameters").click()
    page.wait_for_selector("text=Show only differing parameters")
    assert "n_estimators" in page.locator("#compare-params").inner_text()
    draw_every_chart(page)
    screenshot("compare")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "comparison.csv"
    assert not errors, errors


def test_validation_charts_are_drawn_on_the_version_page(page, live_server, signed_in):
    from governance.validation.models import ValidationRun

    ValidationRun.objects.create(
        model_name="fraud-detector", version=4, incumbent_version=3, status="passed", spec_digest="0" * 16,
        spec={"max_latency_p95_ms": 40}, finished_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        result={"latency": [{"batch_size": 1, "p50_ms": 3.1, "p95_ms": 4.0, "p99_ms": 5.2, "repeats": 50},
                            {"batch_size": 100, "p50_ms": 11.0, "p95_ms": 14.5, "p99_ms": 19.0, "repeats": 20}],
                "distribution": {"histogram": {"edges": [0, 0.25, 0.5, 0.75, 1.0], "candidate": [40, 30, 20, 10],
                                               "incumbent": [35, 35, 20, 10]}}})
    page.goto(f"{live_server.url}/registry/models/fraud-detector/versions/4/")
    figures = page.locator("[data-validation-figure]")
    assert figures.count() == 3
    draw_every_chart(page)
    latency = page.locator("[data-validation-figure=latency]")
    assert latency.locator("g.trace.bars").count() == 2
    assert "p95 limit 40 ms" in latency.text_content()  # the limit line's label
    assert page.locator("[data-validation-figure=candidate_hist] g.point path").count() == 4
    assert not signed_in, signed_in  # no console error, no failed script


def test_cross_model_selection_in_the_browser(page, live_server, signed_in):
    page.goto(f"{live_server.url}/registry/compare/?pick=fraud-detector")
    page.get_by_label("v2").check()
    page.get_by_role("button", name="Compare").click()
    page.get_by_label("Model").select_option("fraud-lite")
    page.get_by_role("button", name="Show its versions").click()
    page.get_by_label("v1").check()
    page.get_by_role("button", name="Compare", exact=True).click()
    # The click loads a new page; the first comparison's table is on screen until it arrives, so wait
    # for the heading of the second model rather than reading the old table's heads at once.
    heads = page.locator("#compare-metrics thead")
    expect(heads).to_contain_text("fraud-lite v1")
    expect(heads).to_contain_text("fraud-detector v2")
    draw_every_chart(page)


def test_lineage_graph(page, live_server, signed_in, screenshot):
    page.goto(f"{live_server.url}/registry/models/fraud-lite/versions/1/lineage/")
    graph = page.locator("#lineage-graph")
    assert graph.is_visible()
    assert graph.locator("a.node").count() == graph.locator("rect").count() >= 5
    assert "GAP: No git commit" in graph.text_content()
    assert "1 gap in lineage" in page.locator(".gap-summary").inner_text()
    screenshot("lineage")
    # Every node is a link, reachable from the keyboard: follow the shared-data version to its lineage.
    page.locator("a.node-shared_version").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/registry/models/fraud-detector/versions/*/lineage/")
    assert page.locator(".ok-text").inner_text().startswith("Lineage complete")
    page.goto(f"{live_server.url}/registry/models/churn-classifier/versions/1/lineage/")
    assert "GAP: No source run" in page.locator("#lineage-graph").text_content()


def test_description_xss_is_inert_in_the_browser(page, live_server):
    f = MirrorFactory()
    m = f.model("xss-model", description=EVIL)
    f.version(m, description=EVIL)
    make_user("anna", "data_scientist")
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    browser_login(page, live_server, "anna")
    for url in ("/registry/models/xss-model/", "/registry/models/xss-model/versions/1/"):
        page.goto(f"{live_server.url}{url}")
        page.wait_for_load_state("load")
        md = page.locator(".markdown").first
        assert md.locator("strong").inner_text() == "notes"
        assert md.locator("script").count() == 0
        assert page.locator("#evil-img").count() == 0  # the id attribute was stripped too
        img = md.locator("img")
        assert img.count() == 1 and img.get_attribute("onerror") is None
        link = md.get_by_text("click me")
        assert link.get_attribute("href") is None
        link.click()
    page.wait_for_timeout(300)  # let any late handler fire; nothing may
    assert dialogs == []


def test_unknown_model_is_a_404_page(page, live_server, signed_in):
    response = page.goto(f"{live_server.url}/registry/models/does-not-exist/")
    assert response.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Not found"
