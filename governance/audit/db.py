"""Database-level protection and search support of the audit table, per vendor.

Used by the migrations (append-only triggers, full-text search index) and by the test suite (which
must flush tables between transactional tests, and simulates an attacker who drops the triggers).
Nothing here is called by the running application.
"""

TABLE = "governance_auditevent"
FTS_TABLE = "governance_auditevent_fts"
# The one text expression PostgreSQL full-text search stores per row (see PG_SEARCH).
# The recorded before/after JSON is in it too, so a search for an alias, a tag or a stage finds the
# events whose details name it (the keys and values are words to the 'simple' parser).
PG_TSVECTOR = ("to_tsvector('simple'::regconfig, actor_username || ' ' || action || ' ' || model_name || ' ' "
               "|| comment || ' ' || coalesce(\"before\"::text, '') || ' ' || coalesce(\"after\"::text, ''))")

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'audit trail is append-only: DELETE refused'); END""",
]
SQLITE_DROP_TRIGGERS = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"]

PG_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit trail is append-only: % refused', TG_OP;
        END $$""",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
    f"""CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()""",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse()""",
]
PG_DROP_TRIGGERS = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_refuse()",
]

# SQLite full-text search: an external-content FTS5 table over the audit table, kept current by an
# AFTER INSERT trigger. The audit table never sees UPDATE or DELETE, so insert is the only trigger
# the index needs (and the append-only triggers cannot collide with it).
SQLITE_SEARCH = [
    # "before" and "after" (the recorded details, JSON text) are indexed too: see PG_TSVECTOR.
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(
        actor_username, action, model_name, comment, "before", "after",
        content='{TABLE}', content_rowid='id', prefix='2 3')""",
    f"""CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON {TABLE} BEGIN
        INSERT INTO {FTS_TABLE}(rowid, actor_username, action, model_name, comment, "before", "after")
        VALUES (new.id, new.actor_username, new.action, new.model_name, new.comment, new."before",
                new."after"); END""",  # noqa: S608
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES('rebuild')",
]
SQLITE_DROP_SEARCH = [f"DROP TRIGGER IF EXISTS {FTS_TABLE}_ai", f"DROP TABLE IF EXISTS {FTS_TABLE}"]
# PostgreSQL: the tsvector is stored in a generated column (computed once, at INSERT) with a GIN index on
# it. With only an expression index, every plan that filters rows instead of reading the index (the
# newest-first scan of a text search, a seq range under stale statistics) recomputed to_tsvector() over
# each row's text and JSON: 20,000 rows cost half a second. Reading the stored vector costs microseconds.
# The ORM never names the column (the model does not declare it): INSERTs fill it, SELECTs skip it.
PG_SEARCH_COLUMN = "search_vector"
PG_SEARCH = [
    f"DROP INDEX IF EXISTS {TABLE}_fts",  # the expression index the column replaces
    f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {PG_SEARCH_COLUMN} tsvector "
    f"GENERATED ALWAYS AS ({PG_TSVECTOR}) STORED",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_search_vector ON {TABLE} USING gin ({PG_SEARCH_COLUMN})",
]
PG_DROP_SEARCH = [f"DROP INDEX IF EXISTS {TABLE}_search_vector", f"DROP INDEX IF EXISTS {TABLE}_fts",
                  f"ALTER TABLE {TABLE} DROP COLUMN IF EXISTS {PG_SEARCH_COLUMN}"]


def _run(connection, statements) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install_triggers(connection) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_TRIGGERS)
    elif connection.vendor == "postgresql":
        _run(connection, PG_TRIGGERS)


def drop_triggers(connection) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_DROP_TRIGGERS)
    elif connection.vendor == "postgresql":
        _run(connection, PG_DROP_TRIGGERS)


def install_search(connection) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_SEARCH)
    elif connection.vendor == "postgresql":
        _run(connection, PG_SEARCH)


def drop_search(connection) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_DROP_SEARCH)
    elif connection.vendor == "postgresql":
        _run(connection, PG_DROP_SEARCH)


def flush_statements(connection, sql_list: list[str]) -> list[str]:
    """Django's table flush (test teardown) wrapped so the append-only triggers let it through.

    Only the test suite uses this: production never flushes the audit table.
    """
    if not any(TABLE in sql for sql in sql_list):
        return sql_list
    if connection.vendor == "sqlite":
        return [*SQLITE_DROP_TRIGGERS, *sql_list, f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES('delete-all')",
                *SQLITE_TRIGGERS]
    if connection.vendor == "postgresql":
        return [f"ALTER TABLE {TABLE} DISABLE TRIGGER USER", *sql_list, f"ALTER TABLE {TABLE} ENABLE TRIGGER USER"]
    return sql_list
