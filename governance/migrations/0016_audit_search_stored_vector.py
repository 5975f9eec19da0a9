"""PostgreSQL: the audit search's tsvector becomes a stored generated column with a GIN index, replacing
the expression index (a filtered scan no longer recomputes to_tsvector() for every row it reads; see
governance/audit/db.py). Adding the column rewrites the table once (about a minute per million events).
SQLite keeps its FTS5 table: nothing to do there."""

from django.db import migrations


def forwards(apps, schema_editor):
    from governance.audit import db as audit_db

    if schema_editor.connection.vendor == "postgresql":
        audit_db.install_search(schema_editor.connection)


def backwards(apps, schema_editor):
    from governance.audit import db as audit_db

    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX IF EXISTS {audit_db.TABLE}_search_vector")
            cursor.execute(f"ALTER TABLE {audit_db.TABLE} DROP COLUMN IF EXISTS {audit_db.PG_SEARCH_COLUMN}")
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {audit_db.TABLE}_fts ON {audit_db.TABLE} "
                           f"USING gin ({audit_db.PG_TSVECTOR})")


class Migration(migrations.Migration):

    dependencies = [("governance", "0015_model_risk")]

    operations = [migrations.RunPython(forwards, backwards)]
