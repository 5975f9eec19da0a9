"""Seed N audit events in bulk into a scratch database and measure search and verification.

    DATABASE_URL=sqlite:////tmp/audit-bench.sqlite3 .venv/bin/python scripts/audit_bench.py --n 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/audit_bench .venv/bin/python scripts/audit_bench.py

The hash chain is computed in Python (the same hash_fields() record() uses) and rows are inserted in
bulk with the append-only triggers in place (they only refuse UPDATE/DELETE). Never point it at a
real database: it refuses one that already holds events.
"""

import argparse
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_ui.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from governance import audit  # noqa: E402
from governance.audit import search as audit_selectors  # noqa: E402
from governance.models import AuditEvent  # noqa: E402

COLUMNS = ["seq", "timestamp", "actor_username", "action", "model_name", "version", "request_id", "before",
           "after", "comment", "source_ip", "prev_hash", "hash"]
WORDS = ("threshold latency recall precision drift champion challenger rollback canary shadow quarterly "
         "retrain hotfix review incident budget fairness holdout calibration").split()


def rows(n: int):
    rnd = random.Random(42)
    actions = sorted(audit.ACTIONS)
    models = [f"model-{i:03d}" for i in range(200)] + ["fraud-detector", "churn-classifier"]
    actors = [f"user{i:02d}" for i in range(50)] + ["system:sync", "mlflow:webhook"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(days=730) / n
    prev = audit.GENESIS_HASH
    for seq in range(1, n + 1):
        ts = start + step * seq
        action = actions[seq % len(actions)]
        model = models[rnd.randrange(len(models))]
        fields = {
            "seq": seq, "timestamp": ts, "actor_username": actors[rnd.randrange(len(actors))], "action": action,
            "model_name": model, "version": rnd.randrange(1, 40), "request_id": rnd.randrange(1, 50000),
            "before": {"stage": "Staging"}, "after": {"stage": "Production", "metrics": {"auc": 0.91}},
            "comment": " ".join(rnd.choice(WORDS) for _ in range(6)) + (" zebracorn" if seq % 100000 == 7 else ""),
            "source_ip": f"10.0.{seq % 250}.{seq % 200 + 1}", "prev_hash": prev,
        }
        fields["hash"] = prev = audit.hash_fields(**fields)
        yield fields


def seed(n: int) -> float:
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor
            with raw.copy(f"COPY governance_auditevent ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for r in rows(n):
                    copy.write_row([r["seq"], r["timestamp"], r["actor_username"], r["action"], r["model_name"],
                                    r["version"], r["request_id"], json.dumps(r["before"]), json.dumps(r["after"]),
                                    r["comment"], r["source_ip"], r["prev_hash"], r["hash"]])
        else:
            sql = (f"INSERT INTO governance_auditevent ({', '.join(COLUMNS)}) "  # noqa: S608
                   f"VALUES ({', '.join(['%s'] * len(COLUMNS))})")
            batch = []
            for r in rows(n):
                batch.append([r["seq"], connection.ops.adapt_datetimefield_value(r["timestamp"]), r["actor_username"],
                              r["action"], r["model_name"], r["version"], r["request_id"], json.dumps(r["before"]),
                              json.dumps(r["after"]), r["comment"], r["source_ip"], r["prev_hash"], r["hash"]])
                if len(batch) == 20000:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE governance_auditevent")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return time.perf_counter() - t0


def timed(label, fn, repeat=3):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
        best = elapsed if best is None else min(best, elapsed)
    print(f"  {label}: {best * 1000:.1f} ms  ({result})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--measure-only", action="store_true", help="reuse a database this script seeded")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if not args.measure_only:
        if AuditEvent.objects.exists():
            sys.exit("audit_bench: the database already holds audit events; use a scratch database")
        print(f"{connection.vendor}: seeding {args.n} events ...")
        print(f"  seeded in {seed(args.n):.1f} s")
    user = get_user_model().objects.filter(username="bench-auditor").first() or \
        get_user_model().objects.create_user("bench-auditor", is_staff=True)
    F = audit_selectors.AuditFilters  # noqa: N806

    def page(**kw):
        before = kw.pop("before", None)
        events, nxt = audit_selectors.search_page(user, F(**kw), before=before, limit=50)
        return f"{len(events)} rows, next={nxt}"

    print("search (one page of 50, newest first):")
    timed("no filter", lambda: page())
    timed("no filter, deep page (before=500000)", lambda: page(before=500000))
    timed("text 'drift champion' (common words)", lambda: page(q="drift champion"))
    timed("text 'drift champion', deep page (before=500000)", lambda: page(q="drift champion", before=500000))
    timed("text 'zebracorn' (rare word, 10 hits)", lambda: page(q="zebracorn"))
    timed("text 'fraud-detector' (model name)", lambda: page(q="fraud-detector"))
    timed("text 'user07' (actor)", lambda: page(q="user07"))
    timed("action=deploy.succeeded", lambda: page(action="deploy.succeeded"))
    timed("model=model-042 + version=7", lambda: page(model="model-042", version=7))
    since = datetime(2025, 3, 1, tzinfo=UTC)
    timed("date since 2025-03-01 until 2025-03-02", lambda: page(since=since, until=since + timedelta(days=1)))
    timed("date until 2024-02-01 (old range)", lambda: page(until=datetime(2024, 2, 1, tzinfo=UTC)))
    timed("text 'drift' + date range 1 month",
          lambda: page(q="drift", since=since, until=since + timedelta(days=30)))
    print("verify_audit (full chain walk):")
    t0, c0 = time.perf_counter(), time.process_time()
    result = audit.verify_chain()
    print(f"  {time.perf_counter() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU of this process "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)  {result.summary()}")


if __name__ == "__main__":
    main()
