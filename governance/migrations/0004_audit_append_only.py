"""Triggers that make UPDATE and DELETE of audit rows fail (and TRUNCATE on PostgreSQL)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from governance.audit import db as audit_db

    audit_db.install_triggers(schema_editor.connection)


def backwards(apps, schema_editor):
    from governance.audit import db as audit_db

    audit_db.drop_triggers(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [("governance", "0003_audit_indexes")]

    operations = [migrations.RunPython(forwards, backwards)]
