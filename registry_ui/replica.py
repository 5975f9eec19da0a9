"""A read replica for pages and reports (on when DATABASE_REPLICA_URL is set; see settings).

Who reads the replica, and why so few:
- only inside `replica_reads()`, which ReplicaReadsMiddleware opens for GET/HEAD requests: commands,
  tasks, the scheduler and every POST read the primary;
- only the models in REPLICA_MODELS: the mirror of MLflow and the audit events, the bulk of what the
  catalogue, model, version, compare, lineage, audit search and report pages read. The workflow
  (requests, approvals, deploys), risk, leases, heartbeats, jobs, sessions, users and permissions are
  always read from the primary: a decision or a lock is never taken on a lagging copy;
- never inside a transaction on the primary (a read after a write in the same transaction must see it);
- never for `primary_reads()` blocks (the audit chain's own walk, verify, reads the primary even when a
  GET asks for it);
- never for a browser that wrote in the last DATABASE_REPLICA_PIN_SECONDS (a cookie the middleware sets
  on every non-safe request), so a user who just approved or synced sees their own change.
Writes always go to the primary. Streaming responses (CSV/JSON exports) are consumed after the
middleware returns, so they read the primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
PIN_COOKIE = "mgc_primary"
SAFE_METHODS = frozenset({"GET", "HEAD"})

# app_label.model_name of the models a page may read from the replica.
REPLICA_MODELS = frozenset({
    "registry_ui.registeredmodel", "registry_ui.modelversion", "registry_ui.modelalias",
    "registry_ui.runsnapshot", "registry_ui.datasetinput", "registry_ui.metrichistory",
    "governance.auditevent",
})

_replica_allowed: ContextVar[bool] = ContextVar("replica_allowed", default=False)


@contextmanager
def replica_reads(allowed: bool = True) -> Iterator[None]:
    """Within the block, reads of REPLICA_MODELS may go to the replica (outside transactions)."""
    token = _replica_allowed.set(allowed)
    try:
        yield
    finally:
        _replica_allowed.reset(token)


def primary_reads():
    """Within the block every read goes to the primary, whatever the request."""
    return replica_reads(False)


def _label(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


class ReplicaRouter:
    """Reads of REPLICA_MODELS inside replica_reads() and outside any transaction -> "replica"; all else
    (every write, every other read) -> the primary."""

    def db_for_read(self, model, **hints):
        if (_replica_allowed.get() and _label(model) in REPLICA_MODELS and REPLICA in connections
                and not connections[DEFAULT_DB_ALIAS].in_atomic_block):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # One database seen twice: rows read from either alias may be related.
        return {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA} or None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == REPLICA else None  # the replica follows the primary by replication


class ReplicaReadsMiddleware:
    """Opens replica_reads() for GET/HEAD requests of browsers that did not write lately; pins a browser
    to the primary for DATABASE_REPLICA_PIN_SECONDS after any other method."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        safe = request.method in SAFE_METHODS
        with replica_reads(safe and PIN_COOKIE not in request.COOKIES):
            response = self.get_response(request)
        if not safe:
            response.set_cookie(PIN_COOKIE, "1", max_age=settings.DATABASE_REPLICA_PIN_SECONDS, httponly=True,
                                samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
        return response
