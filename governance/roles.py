"""The four role groups. Created by a data migration; ensure_role_groups() is idempotent so a
transactional test (which flushes tables) or a repair script can recreate them."""

ROLES = ["data_scientist", "ml_engineer", "ops", "auditor"]


def ensure_role_groups(group_model=None) -> None:
    if group_model is None:
        from django.contrib.auth.models import Group as group_model
    for name in ROLES:
        group_model.objects.get_or_create(name=name)
