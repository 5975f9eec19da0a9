"""The figures the benchmark reports, the printed table and the JSON written beside it."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.measure import Figure

# Every figure, in the order printed; the JSON always carries all of them (null with a note if not
# measured), so runs on different branches and machines compare key by key.
FIGURES: list[tuple[str, str, str]] = [
    ("seed_mlflow", "s", "bulk-seed the MLflow store (SQLAlchemy, MLflow's own models)"),
    ("seed_audit", "s", "bulk-seed the audit trail (benchmark-only seeder)"),
    ("floor_models", "s", "REST floor: page every registered model (1000 a page)"),
    ("floor_versions", "s", "REST floor: page every model version (10000 a page)"),
    ("floor_runs", "s", "REST floor: search_runs run_id IN batches for every version's run"),
    ("floor_histories", "s", "REST floor: the multi-step metric histories, 100 runs of one metric a request"),
    ("floor_total", "s", "REST floor: all of the above"),
    ("sync_full", "s", "first full sync into an empty mirror"),
    ("sync_unchanged", "s", "re-sync of the unchanged registry"),
    ("sync_unchanged_rows_written", "rows", "rows written by the unchanged re-sync (target 0)"),
    ("sync_changed_1pct", "s", "sync after 1% of versions changed (aliases moved, tags set)"),
    ("sync_changed_1pct_rows_written", "rows", "rows written by the 1% sync"),
    ("sync_peak_rss", "MiB", "peak RSS of a process running a full sync"),
    ("sync_spread_1_worker", "s", "first full sync as the scheduled task: shards (models/10) over 1 worker"),
    ("sync_spread_2_workers", "s", "the same over 2 workers"),
    ("sync_spread_unchanged_rows_written", "rows", "rows written by the spread unchanged re-sync (target 0)"),
    ("mlflow_models_page", "ms", "MLflow REST: search_registered_models, one page of 50"),
    ("mlflow_models_search", "ms", "MLflow REST: search_registered_models, name LIKE filter"),
    ("mlflow_model_versions", "ms", "MLflow REST: search_model_versions of the 100-version model"),
    ("mlflow_version", "ms", "MLflow REST: get the version, then its run (what the version page shows)"),
    ("page_catalogue", "ms", "catalogue page 1"),
    ("page_catalogue_search", "ms", "catalogue search"),
    ("page_model", "ms", "model page, model with 100 versions"),
    ("page_version", "ms", "version page"),
    ("page_compare", "ms", "comparison of 5 versions with metric histories (first load in first_ms)"),
    ("page_lineage", "ms", "lineage page"),
    ("page_audit_text", "ms", "audit search, text filter"),
    ("page_audit_date", "ms", "audit search, date filter"),
    ("page_inbox", "ms", "request inbox"),
    ("queries_catalogue", "queries", "SQL queries: catalogue page 1"),
    ("queries_catalogue_search", "queries", "SQL queries: catalogue search"),
    ("queries_model", "queries", "SQL queries: model page"),
    ("queries_version", "queries", "SQL queries: version page"),
    ("queries_compare", "queries", "SQL queries: comparison"),
    ("queries_lineage", "queries", "SQL queries: lineage"),
    ("queries_audit_text", "queries", "SQL queries: audit search, text"),
    ("queries_audit_date", "queries", "SQL queries: audit search, date"),
    ("queries_inbox", "queries", "SQL queries: request inbox"),
    ("verify_audit", "s", "verify_audit --whole over the whole trail"),
    ("verify_audit_incremental", "s", "verify_audit from the newest signed checkpoint, 10,000 events after it"),
    ("load_web", "ms", "web under load (--load): response time over every request of the roles' mix"),
    ("load_errors", "requests", "web under load: failed requests (target 0)"),
    ("load_throughput", "req/s", "web under load: requests served a second"),
]

# Targets: figure -> (what is compared, bound, how it reads). "p95" is the figure's p95; "p95_ratio"
# its p95 over MLflow's (the ratio figure's) p95; "ratio" the medians' ratio; "value" the median.
TARGETS: dict[str, tuple[str, float, str]] = {
    "page_catalogue": ("p95_ratio", 0.8, "p95 <= 0.8x MLflow"),
    "page_catalogue_search": ("p95_ratio", 0.8, "p95 <= 0.8x MLflow"),
    "page_model": ("p95_ratio", 0.8, "p95 <= 0.8x MLflow"),
    "page_version": ("p95_ratio", 0.8, "p95 <= 0.8x MLflow"),
    "page_compare": ("p95", 400, "p95 <= 400 ms"),
    "page_lineage": ("p95", 100, "p95 <= 100 ms"),
    "sync_full": ("ratio", 1.5, "<= 1.5x the read floor"),
    "sync_unchanged": ("ratio", 0.25, "<= 0.25x the read floor"),
    "sync_unchanged_rows_written": ("value", 0, "0 rows"),
    "page_audit_text": ("p95", 50, "p95 <= 50 ms"),
    "page_audit_date": ("p95", 50, "p95 <= 50 ms"),
    "verify_audit": ("value", 10, "<= 10 s"),
    "verify_audit_incremental": ("value", 1, "<= 1 s"),
    "load_web": ("p95", 300, "p95 <= 300 ms"),
    "load_errors": ("value", 0, "0 errors"),
}


def verdict(name: str, data: dict) -> tuple[str, str]:
    """("pass" | "miss" | "-", the target's text) for one figure's dict."""
    if name not in TARGETS:
        return "-", ""
    what, bound, text = TARGETS[name]
    value = {"p95": data.get("p95"), "p95_ratio": data.get("p95_ratio"), "ratio": data.get("ratio"),
             "value": data.get("median")}[what]
    if value is None:
        return "-", text
    return ("pass" if value <= bound else "miss"), text
# Model risk (governance/portfolio), after benchmarks/seed_risk.py gave tiers and findings to the models.
FIGURES += [
    ("page_portfolio", "ms", "model-risk portfolio page, every model (auditor)"),
    ("queries_portfolio", "queries", "SQL queries: model-risk portfolio page"),
]
UNITS = {name: unit for name, unit, _ in FIGURES}
LABELS = {name: label for name, _, label in FIGURES}


def new_figures() -> dict[str, Figure]:
    return {name: Figure(name, unit) for name, unit, _ in FIGURES}


def to_json(config: dict, figures: dict) -> dict:
    """`figures` maps name -> Figure or its dict."""
    out = {}
    for name, _, label in FIGURES:
        fig = figures.get(name)
        data = fig.to_dict() if isinstance(fig, Figure) else dict(fig or Figure(name, UNITS[name]).to_dict())
        if not data.get("n") and not data.get("note"):
            data["note"] = "not measured"
        data["verdict"], data["target"] = verdict(name, data)
        out[name] = {"label": label, **data}
    return {"config": config, "figures": out}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return f"{int(value)}"


def table(report: dict) -> str:
    rows = [("figure", "unit", "median", "p95", "ratio", "note")]
    for name, data in report["figures"].items():
        ratio = f"{data['ratio']:.2f}x {data['ratio_to']}" if data.get("ratio") is not None else ""
        note = data.get("note", "")
        if data.get("target"):
            note = f"[{data.get('verdict', '-')}: {data['target']}] {note}".strip()
        rows.append((name, data["unit"], _fmt(data["median"]), _fmt(data["p95"]), ratio, note))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = []
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i in (0, 1, 4) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r[:5], widths, strict=True))) + "  " + r[5])
    return "\n".join(line.rstrip() for line in lines)


def write_json(path: str | Path, report: dict) -> None:
    Path(path).write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
