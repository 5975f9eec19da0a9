"""What the pages show of a validation: the checks, a latency chart and the two prediction
histograms (plotly figures built here with plotly.graph_objects, sent through json_script and drawn
by static/js/charts.js), and what the model needs to run (read from MLflow's model files
on demand under the web budget, cached briefly; MLflow down only hides that part)."""

from __future__ import annotations

import hashlib
import json

from django.core.cache import cache

from governance.validation.models import ValidationRun
from registry_ui.mirror import client as gateway

NEEDS_CACHE_SECONDS = 600


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


def model_needs(model_name: str, version: int) -> dict:
    """{"needs": ModelNeeds-as-dict} or {"error": "..."}; a validation's own reading is not needed."""
    key = "validation:needs:" + hashlib.sha256(f"{model_name}\0{version}".encode()).hexdigest()
    found = cache.get(key)
    if found is not None:
        return found
    try:
        needs = gateway.read_model_needs(model_name, int(version))
    except gateway.MlflowUnavailable as exc:
        return {"error": f"What the model needs could not be read from MLflow just now ({exc})."}
    example = needs.input_example or {}
    found = {"needs": needs.__dict__ | {"inputs": needs.signature.get("inputs") if needs.signature else None,
                                        "outputs": needs.signature.get("outputs") if needs.signature else None,
                                        "example_text": json.dumps(example.get("rows", example.get("value")),
                                                                   default=str)[:400] if example else ""}}
    cache.set(key, found, NEEDS_CACHE_SECONDS)
    return found


def run_context(run: ValidationRun | None) -> dict:
    if run is None:
        return {"run": None}
    result = run.result or {}
    return {"run": run, "checks": result.get("checks", []), "latency": result.get("latency", []),
            "distribution": result.get("distribution") or {}, "dataset": result.get("dataset") or {},
            "figures": figures(run) if run.finished else {}, "metrics": result.get("metrics") or {}}
