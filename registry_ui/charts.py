"""Pure chart builders: pandas DataFrame in, plotly figure dict out (no I/O, no Django).

The figures reach the browser through `json_script` and static/js/charts.js draws them with the
vendored plotly.js. They are built to stay readable with 20 versions: a qualitative palette that
cycles, legends below the plot, angled tick labels, and `responsive` sizing on the JS side.
"""

from __future__ import annotations

import math

import pandas as pd

PALETTE = [
    "#0b5cad", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#1b998b", "#c44536", "#457b9d", "#8d6a9f",
    "#3a7d44", "#b5651d", "#5e548e", "#e76f51", "#264653", "#9c6644", "#4d908e", "#bc4749", "#577590",
    "#7f5539", "#43aa8b",
]


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _layout(title: str, **extra) -> dict:
    layout = {
        "title": {"text": title, "font": {"size": 15}},
        "autosize": True,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 60},
        "legend": {"orientation": "h", "y": -0.25, "font": {"size": 11}},
        "font": {"family": "system-ui, sans-serif", "color": "#1b1f24"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    layout.update(extra)
    return layout


def grouped_metric_bars(frame: pd.DataFrame, *, split_of=None) -> list[dict]:
    """One grouped bar figure per base metric: x = split (train/val/test...), one bar per version.

    `frame`: rows metric keys, columns version labels (floats). `split_of(key) -> (split, base)`.
    """
    split_of = split_of or (lambda k: ("", k))
    groups: dict[str, list[tuple[str, str]]] = {}
    for key in frame.index:
        split, base = split_of(str(key))
        groups.setdefault(base, []).append((split or "value", str(key)))
    figures = []
    for base in sorted(groups):
        entries = groups[base]
        traces = []
        for i, label in enumerate(frame.columns):
            traces.append({
                "type": "bar",
                "name": str(label),
                "x": [split for split, _ in entries],
                "y": [_finite(frame.at[key, label]) for _, key in entries],
                "marker": {"color": _color(i)},
                "hovertemplate": f"{label}<br>%{{x}} {base}: %{{y:.4g}}<extra></extra>",
            })
        figures.append({
            "data": traces,
            "layout": _layout(base, barmode="group", xaxis={"type": "category"}, yaxis={"title": {"text": base}},
                              showlegend=len(frame.columns) <= 20),
        })
    return figures


def history_curves(history: pd.DataFrame) -> list[dict]:
    """One line figure per metric key: value over step, one line per version.

    `history`: long frame with columns label, key, step, value.
    """
    figures = []
    if history.empty:
        return figures
    labels = list(dict.fromkeys(history["label"]))
    for key in sorted(history["key"].unique()):
        part = history[history["key"] == key]
        traces = []
        for i, label in enumerate(labels):
            rows = part[part["label"] == label].sort_values("step")
            if rows.empty:
                continue
            traces.append({
                "type": "scatter",
                "mode": "lines+markers" if len(rows) < 30 else "lines",
                "name": str(label),
                "x": [int(s) for s in rows["step"]],
                "y": [_finite(v) for v in rows["value"]],
                "line": {"color": _color(i), "width": 2},
                "marker": {"size": 4},
            })
        figures.append({
            "data": traces,
            "layout": _layout(key, xaxis={"title": {"text": "step"}}, yaxis={"title": {"text": key}}),
        })
    return figures


def parallel_coordinates(params: pd.DataFrame, metrics: pd.DataFrame, metric: str) -> dict | None:
    """Params (rows: param keys, columns: labels) against one metric, as a parallel-coordinates figure.

    Numeric params get a numeric axis; other params an axis of their distinct values. The line
    colour is the chosen metric. None when there is nothing to draw (no metric or fewer than 2 versions).
    """
    labels = list(metrics.columns)
    if metric not in metrics.index or len(labels) < 2:
        return None
    dimensions = []
    for key in params.index:
        values = [params.at[key, label] for label in labels]
        numbers = [_finite(v) for v in values]
        if all(n is not None for n in numbers):
            dimensions.append({"label": str(key), "values": numbers})
        else:
            distinct = sorted({"(none)" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                               for v in values})
            codes = {v: i for i, v in enumerate(distinct)}
            dimensions.append({
                "label": str(key),
                "values": [codes["(none)" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)]
                           for v in values],
                "tickvals": list(range(len(distinct))),
                "ticktext": [t[:18] for t in distinct],
                "range": [-0.5, max(len(distinct) - 0.5, 0.5)],
            })
    metric_values = [_finite(metrics.at[metric, label]) for label in labels]
    dimensions.append({"label": metric, "values": metric_values})
    color = [v if v is not None else 0 for v in metric_values]
    return {
        "data": [{
            "type": "parcoords",
            "line": {"color": color, "colorscale": "Viridis", "showscale": True,
                     "colorbar": {"title": {"text": metric}}},
            "dimensions": dimensions,
            "labelangle": -20,
        }],
        "layout": _layout(f"Params vs {metric}", margin={"l": 70, "r": 70, "t": 90, "b": 40}),
    }
