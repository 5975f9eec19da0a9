"""Metric histories (value per step) for the comparison curves, fetched lazily.

The sync mirrors final metric values only; the full history of a metric is read from MLflow the
first time a chart needs it (with the web budget), then kept in `MetricHistory`. When MLflow is down
the page still renders and says the curves are unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from registry_ui.mirror import client as gw
from registry_ui.mirror.models import MetricHistory, RunSnapshot


@dataclass
class HistoryStatus:
    available: bool = True
    fetched: int = 0  # (run, key) pairs read from MLflow by this call
    error: str = ""
    missing_runs: list[str] = field(default_factory=list)


def ensure_metric_histories(run_ids, keys=None) -> HistoryStatus:
    """Make sure MetricHistory holds the histories of `keys` (default: every metric of the run) for
    each mirrored run in `run_ids`. Reads MLflow only for the (run, key) pairs not stored yet."""
    status = HistoryStatus()
    run_ids = [r for r in dict.fromkeys(run_ids) if r]
    if not run_ids:
        return status
    runs = list(RunSnapshot.objects.filter(run_id__in=run_ids).only("pk", "run_id", "metrics"))
    known = {r.run_id for r in runs}
    status.missing_runs = [r for r in run_ids if r not in known]
    stored = set(MetricHistory.objects.filter(run__in=runs).values_list("run_id", "key"))
    todo: list[tuple[RunSnapshot, list[str]]] = []
    for run in runs:
        wanted = list(keys) if keys is not None else list((run.metrics or {}).keys())
        missing = [k for k in wanted if (run.pk, k) not in stored]
        if missing:
            todo.append((run, missing))
    if not todo:
        return status
    rows = []
    try:
        budget = gw.web_budget()
        for run, missing in todo:
            for key, points in gw.metric_histories(run.run_id, missing, budget=budget).items():
                rows.append(MetricHistory(run=run, key=key, points=points))
    except gw.MlflowUnavailable as exc:
        status.available = False
        status.error = str(exc).splitlines()[0][:300] if str(exc) else "MLflow is not answering"
    # Keep what was read before a failure; ignore_conflicts: two page loads may race to store the same key.
    MetricHistory.objects.bulk_create(rows, ignore_conflicts=True)
    status.fetched = len(rows)
    return status


def history_frame(labels_by_run: dict[str, list[str]], keys=None) -> pd.DataFrame:
    """Stored histories as a long frame (label, key, step, value) for the chart builders.

    Only metrics logged at more than one step make a curve."""
    qs = MetricHistory.objects.filter(run__run_id__in=list(labels_by_run))
    if keys is not None:
        qs = qs.filter(key__in=list(keys))
    records = []
    for run_id, key, points in qs.values_list("run__run_id", "key", "points"):
        if len(points or []) < 2:
            continue
        for label in labels_by_run.get(run_id, []):
            for step, value, *_ in points:
                records.append((label, key, step, value))
    return pd.DataFrame.from_records(records, columns=["label", "key", "step", "value"])
