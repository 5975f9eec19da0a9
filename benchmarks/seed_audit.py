"""Benchmark-only seeders for the console's throw-away database: users and a hash-chained audit trail.

In the product only governance.audit.record() writes AuditEvent rows, one per committed change. Writing
a million events that way takes far too long for a benchmark, so this seeder bulk-inserts rows whose
chain is computed with the same governance.audit.compute_hash: verify_audit accepts them. It runs only
inside `manage.py benchmark`, against the scratch database the benchmark creates and drops.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

AUDIT_SPAN_DAYS = 365
BATCH = 5000
ACTORS = ("scientist", "engineer", "ops", "auditor", "system:sync", "mlflow:webhook")
# Words the text-filter figure searches for: about one event in seven mentions "fraud".
COMMENTS = (
    "promote after fraud backtest",
    "metrics beat the champion",
    "validation passed on holdout",
    "rollback after latency regression",
    "approved with quorum",
    "nightly reconciliation",
    "drift noticed on churn features",
)
BENCH_PASSWORD = "bench-password-not-secret-42"  # noqa: S105 - throw-away users in a throw-away database


def audit_window(count: int) -> tuple[datetime, datetime]:
    """Timestamps of the seeded trail run from start to end, evenly spaced."""
    end = datetime(2026, 11, 1, tzinfo=UTC)
    return end - timedelta(days=AUDIT_SPAN_DAYS), end


def seed_users() -> dict:
    """One user per role (plus a superuser), returned by role name."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from governance.access import ensure_role_groups

    ensure_role_groups()
    users = {}
    for username, group in (("scientist", "data_scientist"), ("engineer", "ml_engineer"), ("ops", "ops"),
                            ("auditor", "auditor"), ("admin", None)):
        user, _ = get_user_model().objects.get_or_create(username=f"bench-{username}")
        user.set_password(BENCH_PASSWORD)
        if group is None:
            user.is_staff = user.is_superuser = True
        user.save()
        if group:
            user.groups.add(Group.objects.get(name=group))
        users[username] = user
    return users


def seed_audit_events(count: int, model_names: list[str]) -> float:
    """Append `count` chained events after whatever the trail already holds. Returns seconds taken."""
    from governance.audit import ACTIONS, GENESIS_HASH, compute_hash
    from governance.audit.models import AuditEvent

    started = time.perf_counter()
    actions = sorted(ACTIONS)
    names = model_names or ["bench-model"]
    start, end = audit_window(count)
    step = (end - start) / max(count, 1)
    with transaction.atomic():
        last = AuditEvent.objects.order_by("-seq").only("seq", "hash", "timestamp").first()
        seq, prev = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        if last is not None and last.timestamp >= start:
            # Appending after events recorded now (a checkpoint): time must never go backwards along the chain.
            start, step = last.timestamp + timedelta(milliseconds=1), timedelta(milliseconds=1)
        batch = []
        for n in range(count):
            seq += 1
            event = AuditEvent(  # benchmark-only bulk seeding, see the module docstring
                seq=seq, timestamp=start + step * n, actor=None, actor_username=ACTORS[n % len(ACTORS)],
                action=actions[n % len(actions)], model_name=names[n % len(names)], version=(n % 10) + 1,
                request_id=None, before={"stage": "Staging"} if n % 3 == 0 else None,
                after={"stage": "Production"} if n % 3 == 0 else None,
                comment=f"{COMMENTS[n % len(COMMENTS)]} #{n}", source_ip="127.0.0.1", prev_hash=prev,
            )
            event.hash = prev = compute_hash(event)
            batch.append(event)
            if len(batch) >= BATCH:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        if batch:
            AuditEvent.objects.bulk_create(batch)
    # PostgreSQL: a trail that grows by normal writes is vacuumed and analysed by autovacuum (an
    # append-only table too, by its insert threshold); one loaded in bulk is neither until something
    # does it. Without statistics the text search's plan was measured on the planner's guesses (a
    # 100,000-event trail searched slower than a 1,000,000-event one); without the visibility map an
    # index-only scan (the reports page's deleted models) still reads the heap. SQLite keeps no
    # statistics unless asked (ANALYZE / PRAGMA optimize), so its trail is left as a real one is.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {AuditEvent._meta.db_table}")
    return time.perf_counter() - started
