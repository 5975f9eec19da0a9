"""The scheduler's loop: every tick, enqueue each periodic job whose run is due.

"Due" is decided on the job's row by a conditional UPDATE (`next_run_at` still holds the value this
scheduler read): of two schedulers that see the same due run, exactly one moves `next_run_at` on and
enqueues; the other's UPDATE matches no row. The claim and the enqueue share a transaction, so with the
database task backend a run is enqueued exactly when its claim commits. Leadership among several
schedulers (one live scheduler) is not this module's business; double enqueues are.

A job whose previous run is still queued or running is not enqueued again (a slow full sync would
otherwise pile up runs that only find the lock held), unless that run was enqueued more than
SCHEDULER_STUCK_SECONDS ago (a worker killed mid-task leaves its task "running" for ever).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import TaskResultStatus, default_task_backend
from django_tasks.exceptions import TaskResultDoesNotExist

from registry_ui.scheduler.jobs import PeriodicJob, registered_jobs
from registry_ui.scheduler.models import ScheduledJob
from registry_ui.scheduler.runner import run_periodic_job

log = logging.getLogger(__name__)

PENDING = {TaskResultStatus.READY, TaskResultStatus.RUNNING}


def ensure_rows(jobs: dict[str, PeriodicJob] | None = None) -> None:
    """A row per job (first run due now); the interval and task follow the settings of this start."""
    now = timezone.now()
    for job in (jobs or registered_jobs()).values():
        interval = job.interval()
        try:
            row, created = ScheduledJob.objects.get_or_create(
                name=job.name, defaults={"task_path": job.task.module_path, "interval_seconds": interval,
                                         "next_run_at": now})
        except IntegrityError:  # another scheduler created it at the same moment
            row, created = ScheduledJob.objects.get(name=job.name), False
        if created:
            continue
        changes = {}
        if row.interval_seconds != interval or row.task_path != job.task.module_path:
            changes.update(interval_seconds=interval, task_path=job.task.module_path)
        if row.next_run_at > now + timedelta(seconds=interval):  # the interval was shortened
            changes["next_run_at"] = now + timedelta(seconds=interval)
        if changes:
            ScheduledJob.objects.filter(pk=row.pk).update(**changes)


def _previous_run_pending(row: ScheduledJob, now) -> bool:
    if not row.last_task_id or row.last_enqueued_at is None:
        return False
    stuck_after = timedelta(seconds=getattr(settings, "SCHEDULER_STUCK_SECONDS", 3600))
    if now - row.last_enqueued_at > stuck_after:
        return False
    try:
        return default_task_backend.get_result(row.last_task_id).status in PENDING
    except TaskResultDoesNotExist:
        return False


def enqueue_if_due(job: PeriodicJob) -> str | None:
    """Enqueue one run of `job` if it is due and this caller wins the claim: the task id, else None."""
    row = ScheduledJob.objects.filter(name=job.name).first()
    now = timezone.now()
    if row is None or row.next_run_at > now or _previous_run_pending(row, now):
        return None
    return claim_and_enqueue(job, row, now)


def claim_and_enqueue(job: PeriodicJob, row: ScheduledJob, now) -> str | None:
    """Move the row's next run on, if it still holds what `row` read, and enqueue the run in the same
    transaction. None when another scheduler claimed this run first."""
    with transaction.atomic():
        claimed = (ScheduledJob.objects.filter(pk=row.pk, next_run_at=row.next_run_at)
                   .update(next_run_at=now + timedelta(seconds=row.interval_seconds), last_enqueued_at=now))
        if not claimed:
            return None
        result = run_periodic_job.enqueue(job.name)
        ScheduledJob.objects.filter(pk=row.pk).update(last_task_id=str(result.id))
    return str(result.id)


def tick(jobs: dict[str, PeriodicJob] | None = None) -> dict[str, str]:
    """One pass over every job: {job name: task id} of the runs this call enqueued."""
    enqueued = {}
    for job in (jobs or registered_jobs()).values():
        task_id = enqueue_if_due(job)
        if task_id:
            log.info("scheduler: enqueued %s (task %s)", job.name, task_id)
            enqueued[job.name] = task_id
    return enqueued
