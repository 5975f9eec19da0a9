"""Mirror work run by the task workers: a full reconciliation (spread in shards) and a targeted one.

The full sync keeps its lock (a lease on the SyncState row): a task that finds the lock held returns
"busy" at once rather than waiting, and the next scheduled run tries again. A sync that fails (MLflow
down) raises, so the task is recorded as failed with its error (the Operations page lists them).
A registry of more than REGISTRY_SYNC_SHARD_SIZE models is applied by one task per shard, which
whichever workers are free take (registry_ui/mirror/shards.py); a smaller one in this task.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django_tasks import task

from registry_ui.mirror import client as gw
from registry_ui.mirror import shards
from registry_ui.mirror.sync import SyncBusy, sync_model
from registry_ui.scheduler.heartbeat import current_task_id
from registry_ui.scheduler.jobs import PeriodicJob


def _claimant() -> str:
    # The task's id: the same task re-run after its worker died takes its own claims back at once.
    return current_task_id() or uuid.uuid4().hex


@task()
def sync_registry_task() -> dict:
    claimant = _claimant()
    try:
        run = shards.plan(task_id=claimant)
    except SyncBusy as exc:
        return {"outcome": "busy", "detail": str(exc)}
    if run.shards_total <= 1:
        report = shards.run_inline(run, claimant=claimant)
        return {"outcome": "synced", "detail": report.summary(), "rows_written": report.rows_written}
    pending = shards.pending_shards(run)
    with transaction.atomic():
        for index in pending:
            sync_shard_task.enqueue(run.pk, index)
    return {"outcome": "spread", "detail": f"sync run {run.pk}: {len(pending)} of {run.shards_total} shards "
                                           f"of up to {shards.shard_size()} models queued for the workers"}


@task()
def sync_shard_task(run_id: int, index: int) -> dict:
    """One shard of a spread full sync; the worker that completes the last one finishes the run."""
    return shards.apply_shard(run_id=run_id, index=index, claimant=_claimant())


@task()
def sync_model_task(name: str) -> dict:
    """Re-read one model (a webhook's hint, or "Sync this model"). No lock: every writer stamps the
    model's synced_at with the time of its MLflow read, so an older full-sync page never undoes it."""
    report = sync_model(name, budget=gw.sync_budget())
    return {"outcome": "synced", "detail": f"{name}: {report.summary()}", "rows_written": report.rows_written}


SYNC_JOB = PeriodicJob(name="mirror.sync", task=sync_registry_task, interval_setting="REGISTRY_SYNC_INTERVAL",
                       default=300, description="full reconciliation of the MLflow registry into the mirror")
