"""The one policy module: who may see and do what, on which registered model.

Rule (see README "Roles"): a model-level permission held through a role group covers every
registered model, unless that model is scoped; a scoped model needs a django-guardian object
permission instead. Staff superusers may do everything. Out-of-scope objects are 404, not 403.

The workflow issue completes this module (scoping, object grants, who_may). Its signatures are the
contract the pages and services rely on.
"""

from django.core.exceptions import PermissionDenied

# action -> permission codename on registry_ui.RegisteredModel
ACTION_PERMS = {
    "view": "registry_ui.view_registeredmodel",
    "request": "registry_ui.request_promotion",
    "approve": "registry_ui.approve_promotion",
    "deploy": "registry_ui.deploy_promotion",
}


def visible_models(user, queryset):
    """Registered models this user may see (REGISTRY_VISIBILITY provider)."""
    if not user.is_authenticated:
        return queryset.none()
    if user.is_superuser or user.groups.exists():
        return queryset
    return queryset.none()


def can(user, action: str, model) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if action == "view":
        return user.groups.exists()
    return user.has_perm(ACTION_PERMS[action])


def require_perm(user, action: str, model) -> None:
    if not can(user, action, model):
        raise PermissionDenied(f"You may not {action} for model {getattr(model, 'name', model)}.")
