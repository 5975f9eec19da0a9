"""Metric histories (value per step) for the comparison curves, read from the mirror only.

The sync mirrors them (registry_ui.mirror.sync, `_mirror_histories`): a page never asks MLflow, so
the comparison renders the same whether MLflow answers or not, and says how old its curves are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from django.db.models import Max, Min

from registry_ui.mirror.models import MetricHistory


@dataclass
class HistoryStatus:
    """How fresh the curves shown are: when the sync read the oldest and the newest of them."""

    oldest: datetime | None = None
    newest: datetime | None = None
    histories: int = 0


def history_status(run_ids) -> HistoryStatus:
    agg = (MetricHistory.objects.filter(run__run_id__in=[r for r in run_ids if r])
           .aggregate(oldest=Min("fetched_at"), newest=Max("fetched_at")))
    return HistoryStatus(oldest=agg["oldest"], newest=agg["newest"])


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
