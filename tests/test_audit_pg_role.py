"""On PostgreSQL the app can run as a role holding only SELECT and INSERT on the audit table (see
README, "Audit trail"): that role cannot UPDATE, DELETE or TRUNCATE it, triggers or not."""

import os

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app_role_connection():
    if connection.vendor != "postgresql":
        pytest.skip("database roles and privileges are PostgreSQL's; SQLite has only the triggers")
    import psycopg

    role = f"mgc_audit_app_{os.getpid()}"
    db = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role} LOGIN")
        cursor.execute(f'GRANT CONNECT ON DATABASE "{db}" TO {role}')
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT ON governance_auditevent TO {role}")
        cursor.execute(f"GRANT USAGE ON SEQUENCE governance_auditevent_id_seq TO {role}")
    params = connection.settings_dict
    conn = psycopg.connect(host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432, dbname=db, user=role)
    yield conn
    conn.close()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")
        cursor.execute(f"DROP ROLE {role}")


def test_select_insert_role_cannot_update_delete_or_truncate(app_role_connection):
    import psycopg

    from tests.fixtures_audit import seed_events

    seed_events(2)
    conn = app_role_connection
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM governance_auditevent")
        assert cursor.fetchone()[0] == 2
    conn.rollback()
    for sql in ("UPDATE governance_auditevent SET comment = 'x'", "DELETE FROM governance_auditevent",
                "TRUNCATE governance_auditevent"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"), conn.cursor() as cursor:
            cursor.execute(sql)
        conn.rollback()
    # INSERT is allowed (that is how the app writes the trail); rolled back here.
    with conn.cursor() as cursor:
        cursor.execute(
            "INSERT INTO governance_auditevent (seq, timestamp, actor_username, action, model_name, comment, "
            "prev_hash, hash) VALUES (3, now(), 'x', 'user.login', '', '', %s, %s)", ["0" * 64, "1" * 64])
    conn.rollback()
    from governance.audit.models import AuditEvent

    assert list(AuditEvent.objects.values_list("comment", flat=True)) == ["event number 1", "event number 2"]
