"""Several benchmark runs (e.g. a SQLite and a PostgreSQL run of one preset) in one table: each row
ours vs MLflow's REST side by side, median/p95, and pass/miss against its target; as JSON and as a
self-contained HTML page with plotly charts (`manage.py benchmark --report A.json B.json --html F`)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from benchmarks.report import FIGURES, TARGETS, verdict

# Our page -> the MLflow REST figure for the same data.
PAIRS = {"page_catalogue": "mlflow_models_page", "page_catalogue_search": "mlflow_models_search",
         "page_model": "mlflow_model_versions", "page_version": "mlflow_version"}


def _name(report: dict, path: str) -> str:
    config = report.get("config", {})
    models = (config.get("spec") or {}).get("models")
    size = f"{models} models" if models is not None else config.get("preset", "")
    return f"{config.get('database', '?')}, {size} ({Path(path).stem})"


def combine(paths: list[str]) -> dict:
    """{"runs": [{name, path, config}], "rows": [{figure, label, unit, target, runs: [..]}]}."""
    reports = [(p, json.loads(Path(p).read_text())) for p in paths]
    runs = [{"name": _name(r, p), "path": p, "config": r.get("config", {})} for p, r in reports]
    rows = []
    for name, unit, label in FIGURES:
        cells = []
        for _, report in reports:
            data = dict(report.get("figures", {}).get(name) or {})
            mlflow = report.get("figures", {}).get(PAIRS.get(name, ""), {}) if name in PAIRS else {}
            status, _ = verdict(name, data)
            cells.append({"median": data.get("median"), "p95": data.get("p95"), "ratio": data.get("ratio"),
                          "p95_ratio": data.get("p95_ratio"), "mlflow_median": mlflow.get("median"),
                          "mlflow_p95": mlflow.get("p95"), "verdict": status, "note": data.get("note", "")})
        rows.append({"figure": name, "label": label, "unit": unit,
                     "target": TARGETS[name][2] if name in TARGETS else "", "runs": cells})
    return {"runs": runs, "rows": rows}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{int(value)}"


def _charts(combined: dict) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio

    pages = [r for r in combined["rows"] if r["figure"].startswith("page_") and any(c["p95"] for c in r["runs"])]
    fig = go.Figure()
    for i, run in enumerate(combined["runs"]):
        fig.add_bar(name=f"ours, {run['name']}", x=[r["label"] for r in pages], y=[r["runs"][i]["p95"] for r in pages])
        fig.add_bar(name=f"MLflow REST, {run['name']}", x=[r["label"] for r in pages],
                    y=[r["runs"][i]["mlflow_p95"] for r in pages])
    fig.update_layout(title="Pages: p95 (ms), ours vs MLflow's REST for the same data", barmode="group",
                      yaxis_title="ms", height=480)
    syncs = [r for r in combined["rows"] if r["figure"] in ("floor_total", "sync_full", "sync_unchanged",
                                                              "sync_changed_1pct")]
    fig2 = go.Figure()
    for i, run in enumerate(combined["runs"]):
        fig2.add_bar(name=run["name"], x=[r["figure"] for r in syncs], y=[r["runs"][i]["median"] for r in syncs])
    fig2.update_layout(title="Sync vs the REST read floor: median (s)", barmode="group", yaxis_title="s", height=420)
    return (pio.to_html(fig, include_plotlyjs=True, full_html=False)
            + pio.to_html(fig2, include_plotlyjs=False, full_html=False))


def to_html(combined: dict) -> str:
    esc = html.escape
    head = "".join(f'<th colspan="4">{esc(r["name"])}</th>' for r in combined["runs"])
    sub = "".join("<th>median</th><th>p95</th><th>MLflow p50 / p95</th><th>target</th>" for _ in combined["runs"])
    body = []
    for row in combined["rows"]:
        cells = []
        for c in row["runs"]:
            mlflow = f"{_fmt(c['mlflow_median'])} / {_fmt(c['mlflow_p95'])}" if row["figure"] in PAIRS else ""
            if c.get("p95_ratio") is not None:
                mlflow += f" ({c['p95_ratio']:.2f}x at p95)"
            elif c.get("ratio") is not None:
                mlflow += f" ({c['ratio']:.2f}x at p50)" if mlflow else f"{c['ratio']:.2f}x"
            cls = {"pass": "pass", "miss": "miss"}.get(c["verdict"], "")
            cells.append(f'<td>{_fmt(c["median"])}</td><td>{_fmt(c["p95"])}</td><td>{esc(mlflow)}</td>'
                         f'<td class="{cls}" title="{esc(c["note"])}">{esc(c["verdict"])}</td>')
        body.append(f'<tr><th scope="row">{esc(row["label"])}<br><code>{esc(row["figure"])}</code></th>'
                    f'<td>{esc(row["unit"])}</td><td>{esc(row["target"])}</td>{"".join(cells)}</tr>')
    runs = "".join(f"<li>{esc(r['name'])}: {esc(json.dumps({k: r['config'].get(k) for k in ('spec', 'audit_events', 'total_seconds', 'load')}))}</li>"  # noqa: E501
                   for r in combined["runs"])
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Benchmark report</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}th[scope=row]{{text-align:left}}
.pass{{background:#d9f2d9}}.miss{{background:#f8d7d7}}code{{color:#555}}</style></head><body>
<h1>Benchmark report</h1><ul>{runs}</ul>
<table><thead><tr><th rowspan="2">figure</th><th rowspan="2">unit</th><th rowspan="2">target</th>{head}</tr>
<tr>{sub}</tr></thead><tbody>{"".join(body)}</tbody></table>
{_charts(combined)}
</body></html>
"""
