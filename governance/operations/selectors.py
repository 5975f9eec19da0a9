"""Reads of the Operations page: the scheduler's rows, the task queue, recent failures, the mirror's age.

The queue is read from whichever task backend is configured: the database backend's DBTaskResult
table, or RQ's queues and registries in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus, default_task_backend, task_backends
from django_tasks.exceptions import TaskResultDoesNotExist

from registry_ui.mirror.models import RegisteredModel, SyncState
from registry_ui.scheduler import leadership
from registry_ui.scheduler.jobs import registered_jobs
from registry_ui.scheduler.models import Heartbeat, ScheduledJob

FAILURES_SHOWN = 50
AGES_SHOWN = 50


@dataclass
class Failure:
    task: str
    finished_at: datetime | None
    error: str  # the last line of the traceback: the exception and its message
    traceback: str


@dataclass
class TaskStatus:
    id: str
    task: str
    status: str
    finished: bool
    detail: str


def jobs() -> list[dict]:
    described = {j.name: j.description for j in registered_jobs().values()}
    return [{"row": row, "description": described.get(row.name, "(no longer in SCHEDULED_JOBS)")}
            for row in ScheduledJob.objects.all()]


def nodes() -> list[dict]:
    """Every web process, scheduler candidate and worker that beat, newest first per kind: its host, pid, last beat,
    age, and whether it holds the scheduler lease now."""
    now = timezone.now()
    lease = leadership.current_holder(leadership.SCHEDULER_LEASE)
    leader = lease.holder if lease else None
    return [{"beat": beat, "age": (now - beat.last_beat_at).total_seconds(), "leader": beat.node_id == leader}
            for beat in Heartbeat.objects.order_by("kind", "-last_beat_at")]


def _is_database_backend() -> bool:
    return type(task_backends[DEFAULT_TASK_BACKEND_ALIAS]).__module__.startswith("django_tasks_db")


def queue_depth() -> dict:
    """{"ready": n, "running": n, "later": n} (later: deferred to a run_after in the future)."""
    if _is_database_backend():
        from django_tasks_db.models import DBTaskResult

        ready = DBTaskResult.objects.ready().count()
        return {"ready": ready, "running": DBTaskResult.objects.running().count(),
                "later": DBTaskResult.objects.filter(status=TaskResultStatus.READY).count() - ready}
    import django_rq
    from rq.registry import ScheduledJobRegistry, StartedJobRegistry

    queue = django_rq.get_queue("default")
    return {"ready": queue.count, "running": StartedJobRegistry(queue=queue).count,
            "later": ScheduledJobRegistry(queue=queue).count}


def _error_line(traceback: str) -> str:
    lines = [line for line in (traceback or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def recent_failures(limit: int = FAILURES_SHOWN) -> list[Failure]:
    if _is_database_backend():
        from django_tasks_db.models import DBTaskResult

        rows = (DBTaskResult.objects.failed().order_by(F("finished_at").desc(nulls_last=True))
                .values_list("task_path", "finished_at", "traceback")[:limit])
        return [Failure(task=path, finished_at=at, error=_error_line(tb), traceback=tb) for path, at, tb in rows]
    import django_rq
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    queue = django_rq.get_queue("default")
    ids = FailedJobRegistry(queue=queue).get_job_ids(0, limit - 1)
    failures = []
    for job in Job.fetch_many(ids, connection=queue.connection):
        if job is not None:
            tb = job.latest_result().exc_string if job.latest_result() else ""
            failures.append(Failure(task=job.func_name, finished_at=job.ended_at, error=_error_line(tb), traceback=tb))
    return failures


def _last_full_sync_started():
    """When the last completed full sync began: it read every model then, changed or not (an unchanged
    model is not written, so its own synced_at only says when it last changed in the mirror)."""
    report = SyncState.objects.filter(pk=1).values_list("last_report", flat=True).first() or {}
    started = report.get("started_at") if report.get("scope") == "full" else None
    return parse_datetime(started) if started else None


def mirror_ages(limit: int = AGES_SHOWN) -> list[dict]:
    """The models whose mirror rows are oldest (never synced first): when each was last confirmed from
    MLflow (its own latest write, or the last completed full sync, whichever is later) and how long ago."""
    now, full = timezone.now(), _last_full_sync_started()
    rows = (RegisteredModel.objects.order_by(F("synced_at").asc(nulls_first=True), "name")
            .values_list("name", "synced_at")[:limit])
    ages = []
    for name, at in rows:
        confirmed = max(filter(None, (at, full)), default=None)
        ages.append({"name": name, "synced_at": confirmed,
                     "age": (now - confirmed).total_seconds() if confirmed else None})
    return ages


def task_status(task_id: str) -> TaskStatus | None:
    """The state of one enqueued task (None: no such task)."""
    try:
        result = default_task_backend.get_result(task_id)
    except (TaskResultDoesNotExist, ValueError):
        return None
    detail = ""
    if result.status == TaskResultStatus.SUCCESSFUL:
        value = result.return_value
        detail = str(value.get("detail") or value.get("outcome") or "") if isinstance(value, dict) else str(value)
    elif result.status == TaskResultStatus.FAILED and result.errors:
        detail = _error_line(result.errors[-1].traceback)
    return TaskStatus(id=str(result.id), task=result.task.name, status=str(result.status),
                      finished=result.is_finished, detail=detail)
