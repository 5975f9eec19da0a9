"""Give the role groups their model-level permissions on registry_ui.RegisteredModel."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from governance.access import ROLES, ensure_role_permissions


def grant(apps, schema_editor):
    # Permissions are normally created after migrate (post_migrate); make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_role_permissions(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(*group.permissions.filter(content_type__app_label="registry_ui"))


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0003_workflow_models"),
        ("registry_ui", "0001_mirror"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
