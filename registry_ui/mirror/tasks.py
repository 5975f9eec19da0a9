"""Mirror work run by the task worker: a full reconciliation and a targeted one.

The full sync keeps its lock (a lease on the SyncState row): a task that finds the lock held returns
"busy" at once rather than waiting, and the next scheduled run tries again. A sync that fails (MLflow
down) raises, so the task is recorded as failed with its error (the Operations page lists them).
"""

from __future__ import annotations

from django_tasks import task

from registry_ui.mirror import client as gw
from registry_ui.mirror.sync import SyncBusy, sync_model, sync_registry
from registry_ui.scheduler.jobs import PeriodicJob


@task()
def sync_registry_task() -> dict:
    try:
        report = sync_registry()
    except SyncBusy as exc:
        return {"outcome": "busy", "detail": str(exc)}
    return {"outcome": "synced", "detail": report.summary(), "rows_written": report.rows_written}


@task()
def sync_model_task(name: str) -> dict:
    """Re-read one model (a webhook's hint, or "Sync this model"). No lock: every writer stamps the
    model's synced_at with the time of its MLflow read, so an older full-sync page never undoes it."""
    report = sync_model(name, budget=gw.sync_budget())
    return {"outcome": "synced", "detail": f"{name}: {report.summary()}", "rows_written": report.rows_written}


SYNC_JOB = PeriodicJob(name="mirror.sync", task=sync_registry_task, interval_setting="REGISTRY_SYNC_INTERVAL",
                       default=300, description="full reconciliation of the MLflow registry into the mirror")
