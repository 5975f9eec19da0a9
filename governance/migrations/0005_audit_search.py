"""Full-text search over the audit trail: a GIN index on a tsvector expression (PostgreSQL) or an
external-content FTS5 table kept by an insert trigger (SQLite)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from governance.audit import db as audit_db

    audit_db.install_search(schema_editor.connection)


def backwards(apps, schema_editor):
    from governance.audit import db as audit_db

    audit_db.drop_search(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [("governance", "0004_audit_append_only")]

    operations = [migrations.RunPython(forwards, backwards)]
