"""The task the scheduler enqueues: run one periodic job's task and record its outcome on the job's row.

The job's own task is called in-line here (Task.call), so a job is a plain django-tasks task that can
also be enqueued on its own ("Sync now"); only runs that came from the schedule update the row.
"""

from __future__ import annotations

import time

from django.utils import timezone
from django_tasks import task

from registry_ui.scheduler.jobs import registered_jobs
from registry_ui.scheduler.models import JobOutcome, ScheduledJob

SKIPPED_OUTCOMES = {"busy", "skipped"}


def _one_line(text: str, limit: int = 2000) -> str:
    return " ".join(str(text).split())[:limit]


@task()
def run_periodic_job(name: str) -> dict:
    job = registered_jobs().get(name)
    if job is None:
        raise LookupError(f"no periodic job named {name!r} (SCHEDULED_JOBS changed?)")
    started = timezone.now()
    ScheduledJob.objects.filter(name=name).update(last_started_at=started)
    clock = time.monotonic()
    try:
        result = job.task.call()
    except Exception as exc:
        ScheduledJob.objects.filter(name=name).update(
            last_finished_at=timezone.now(), last_duration_seconds=time.monotonic() - clock,
            last_outcome=JobOutcome.FAILED, last_detail=_one_line(f"{type(exc).__name__}: {exc}"))
        raise
    result = result if isinstance(result, dict) else {"result": result}
    outcome = str(result.get("outcome", ""))
    ScheduledJob.objects.filter(name=name).update(
        last_finished_at=timezone.now(), last_duration_seconds=time.monotonic() - clock,
        last_outcome=JobOutcome.SKIPPED if outcome in SKIPPED_OUTCOMES else JobOutcome.SUCCEEDED,
        last_detail=_one_line(result.get("detail") or outcome or result))
    return result
