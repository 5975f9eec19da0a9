"""Worker heartbeats (every task a worker starts is a sign of life, recorded under its worker id) and, at the
end, web-process heartbeats (WebHeartbeatMiddleware).

django-tasks sends `task_started` inside the worker process with the task's result, whose
`worker_ids` ends with the id of the worker running it (db_worker's --worker-id). The periodic job
HEARTBEAT_JOB makes sure some task runs every WORKER_HEARTBEAT_INTERVAL seconds even when nothing
else is queued, so "the newest worker beat is younger than X" means "a worker takes tasks".
A receiver that only records liveness, not control flow.

While a task runs, a thread of the worker process beats every WORKER_BEAT_SECONDS: a task that runs
for minutes still shows a live worker, and a worker killed mid-task (SIGKILL, the machine lost) stops
beating, which is how the scheduler's reaper (reaper.py) knows its task will not finish. The receiver
also remembers which task this process runs (`current_task_id`), so work that claims rows (a sync
shard, a validation) can tell its own earlier, interrupted attempt from another live claimant.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django_tasks import task

from registry_ui.scheduler.jobs import PeriodicJob
from registry_ui.scheduler.leadership import beat, forget_silent
from registry_ui.scheduler.models import NodeKind

log = logging.getLogger(__name__)


_running = threading.local()  # the task this thread runs (the worker's main thread)
_beating: dict[int, str] = {}  # pid -> worker id of the beating thread (RQ forks a process per job)


def current_task_id() -> str | None:
    """The id of the task this worker thread runs now (None outside a worker's task)."""
    return getattr(_running, "task_id", None)


def worker_node_id(worker: str) -> str:
    return f"worker:{worker}"


def _beat(worker: str) -> None:
    try:
        beat(node_id=worker_node_id(worker), kind=NodeKind.WORKER)
    except DatabaseError:  # a heartbeat never fails the task it rides on
        log.warning("could not record the heartbeat of worker %s", worker, exc_info=True)


def _beat_forever(worker: str, every: float) -> None:
    stop = threading.Event()
    while not stop.wait(every):
        _beat(worker)
        connection.close()  # this thread's own connection: do not hold one open between beats


def _start_beating(worker: str) -> None:
    every = float(getattr(settings, "WORKER_BEAT_SECONDS", 5))
    if every <= 0 or _beating.get(os.getpid()) == worker:
        return
    _beating[os.getpid()] = worker
    threading.Thread(target=_beat_forever, args=(worker, every), name="worker-heartbeat", daemon=True).start()


def record_worker_beat(*, sender=None, task_result=None, **kwargs) -> None:
    ids = list(getattr(task_result, "worker_ids", None) or [])
    worker = ids[-1] if ids else f"{socket.gethostname()}:{os.getpid()}"
    _running.task_id = str(getattr(task_result, "id", "") or "") or None
    _beat(worker)
    _start_beating(worker)


def forget_current_task(*, sender=None, task_result=None, **kwargs) -> None:
    _running.task_id = None


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


# --- Web nodes -------------------------------------------------------------------------------------
# Each web process (a gunicorn worker) beats from a middleware, at most once per WEB_HEARTBEAT_INTERVAL
# seconds, after a response: a beat then means "this process served a request lately", which a
# background thread could not say (it beats on while every request thread hangs). An idle node still
# beats as long as the load balancer probes /readyz. /healthz never touches the database, so it never
# beats either. The node id is `web:<CONSOLE_NODE_ID or host name>:<pid>`: one row per process.
_last_web_beat: float | None = None


def web_node_id() -> str:
    return f"web:{getattr(settings, 'CONSOLE_NODE_ID', '') or socket.gethostname()}:{os.getpid()}"


def reset_web_beat() -> None:
    """Forget when this process last beat (tests; a forked worker starts afresh anyway)."""
    global _last_web_beat
    _last_web_beat = None


class WebHeartbeatMiddleware:
    """Records this web process's heartbeat after a response, at most once per WEB_HEARTBEAT_INTERVAL."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        self._maybe_beat(request)
        return response

    def _maybe_beat(self, request) -> None:
        global _last_web_beat
        interval = getattr(settings, "WEB_HEARTBEAT_INTERVAL", 0)
        if not interval or request.path == "/healthz":
            return
        now = time.monotonic()
        if _last_web_beat is not None and now - _last_web_beat < interval:
            return
        _last_web_beat = now
        try:
            beat(node_id=web_node_id(), kind=NodeKind.WEB)
        except DatabaseError:  # never fail a response for a heartbeat; the next interval tries again
            log.warning("could not record the heartbeat of web node %s", web_node_id(), exc_info=True)
