"""Pure chart builders: pandas DataFrame in, plotly figure dict out (no I/O; Django only for the cache of
their results).

Figures are built with plotly.graph_objects (go.Bar, go.Scatter, go.Layout), so plotly validates every
property name and value here rather than the browser ignoring a typo; `_figure` turns one into the
plain JSON dict that reaches the browser through `json_script`. static/js/charts.js draws them with the
vendored partial plotly.js bundle (static/vendor/plotly-scatter-bar.min.js, built by scripts/plotly_bundle:
scatter and bar, the only trace types used here; a new trace type needs it rebuilt), each chart as it
nears the viewport. They are built to stay readable with 20 versions: a qualitative palette that cycles,
legends below the plot, angled tick labels, and `responsive` sizing on the JS side.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import plotly
import plotly.graph_objects as go
from django.core.cache import cache

PALETTE = [
    "#0b5cad", "#d1495b", "#2a9d8f", "#e9a03b", "#6a4c93", "#1b998b", "#c44536", "#457b9d", "#8d6a9f",
    "#3a7d44", "#b5651d", "#5e548e", "#e76f51", "#264653", "#9c6644", "#4d908e", "#bc4749", "#577590",
    "#7f5539", "#43aa8b",
]


# Building and validating a figure with graph_objects is most of a comparison page's time, and the same
# comparison is shown again and again (each reviewer of a request, each reload). A builder's figures
# depend only on its inputs, so they are kept in the cache under a digest of those inputs, this module's
# source and plotly's version: content-addressed, so there is nothing to invalidate, and a figure is
# never served for data other than its own.
CHART_CACHE_SECONDS = 3600
_CODE = hashlib.sha256(Path(__file__).read_bytes() + plotly.__version__.encode()).hexdigest()[:16]


def _plain(value):
    """The input as exact, ordered JSON (floats by repr, so 0.1 and 0.1000000001 differ)."""
    if isinstance(value, pd.DataFrame):
        return {"frame": value.to_dict(orient="split"), "dtypes": [str(t) for t in value.dtypes]}
    return repr(value)  # timestamps, numpy scalars: repr is exact


def _memoized(inputs):
    """Keep `builder`'s result under a digest of `inputs(*args, **kwargs)`, the values it is built from."""
    def decorate(builder):
        @functools.wraps(builder)
        def wrapper(*args, **kwargs):
            material = json.dumps([builder.__name__, _CODE, inputs(*args, **kwargs)], default=_plain, sort_keys=True)
            key = "chart:" + hashlib.sha256(material.encode()).hexdigest()
            try:
                found = cache.get(key)
            except Exception:  # noqa: BLE001 - a cache out of reach (Redis down) only costs the build
                found = None
            if found is None:
                found = {"figure": builder(*args, **kwargs)}  # a builder's None is worth keeping too
                try:
                    cache.set(key, found, CHART_CACHE_SECONDS)
                except Exception:  # noqa: BLE001, S110
                    pass
            return found["figure"]
        wrapper.uncached = builder
        return wrapper
    return decorate


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _text(value) -> str:
    """User text (model names, metric and param keys) shown by plotly, which reads a subset of HTML in
    names and titles: escape the markup so it shows literally."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _figure(traces: list, layout: dict) -> dict:
    """A validated figure as plain JSON-ready dicts. An empty template: plotly.js's own defaults (the
    Python package's default template would add ~10 kB of JSON to every figure)."""
    figure = go.Figure(data=traces, layout=go.Layout(template={}, **layout)).to_plotly_json()
    figure["layout"].pop("template", None)
    return figure


def _layout(title: str, **extra) -> dict:
    layout = {
        "title": {"text": _text(title), "font": {"size": 15}},
        "autosize": True,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 60},
        "legend": {"orientation": "h", "y": -0.25, "font": {"size": 11}},
        "font": {"family": "system-ui, sans-serif", "color": "#1b1f24"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
    }
    layout.update(extra)
    return layout


@_memoized(lambda frame, *, split_of=None: [frame, [list((split_of or (lambda k: ("", k)))(str(key)))
                                                    for key in frame.index]])
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
            traces.append(go.Bar(
                name=_text(label),
                x=[split for split, _ in entries],
                y=[_finite(frame.at[key, label]) for _, key in entries],
                marker={"color": _color(i)},
                hovertemplate=f"{_text(label)}<br>%{{x}} {_text(base)}: %{{y:.4g}}<extra></extra>",
            ))
        figures.append(_figure(traces, _layout(base, barmode="group", xaxis={"type": "category"},
                                               yaxis={"title": {"text": _text(base)}},
                                               showlegend=len(frame.columns) <= 20)))
    return figures


@_memoized(lambda history: [history])
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
            traces.append(go.Scatter(
                mode="lines+markers" if len(rows) < 30 else "lines",
                name=_text(label),
                x=[int(s) for s in rows["step"]],
                y=[_finite(v) for v in rows["value"]],
                line={"color": _color(i), "width": 2},
                marker={"size": 4},
            ))
        figures.append(_figure(traces, _layout(key, xaxis={"title": {"text": "step"}},
                                               yaxis={"title": {"text": _text(key)}},
                                               legend={"orientation": "h", "y": -0.32, "font": {"size": 11}})))
    return figures


VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725"]


def _short_number(v: float) -> str:
    return f"{v:.4g}"


@_memoized(lambda params, metrics, metric: [params, metrics, metric])
def parallel_coordinates(params: pd.DataFrame, metrics: pd.DataFrame, metric: str) -> dict | None:
    """Params (rows: param keys, columns: labels) against one metric, as parallel coordinates.

    Drawn with SVG line traces on normalised axes rather than plotly's `parcoords` trace, which needs
    WebGL (absent in headless browsers, remote desktops and many locked-down laptops). Each version is
    one line coloured by the chosen metric (viridis, dark = low); numeric params get a min..max axis,
    other params an axis of their distinct values; each axis is labelled with its real values.
    None when there is nothing to draw (unknown metric or fewer than 2 versions).
    """
    labels = list(metrics.columns)
    if metric not in metrics.index or len(labels) < 2:
        return None
    axes: list[tuple[str, list[float | None], list[tuple[float, str]], list[str]]] = []

    def missing(v) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    def numeric_axis(name: str, numbers: list[float | None]):
        known = [n for n in numbers if n is not None]
        lo, hi = (min(known), max(known)) if known else (0.0, 1.0)
        span = hi - lo
        norm = [None if n is None else (0.5 if span == 0 else (n - lo) / span) for n in numbers]
        ticks = [(0.5, _short_number(lo))] if span == 0 else [(0.0, _short_number(lo)), (1.0, _short_number(hi))]
        axes.append((name, norm, ticks, ["" if n is None else _short_number(n) for n in numbers]))

    for key in params.index:
        values = [params.at[key, label] for label in labels]
        numbers = [_finite(v) for v in values]
        if all(n is not None or missing(v) for n, v in zip(numbers, values, strict=True)) and any(
                n is not None for n in numbers):
            numeric_axis(str(key), numbers)
        else:
            texts = ["(none)" if missing(v) else str(v) for v in values]
            distinct = sorted(set(texts))
            pos = {t: (0.5 if len(distinct) == 1 else i / (len(distinct) - 1)) for i, t in enumerate(distinct)}
            axes.append((str(key), [pos[t] for t in texts], [(pos[t], t[:16]) for t in distinct], texts))
    metric_values = [_finite(metrics.at[metric, label]) for label in labels]
    numeric_axis(metric, metric_values)
    metric_norm = axes[-1][1]
    xs = list(range(len(axes)))
    traces = []
    for i, label in enumerate(labels):
        shade = metric_norm[i]
        color = "#9aa0a6" if shade is None else VIRIDIS[min(int(shade * len(VIRIDIS)), len(VIRIDIS) - 1)]
        traces.append(go.Scatter(
            mode="lines+markers", name=_text(label),
            x=xs, y=[axis[1][i] for axis in axes],
            customdata=[_text(axis[3][i]) for axis in axes],
            text=[_text(axis[0]) for axis in axes],
            hovertemplate=f"{_text(label)}<br>%{{text}} = %{{customdata}}<extra></extra>",
            line={"color": color, "width": 2}, marker={"size": 5, "color": color},
            connectgaps=False,
        ))
    shapes = [{"type": "line", "x0": x, "x1": x, "y0": 0, "y1": 1, "yref": "y", "xref": "x",
               "line": {"color": "#4a5360", "width": 1}} for x in xs]
    annotations = [
        {"x": x, "y": pos, "xref": "x", "yref": "y", "text": _text(text), "showarrow": False, "xanchor": "right",
         "xshift": -4, "font": {"size": 10, "color": "#4a5360"}}
        for x, axis in zip(xs, axes, strict=True) for pos, text in axis[2]
    ]
    return _figure(traces, _layout(
        f"Params vs {metric} (line colour: {metric}, dark = low)",
        xaxis={"tickmode": "array", "tickvals": xs, "ticktext": [_text(a[0]) for a in axes], "showgrid": False,
               "zeroline": False, "range": [-0.6, len(axes) - 0.6], "tickangle": -20},
        yaxis={"visible": False, "range": [-0.08, 1.08]},
        shapes=shapes, annotations=annotations, hovermode="closest",
    ))


@_memoized(lambda frame, *, title, yaxis, lines=None: [frame, title, yaxis, lines])
def monthly_bars(frame: pd.DataFrame, *, title: str, yaxis: str, lines: pd.DataFrame | None = None) -> dict:
    """Stacked bars of counts per month: `frame` rows months (Timestamps), one column per series; `lines`
    (same index) adds each of its columns as a line over the bars (e.g. closed beside raised)."""
    months = [m.strftime("%Y-%m") for m in frame.index]
    traces = [go.Bar(name=_text(col), x=months, y=[int(v) for v in frame[col]], marker={"color": _color(i)},
                     hovertemplate=f"{_text(col)}<br>%{{x}}: %{{y}}<extra></extra>")
              for i, col in enumerate(frame.columns)]
    for j, col in enumerate(lines.columns if lines is not None else []):
        traces.append(go.Scatter(name=_text(col), x=months, y=[int(v) for v in lines[col]], mode="lines+markers",
                                 line={"color": _color(len(frame.columns) + j), "width": 2}))
    return _figure(traces, _layout(title, barmode="stack", xaxis={"type": "category"},
                                   yaxis={"title": {"text": _text(yaxis)}, "rangemode": "tozero"}))
