"""Tasks of dead workers back in the queue: the scheduler's leader looks every tick.

A worker beats its heartbeat every WORKER_BEAT_SECONDS while it lives (heartbeat.py). A task still
"running" whose worker has not beaten for WORKER_LOST_SECONDS was lost with its worker (SIGKILL, OOM,
the machine gone): it is put back in its queue, with the same id, for another worker. One conditional
step per task (an UPDATE for the database backend, removing the job from RQ's started registry for
RQ), so of two looks at the same lost task exactly one requeues it.

Why not RQ's own abandoned-job handling: it notices a dead worker only when the job's entry in the
started registry expires (the job monitoring interval plus a minute) and a worker's maintenance
pass runs (every ten minutes), and then fails the job unless it has retries left. The database
backend has none at all. One rule, on the heartbeats both backends share, serves both.

A requeued task runs again from the start, so every task must be safe to run twice: work that
matters claims its rows with the task's id (a sync shard, a validation), so the re-run takes its own
claim back and skips what committed; the deploy is settled through its outbox and never writes twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task_backends

from registry_ui.scheduler.heartbeat import worker_node_id
from registry_ui.scheduler.models import Heartbeat

log = logging.getLogger(__name__)


def _lost_after() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "WORKER_LOST_SECONDS", 30)))


def _alive(worker: str | None, cutoff) -> bool:
    if not worker:
        return False
    beat = Heartbeat.objects.filter(node_id=worker_node_id(worker)).values_list("last_beat_at", flat=True).first()
    return beat is not None and beat >= cutoff


def requeue_lost_tasks() -> list[str]:
    """Put back every running task whose worker stopped beating; the ids requeued."""
    backend = task_backends["default"]
    kind = type(backend).__name__
    if kind == "DatabaseBackend":
        return _requeue_database(timezone.now() - _lost_after())
    if kind == "RQBackend":
        return _requeue_rq(backend, timezone.now() - _lost_after())
    return []


def _requeue_database(cutoff) -> list[str]:
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    requeued = []
    for pk, worker_ids, started_at in (DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING,
                                                                   started_at__lt=cutoff)
                                       .values_list("pk", "worker_ids", "started_at")):
        if _alive((worker_ids or [None])[-1], cutoff):
            continue
        # started_at changes with every claim: a task another worker took meanwhile is not touched.
        if DBTaskResult.objects.filter(pk=pk, status=TaskResultStatus.RUNNING, started_at=started_at).update(
                status=TaskResultStatus.READY):
            log.warning("requeued task %s: its worker %s stopped beating", pk, (worker_ids or ["?"])[-1])
            requeued.append(str(pk))
    return requeued


def _requeue_rq(backend, cutoff) -> list[str]:
    import django_rq
    from django_tasks_rq.backend import Job
    from rq.exceptions import NoSuchJobError
    from rq.job import JobStatus

    requeued = []
    for name in backend.queues:
        queue = django_rq.get_queue(name, job_class=Job)
        registry = queue.started_job_registry
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                job = Job.fetch(job_id, connection=queue.connection)
            except NoSuchJobError:
                continue
            started = job.started_at
            if job.get_status() != JobStatus.STARTED or started is None:
                continue
            if started.tzinfo is None:  # RQ stores UTC
                started = started.replace(tzinfo=UTC)
            if started >= cutoff or _alive(job.worker_name, cutoff):
                continue
            # Removing the entry is the claim: of two reapers (or RQ's own cleanup) one removes it.
            if not queue.connection.zrem(registry.key, f"{job_id}:{execution_id}"):
                continue
            queue.enqueue_job(job)
            log.warning("requeued task %s: its worker %s stopped beating", job_id, job.worker_name)
            requeued.append(job_id)
    return requeued
