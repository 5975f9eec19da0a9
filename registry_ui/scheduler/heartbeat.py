"""Worker heartbeats: every task a worker starts is a sign of life, recorded under its worker id.

django-tasks sends `task_started` inside the worker process with the task's result, whose
`worker_ids` ends with the id of the worker running it (db_worker's --worker-id). The periodic job
HEARTBEAT_JOB makes sure some task runs every WORKER_HEARTBEAT_INTERVAL seconds even when nothing
else is queued, so "the newest worker beat is younger than X" means "a worker takes tasks".
A receiver that only records liveness, not control flow.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import timedelta

from django.db import DatabaseError
from django_tasks import task

from registry_ui.scheduler.jobs import PeriodicJob
from registry_ui.scheduler.leadership import beat, forget_silent
from registry_ui.scheduler.models import NodeKind

log = logging.getLogger(__name__)


def record_worker_beat(*, sender=None, task_result=None, **kwargs) -> None:
    ids = list(getattr(task_result, "worker_ids", None) or [])
    worker = ids[-1] if ids else f"{socket.gethostname()}:{os.getpid()}"
    try:
        beat(node_id=f"worker:{worker}", kind=NodeKind.WORKER)
    except DatabaseError:  # a heartbeat never fails the task it rides on
        log.warning("could not record the heartbeat of worker %s", worker, exc_info=True)


# Processes silent this long are forgotten (stopped nodes, restarts: each process has its own id).
FORGET_AFTER = timedelta(days=1)


@task()
def worker_heartbeat() -> dict:
    """The worker that starts it has beaten already (task_started); forget long-silent processes."""
    forgotten = forget_silent(older_than=FORGET_AFTER)
    return {"outcome": "beat", "detail": f"beat; {forgotten} silent process(es) forgotten" if forgotten else "beat"}


HEARTBEAT_JOB = PeriodicJob(name="workers.heartbeat", task=worker_heartbeat,
                            interval_setting="WORKER_HEARTBEAT_INTERVAL", default=30,
                            description="a tiny task, so that some worker beats its heartbeat at least this often")
