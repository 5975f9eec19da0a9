"""`manage.py benchmark` at a tiny size: it completes and its JSON carries every figure.

No timing assertions: speed is reported by the benchmark, never asserted by the test suite.
"""

import json
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from benchmarks.measure import p95
from benchmarks.report import FIGURES

pytestmark = pytest.mark.mlflow  # seeds a store and starts its own real `mlflow server`


TINY = {"models": 3, "versions_per_model": 2, "wide_versions": 10}


@pytest.fixture(autouse=True)
def _mlflow_without_job_runner(monkeypatch):
    """The benchmark's own `mlflow server` inherits this environment: without MLflow 3's job runner
    (GenAI jobs, nothing a registry uses) it starts in a fraction of the CPU, as the suite's own do."""
    monkeypatch.setenv("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Where the tiny runs keep their seeded MLflow store (--mlflow-store), shared by this module's tests."""
    return tmp_path_factory.mktemp("store") / "mlflow.db"


def test_benchmark_at_tiny_size_reports_every_figure(tmp_path, capsys, store):
    path = tmp_path / "bench.json"
    call_command("benchmark", models=3, versions_per_model=2, wide_versions=10, audit_events=100, repeat=1,
                 page_samples=2, json_path=str(path), mlflow_store=str(store))

    report = json.loads(path.read_text())
    figures = report["figures"]
    assert list(figures) == [name for name, _, _ in FIGURES]
    for name, figure in figures.items():
        assert {"unit", "median", "p95", "n", "ratio", "note"} <= set(figure), name
        # A figure is either measured or says why not (e.g. "not built yet").
        assert figure["median"] is not None or figure["note"], name
    # What this harness measures on its own: seeding and the REST floor over the whole seeded registry.
    assert figures["seed_mlflow"]["versions"] == 3 * 2 + 10
    assert figures["floor_total"]["n"] == 1
    assert (figures["floor_total"]["models"], figures["floor_total"]["versions"], figures["floor_total"]["runs"]) == (
        4, 16, 16)
    # Histories on a share of the models (here the first of three) and always on the wide model: the floor
    # read loss and val_loss of those runs only (the others logged them once, at step 0).
    assert figures["floor_total"]["histories"] == 2 * (2 + 10)
    assert figures["seed_audit"]["events"] == 100
    assert report["config"]["spec"]["models"] == 3
    # The console side ran in a scratch database of the same kind as the suite's own.
    expected = "postgresql" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "sqlite"
    assert report["config"]["database"] == expected
    # The portfolio page was measured on the seeded tiers and findings (an auditor sees every model).
    assert figures["page_portfolio"]["n"] >= 1 and figures["queries_portfolio"]["n"] == 1
    if figures["sync_unchanged"]["n"]:
        assert figures["sync_unchanged_rows_written"]["median"] == 0  # an unchanged registry writes no row

    printed = capsys.readouterr().out
    for name, _, _ in FIGURES:
        assert name in printed

    # --mlflow-store kept the seeded store: a later run of the same sizes reads it back instead of
    # seeding again, and a run of other sizes refuses it rather than measure the wrong registry.
    from benchmarks.seed_mlflow import SeedSpec, describe

    reused = describe(store, SeedSpec(**TINY))
    assert (reused.models, reused.versions, reused.runs) == (4, 16, 16)
    assert reused.metric_rows == figures["seed_mlflow"]["metric_rows"]
    assert reused.model_names[-1] == "bench-wide-model"
    assert len(reused.alias_models) == figures["seed_mlflow"]["alias_models"] == 1
    with pytest.raises(CommandError, match="was seeded for .* not"):
        call_command("benchmark", models=4, versions_per_model=2, wide_versions=10, mlflow_store=str(store))


# The scratch database on PostgreSQL is proven by the test above; this one's parts (a reused store, no
# memory probe, the web under load) read nothing database-specific, so CI runs it in one suite.
@pytest.mark.own_database
def test_a_run_can_reuse_the_seeded_store_skip_the_memory_probe_and_load_the_web(tmp_path, store, capsys):
    existed = store.exists()  # the test above saved it; alone, this run seeds and saves it
    path = tmp_path / "bench.json"
    call_command("benchmark", **TINY, audit_events=10, repeat=1, page_samples=1, json_path=str(path),
                 mlflow_store=str(store), rss_probe=False, spread=False, load=True, load_users=3, load_seconds=3,
                 load_workers=1)
    figures = json.loads(path.read_text())["figures"]
    # The locust scenario ran against gunicorn: every role's pages answered 200.
    load = figures["load_web"]
    assert load["n"] > 0 and load["p95"] is not None, load["note"]
    assert figures["load_errors"]["median"] == 0, load["errors"]
    assert {name.split(":")[0] for name in load["pages"]} <= {"requester", "reviewer", "auditor", "ops"}
    assert figures["load_throughput"]["median"] > 0
    # Pages with a target carry their verdict.
    assert figures["page_lineage"]["target"] == "p95 <= 100 ms"
    assert figures["page_lineage"]["verdict"] in ("pass", "miss")
    assert ("reused" in figures["seed_mlflow"]["note"]) is existed
    assert figures["seed_mlflow"]["versions"] == 16
    assert figures["sync_peak_rss"]["median"] is None and "--no-rss-probe" in figures["sync_peak_rss"]["note"]
    spread = figures["sync_spread_2_workers"]
    assert spread["median"] is None and "--no-spread" in spread["note"]
    assert (figures["floor_total"]["models"], figures["floor_total"]["versions"]) == (4, 16)
    # The portfolio page was measured on the seeded tiers and findings (an auditor sees every model).
    assert figures["page_portfolio"]["n"] >= 1 and figures["queries_portfolio"]["n"] == 1
    if figures["sync_unchanged"]["n"]:  # the mirror stayed full without the probe's sync
        assert figures["sync_unchanged_rows_written"]["median"] == 0


    # Two runs (here the same one twice) in one report: a table per run side by side, JSON and HTML.
    out_html, out_json = tmp_path / "report.html", tmp_path / "combined.json"
    call_command("benchmark", report=[str(path), str(path)], html_path=str(out_html), json_path=str(out_json))
    combined = json.loads(out_json.read_text())
    assert len(combined["runs"]) == 2
    row = next(r for r in combined["rows"] if r["figure"] == "page_catalogue")
    assert row["target"] == "p95 <= 0.8x MLflow" and row["runs"][0]["mlflow_p95"] is not None
    page = out_html.read_text()
    assert "Benchmark report" in page and "ours vs MLflow" in page and "Plotly" in page


def test_benchmark_refuses_nonsense_sizes_with_one_line():
    with pytest.raises(CommandError, match="need --models >= 1"):
        call_command("benchmark", models=0)


def test_p95_is_nearest_rank():
    assert p95([5.0]) == 5.0
    assert p95([float(i) for i in range(1, 101)]) == 95.0
    assert p95([1.0, 2.0, 3.0]) == 3.0
