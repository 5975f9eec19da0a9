"""/healthz and /readyz, for load balancers and orchestrators. Open to anonymous callers, so they say
which check failed and how old a heartbeat is, never why in detail (an error text can carry a host
name, a user or a URL with credentials): the detail goes to the log.

- /healthz: the process answers (no database, no network). 200 {"status": "ok"}.
- /readyz: this node can serve: the database answers and has no unapplied migration; Redis answers
  when the queue (TASKS_BACKEND=rq) or the cache uses it; MLflow answers within READY_MLFLOW_TIMEOUT
  (a failure only fails readiness when READY_REQUIRE_MLFLOW is on: pages are served from the mirror);
  the newest worker heartbeat and the scheduler leader's heartbeat are younger than
  READY_MAX_WORKER_AGE / READY_MAX_SCHEDULER_AGE seconds (0: not required, only reported).
  200 when every required check passes, else 503; JSON {"status": ..., "checks": {name: {...}}}.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from registry_ui.mirror import client as gw
from registry_ui.scheduler import leadership
from registry_ui.scheduler.models import Heartbeat, NodeKind

log = logging.getLogger(__name__)


class NotReady(Exception):
    """A check failed; its message is safe to show to anyone."""


def _database() -> dict:
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    plan = MigrationExecutor(connection).migration_plan(MigrationExecutor(connection).loader.graph.leaf_nodes())
    if plan:
        raise NotReady(f"{len(plan)} unapplied migration(s)")
    return {}


def _redis_urls() -> list[str]:
    urls = []
    if getattr(settings, "TASKS_BACKEND", "database") == "rq":
        urls += [q["URL"] for q in getattr(settings, "RQ_QUEUES", {}).values() if q.get("URL")]
    for cache in getattr(settings, "CACHES", {}).values():
        if "redis" in cache.get("BACKEND", "").lower():
            location = cache.get("LOCATION")
            urls += location if isinstance(location, list | tuple) else [location]
    return list(dict.fromkeys(u for u in urls if u))


def _redis() -> dict | None:
    urls = _redis_urls()
    if not urls:
        return None  # not configured: not reported
    import redis

    for url in urls:
        redis.Redis.from_url(url, socket_timeout=settings.READY_REDIS_TIMEOUT,
                             socket_connect_timeout=settings.READY_REDIS_TIMEOUT).ping()
    return {"servers": len(urls)}


def _mlflow() -> dict:
    gw.ping(timeout=settings.READY_MLFLOW_TIMEOUT)
    return {}


def _age(beat: Heartbeat | None) -> float | None:
    return None if beat is None else round((timezone.now() - beat.last_beat_at).total_seconds(), 1)


def _fresh(age: float | None, limit: float, what: str) -> None:
    if limit and (age is None or age > limit):
        raise NotReady(f"no {what} heartbeat" if age is None else f"{what} heartbeat is {age:.0f} s old")


def _workers() -> dict:
    age = _age(leadership.newest_beat(NodeKind.WORKER))
    _fresh(age, settings.READY_MAX_WORKER_AGE, "worker")
    return {"age_seconds": age}


def _scheduler() -> dict:
    lease = leadership.current_holder(leadership.SCHEDULER_LEASE)
    beat = Heartbeat.objects.filter(node_id=lease.holder).first() if lease else None
    age = _age(beat)
    _fresh(age, settings.READY_MAX_SCHEDULER_AGE, "scheduler leader")
    return {"leader": lease is not None, "age_seconds": age}


def _checks() -> list[tuple[str, Callable[[], dict | None], bool]]:
    """(name, check, required)."""
    return [
        ("database", _database, True),
        ("redis", _redis, True),
        ("mlflow", _mlflow, settings.READY_REQUIRE_MLFLOW),
        ("workers", _workers, bool(settings.READY_MAX_WORKER_AGE)),
        ("scheduler", _scheduler, bool(settings.READY_MAX_SCHEDULER_AGE)),
    ]


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results, ready, database_ok = {}, True, True
    for name, check, required in _checks():
        if not database_ok and name in ("workers", "scheduler"):
            results[name] = {"ok": False, "required": required, "error": "database unavailable"}
            ready = ready and not required
            continue
        try:
            outcome = check()
        except NotReady as exc:
            outcome, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is "not ready"; the detail is logged only
            log.warning("readiness check %s failed: %s", name, exc)
            outcome, error = None, "unavailable"
        else:
            if outcome is None:
                continue  # not configured
            results[name] = {"ok": True, "required": required, **outcome}
            continue
        results[name] = {"ok": False, "required": required, "error": error}
        ready = ready and not required
        if name == "database":
            database_ok = False
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": results},
                        status=200 if ready else 503)
