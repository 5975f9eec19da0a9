"""Full-text search over the audit trail also reads each event's recorded details (before/after JSON):
a search for an alias, a tag or a stage finds the events that name it. Rebuilt with the definitions in
governance/audit/db.py (the PostgreSQL GIN index expression and the SQLite FTS5 table)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from governance.audit import db as audit_db

    audit_db.drop_search(schema_editor.connection)
    audit_db.install_search(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [("governance", "0013_validation_runs")]

    # Backwards leaves the wider index in place: it finds a superset of what the old one found.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
