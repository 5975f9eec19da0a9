"""Fixtures of the audit tests (registered in tests/conftest.py).

Also: the audit table's append-only triggers refuse DELETE and TRUNCATE, which Django's table flush
(teardown of every transactional test, anyone's) uses. Here the flush is wrapped so it lifts the
triggers for its own statements and restores them; the running application never flushes.
"""

import pytest
from django.db.backends.base.operations import BaseDatabaseOperations

from governance.audit import db as audit_db

_original_execute_sql_flush = BaseDatabaseOperations.execute_sql_flush


def _execute_sql_flush(self, sql_list):
    return _original_execute_sql_flush(self, audit_db.flush_statements(self.connection, list(sql_list)))


BaseDatabaseOperations.execute_sql_flush = _execute_sql_flush


@pytest.fixture
def signing_key(settings, tmp_path):
    """A signing key and a checkpoint directory of the test's own."""
    settings.AUDIT_SIGNING_KEY = "test-signing-key-not-secret"
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.AUDIT_SIGNING_KEY


@pytest.fixture
def attacker_sql(db):
    """Raw SQL with the append-only triggers dropped, as someone with DB owner access could."""
    from django.db import connection

    audit_db.drop_triggers(connection)

    def run(sql, params=None):
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])

    yield run
    audit_db.install_triggers(connection)


def seed_events(n: int, **overrides):
    """n events through the real record() (small numbers; the 1M benchmark uses bulk seeding)."""
    from django.db import transaction

    from governance import audit

    events = []
    for i in range(n):
        kwargs = {"actor_name": "system:test", "action": "registry.synced", "model": f"model-{i % 3}",
                  "version": i + 1, "comment": f"event number {i + 1}"}
        kwargs.update(overrides)
        with transaction.atomic():
            events.append(audit.record(**kwargs))
    return events
