"""What the pages show of a validation: the checks, a latency chart and the two prediction
histograms (plotly figures built here with plotly.graph_objects, sent through json_script and drawn
by static/js/charts.js), and what the model needs to run (read from MLflow's model files by a task and
kept in the mirror; a page never waits on MLflow for it)."""

from __future__ import annotations

import json

from governance.validation.models import ValidationRun
from registry_ui.mirror import files as gateway_files


def _layout(title: str, **extra) -> dict:
    return {"title": {"text": title, "font": {"size": 14}}, "autosize": True, "height": 300,
            "margin": {"l": 50, "r": 20, "t": 40, "b": 50}, "legend": {"orientation": "h", "y": -0.25},
            "paper_bgcolor": "#ffffff", "plot_bgcolor": "#ffffff", **extra}


def figures(run: ValidationRun) -> dict:
    """{"latency": fig, "candidate_hist": fig, "incumbent_hist": fig} as plain JSON-able dicts."""
    import plotly.graph_objects as go

    result = run.result or {}
    out: dict = {}
    latency = result.get("latency") or []
    if latency:
        fig = go.Figure([go.Bar(name=f"batch {row['batch_size']}", x=["p50", "p95", "p99"],
                                y=[row["p50_ms"], row["p95_ms"], row["p99_ms"]]) for row in latency])
        limit = run.spec.get("max_latency_p95_ms")
        if limit is not None:
            fig.add_hline(y=float(limit), line_dash="dash", line_color="#d1495b",
                          annotation_text=f"p95 limit {limit} ms")
        fig.update_layout(**_layout("Prediction latency (ms)", barmode="group", yaxis={"title": "ms"}))
        out["latency"] = json.loads(fig.to_json())
    hist = (result.get("distribution") or {}).get("histogram")
    if hist:
        edges = hist["edges"]
        centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        width = (edges[1] - edges[0]) if len(edges) > 1 else 1
        for key, label, color in (("candidate", f"Candidate v{run.version}", "#0b5cad"),
                                  ("incumbent", f"Incumbent v{run.incumbent_version}", "#6a4c93")):
            if hist.get(key) is None:
                continue
            fig = go.Figure([go.Bar(x=centers, y=hist[key], width=width * 0.95, marker_color=color, name=label)])
            fig.update_layout(**_layout(f"{label}: predicted scores", xaxis={"title": "score"},
                                        yaxis={"title": "rows"}))
            out[f"{key}_hist"] = json.loads(fig.to_json())
    return out


def model_needs(mv) -> dict:
    """What the version page and the model card show of what the model needs to run: {"needs": {...},
    "read_at"} once a worker read the model's files, else {"pending"/"error", ...}. Never waits on MLflow:
    a read not made yet is queued (registry_ui/mirror/files.py)."""
    found = gateway_files.files_of(mv)
    return {"needs": found.needs, "read_at": found.read_at, "pending": found.pending, "queued_at": found.queued_at,
            "error": found.error, "attempts": found.attempts, "retry_after": found.retry_after}


def run_context(run: ValidationRun | None) -> dict:
    if run is None:
        return {"run": None}
    result = run.result or {}
    return {"run": run, "checks": result.get("checks", []), "latency": result.get("latency", []),
            "distribution": result.get("distribution") or {}, "dataset": result.get("dataset") or {},
            "figures": figures(run) if run.finished else {}, "metrics": result.get("metrics") or {}}
