"""Create the four role groups. Their permissions are attached by the workflow migrations."""

from django.db import migrations

from governance.access import ROLES, ensure_role_groups


def create_roles(apps, schema_editor):
    ensure_role_groups(apps.get_model("auth", "Group"))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0001_audit_event"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
