"""Version comparison with pandas: a metrics table with the best value per row and deltas against a
baseline, and a params diff. Pure functions over `CompareItem`s (see registry_ui.pages.selectors).

Which direction is better is read from the metric's name: losses and errors (loss, rmse, mae, mape,
error, ...) are lower-is-better, everything else (accuracy, auc, f1, r2, ...) higher-is-better.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass

import pandas as pd

from registry_ui.pages.selectors import CompareItem, format_metric, metric_value

LOWER_IS_BETTER = re.compile(
    r"(^|[_\-./ ])(loss|logloss|log_loss|rmse|mse|mae|mape|smape|rmsle|msle|error|err|brier|perplexity|"
    r"latency|wer|cer|fpr|fnr|hamming|cost|mad|medae|deviance)([_\-./ ]|$)",
    re.IGNORECASE,
)


def lower_is_better(key: str) -> bool:
    return bool(LOWER_IS_BETTER.search(key)) or key.lower().endswith(("_loss", "_error"))


def metrics_frame(items: list[CompareItem]) -> pd.DataFrame:
    """Rows: metric keys (sorted); columns: version labels; float values (NaN where missing)."""
    data = {item.label: {k: metric_value(v) for k, v in item.metrics.items()} for item in items}
    frame = pd.DataFrame(data, columns=[i.label for i in items], dtype="float64")
    return frame.sort_index()


def params_frame(items: list[CompareItem]) -> pd.DataFrame:
    data = {item.label: {k: str(v) for k, v in item.params.items()} for item in items}
    frame = pd.DataFrame(data, columns=[i.label for i in items], dtype="object")
    return frame.sort_index()


def best_per_row(frame: pd.DataFrame) -> dict[str, list[str]]:
    """metric -> labels holding the best finite value (ties all win); rows with < 2 values: none."""
    best: dict[str, list[str]] = {}
    for key, row in frame.iterrows():
        finite = row[row.map(lambda v: v is not None and not math.isnan(v) and not math.isinf(v))]
        if len(finite) < 2 or finite.nunique() < 2:
            best[key] = []
            continue
        target = finite.min() if lower_is_better(str(key)) else finite.max()
        best[key] = [str(label) for label, v in finite.items() if v == target]
    return best


def deltas(frame: pd.DataFrame, baseline: str) -> pd.DataFrame:
    return frame.sub(frame[baseline], axis=0)


def differing_params(frame: pd.DataFrame) -> pd.Index:
    if frame.empty:
        return frame.index
    return frame.index[frame.fillna("\u2205").nunique(axis=1) > 1]


@dataclass
class MetricRow:
    key: str
    lower_is_better: bool
    cells: list[dict]  # per version: label, value, text, delta, delta_text, best, better


@dataclass
class ParamRow:
    key: str
    differs: bool
    cells: list[dict]  # per version: label, value (None when not logged)


@dataclass
class Comparison:
    labels: list[str]
    baseline: str
    metrics: pd.DataFrame
    params: pd.DataFrame
    metric_rows: list[MetricRow]
    param_rows: list[ParamRow]

    @property
    def differing_param_rows(self) -> list[ParamRow]:
        return [r for r in self.param_rows if r.differs]


def _fmt_delta(value: float) -> str:
    if value is None or math.isnan(value):
        return ""
    if value == 0:
        return "±0"
    return ("+" if value > 0 else "−") + format_metric(abs(value))


def compare(items: list[CompareItem], baseline: str | None = None) -> Comparison:
    labels = [i.label for i in items]
    if baseline not in labels:
        baseline = labels[0] if labels else ""
    mframe = metrics_frame(items)
    pframe = params_frame(items)
    raw = {item.label: item.metrics for item in items}
    best = best_per_row(mframe)
    # Rounded to 12 significant digits: 0.95 - 0.9 is 0.04999999999999993 in binary floating point.
    delta = (deltas(mframe, baseline) if baseline else mframe).map(lambda v: float(f"{v:.12g}"))
    metric_rows = []
    for key in mframe.index:
        low = lower_is_better(str(key))
        cells = []
        for label in labels:
            value = mframe.at[key, label]
            d = delta.at[key, label]
            present = key in raw[label]
            cells.append({
                "label": label,
                "value": None if math.isnan(value) else float(value),
                "text": format_metric(raw[label][key]) if present else "",
                "delta": None if (math.isnan(d) or label == baseline) else float(d),
                "delta_text": "" if label == baseline else _fmt_delta(d),
                "best": label in best.get(key, []),
                "better": None if (math.isnan(d) or d == 0 or label == baseline) else bool((d < 0) == low),
            })
        metric_rows.append(MetricRow(key=str(key), lower_is_better=low, cells=cells))
    diff = set(differing_params(pframe))
    param_rows = [
        ParamRow(key=str(key), differs=key in diff,
                 cells=[{"label": label, "value": None if pd.isna(pframe.at[key, label]) else pframe.at[key, label]}
                        for label in labels])
        for key in pframe.index
    ]
    return Comparison(labels=labels, baseline=baseline, metrics=mframe, params=pframe,
                      metric_rows=metric_rows, param_rows=param_rows)


def _json_number(value):
    return None if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))) else value


def comparison_json(items: list[CompareItem], comparison: Comparison) -> dict:
    """The comparison as the API returns it (finite numbers only: JSON has no NaN)."""
    return {
        "baseline": comparison.baseline,
        "versions": [
            {"label": i.label, "model": i.ref.model, "version": i.ref.version, "stage": i.version.stage,
             "status": i.version.status, "run_id": i.version.run_id or None}
            for i in items
        ],
        "metrics": [
            {
                "key": row.key,
                "lower_is_better": row.lower_is_better,
                "best": [c["label"] for c in row.cells if c["best"]],
                "values": {c["label"]: _json_number(c["value"]) for c in row.cells},
                "deltas": {c["label"]: _json_number(c["delta"])
                           for c in row.cells if c["label"] != comparison.baseline},
            }
            for row in comparison.metric_rows
        ],
        "params": [
            {"key": row.key, "differs": row.differs, "values": {c["label"]: c["value"] for c in row.cells}}
            for row in comparison.param_rows
        ],
    }


def comparison_csv(comparison: Comparison) -> str:
    """One row per metric and per param: kind, key, then each version's value, then deltas vs baseline."""
    out = io.StringIO()
    writer = csv.writer(out)
    others = [label for label in comparison.labels if label != comparison.baseline]
    writer.writerow(["kind", "key", *map(_cell, comparison.labels),
                     *[_cell(f"delta {label} vs {comparison.baseline}") for label in others], "best"])
    for row in comparison.metric_rows:
        by_label = {c["label"]: c for c in row.cells}
        writer.writerow([
            "metric", _cell(row.key),
            *[_csv_value(by_label[label]["value"]) for label in comparison.labels],
            *[_csv_value(by_label[label]["delta"]) for label in others],
            _cell(" | ".join(c["label"] for c in row.cells if c["best"])),
        ])
    for row in comparison.param_rows:
        values = [("" if c["value"] is None else _cell(c["value"])) for c in row.cells]
        writer.writerow(["param", _cell(row.key), *values,
                         *["" for _ in others], ""])
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None:
        return ""
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _cell(text: str) -> str:
    """Names and params are user input: neutralise spreadsheet formulas (=, +, -, @ at the start)."""
    text = str(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
