"""Who may see and do what, on which registered model: the one place that answers "may this user ...".

Rule (see README "Roles and scoping"):
- view: the model-level `view_registeredmodel` (all four role groups hold it) or an object grant.
- request / approve / deploy: a model-level permission held through a role group (or directly)
  covers every registered model that is NOT scoped. A scoped model (ModelPolicy.scoped, switched in
  the admin) ignores model-level permissions: only django-guardian object grants on that model count.
- Superusers may do everything the workflow's rules (separation of duties) allow.
Out-of-scope objects are 404 for reading (selectors filter them), 403 for actions on visible ones.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied


class Role:
    """The four role groups, named here and only here (migrations, templates and tests read them)."""

    do_not_call_in_templates = True

    DATA_SCIENTIST = "data_scientist"
    ML_ENGINEER = "ml_engineer"
    OPS = "ops"
    AUDITOR = "auditor"


ROLES = [Role.DATA_SCIENTIST, Role.ML_ENGINEER, Role.OPS, Role.AUDITOR]

# action -> permission codename on registry_ui.RegisteredModel
ACTION_PERMS = {
    "view": "registry_ui.view_registeredmodel",
    "request": "registry_ui.request_promotion",
    "approve": "registry_ui.approve_promotion",
    "deploy": "registry_ui.deploy_promotion",
    # Granted on its own (no role carries it): an ops user who also holds it may deploy or roll back
    # without approval in an incident; every such deploy opens a review (governance.workflow).
    "break_glass": "registry_ui.break_glass_promotion",
}

# Role group -> model-level permissions (codename on registry_ui.RegisteredModel). Attached by the
# migration governance.0004_workflow_role_permissions; ensure_role_permissions() repeats it.
ROLE_PERMISSIONS = {
    Role.DATA_SCIENTIST: ["view_registeredmodel", "request_promotion"],
    Role.ML_ENGINEER: ["view_registeredmodel", "approve_promotion"],
    Role.OPS: ["view_registeredmodel", "deploy_promotion"],
    Role.AUDITOR: ["view_registeredmodel"],
}


def ensure_role_groups(group_model=None) -> None:
    """Idempotent: the role groups exist (a data migration makes them; a transactional test's flush or a
    repair script may need them again)."""
    group_model = group_model or Group
    for name in ROLES:
        group_model.objects.get_or_create(name=name)


def user_roles(user) -> list[str]:
    """The role groups the user belongs to, in ROLES order."""
    if user is None or not user.is_authenticated:
        return []
    names = {g.name for g in user.groups.all()}
    return [role for role in ROLES if role in names]


def is_auditor(user) -> bool:
    """Reads the whole trail: auditors, staff and superusers."""
    return user.is_staff or user.is_superuser or user.groups.filter(name=Role.AUDITOR).exists()


def is_operator(user) -> bool:
    """Runs the console: the Operations page, "Sync now". Ops, staff and superusers."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_staff or user.is_superuser or user.groups.filter(name=Role.OPS).exists()


def roles_context(request) -> dict:
    """Template context processor: `user_roles` and `Role` on every page. Panels render with the same
    request, so the roles are read once per request (and user)."""
    user = getattr(request, "user", None)
    cached = getattr(request, "_console_roles", None)
    if cached is None or cached[0] is not user:
        cached = request._console_roles = (user, user_roles(user))
    return {"user_roles": cached[1], "Role": Role}


def ensure_role_permissions(group_model=None, permission_model=None) -> None:
    """Idempotent: give each role group its model-level permissions (migration and test repair)."""
    group_model = group_model or Group
    permission_model = permission_model or Permission
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        perms = permission_model.objects.filter(content_type__app_label="registry_ui",
                                                content_type__model="registeredmodel", codename__in=codenames)
        group.permissions.add(*perms)


def _codename(action: str) -> str:
    return ACTION_PERMS[action].split(".", 1)[1]


def is_scoped(model) -> bool:
    if model is None or getattr(model, "pk", None) is None:
        return False
    cached = getattr(model, "_governance_scoped", None)
    if cached is None:
        # Through the reverse relation of ModelPolicy.model (related_name "policy"), so this module
        # does not import the workflow package, which builds on it.
        cached = type(model).objects.filter(pk=model.pk, policy__scoped=True).exists()
        model._governance_scoped = cached
    return cached


def visible_models(user, queryset):
    """Registered models this user may see (REGISTRY_VISIBILITY provider)."""
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if user.is_superuser or user.has_perm(ACTION_PERMS["view"]):
        return queryset
    from guardian.shortcuts import get_objects_for_user

    granted = get_objects_for_user(user, ACTION_PERMS["view"], klass=queryset.model, accept_global_perms=False)
    if not granted.exists():
        # No role and no grant: an explicit none(), which the registry pages answer with 403 ("ask an
        # administrator") rather than an empty catalogue.
        return queryset.none()
    return queryset.filter(pk__in=granted.values("pk"))


def request_checker(request):
    """One django-guardian ObjectPermissionChecker per request: it reads a user's grants on an object
    once (2 queries) and answers every later check on that object from its cache. Without it each
    `user.has_perm(perm, obj)` builds a new checker and re-reads the grants. Grants do not change
    within one page request; services, which may change them, never use this."""
    checker = getattr(request, "_governance_perm_checker", None)
    if checker is None or checker.user is not request.user:
        from guardian.core import ObjectPermissionChecker

        checker = request._governance_perm_checker = ObjectPermissionChecker(request.user)
    return checker


def can(user, action: str, model, *, checker=None) -> bool:
    """May `user` do `action` on `model`? `checker` (request_checker) only caches the object grants."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_superuser:
        return True
    perm = ACTION_PERMS[action]
    if model is not None and (checker.has_perm(perm, model) if checker is not None
                              else user.has_perm(perm, model)):  # guardian object grant
        return True
    if action == "view":
        return user.has_perm(perm)
    return user.has_perm(perm) and not is_scoped(model)


def require_perm(user, action: str, model) -> None:
    if not can(user, action, model):
        raise PermissionDenied(f"You may not {action} for model {getattr(model, 'name', model)}.")


def allowed_actions(*, user, obj, checker=None) -> list[str]:
    """What this user may do now on a registered model: a subset of view, request, approve, deploy,
    rollback. The buttons shown are exactly these, and the services apply the same checks. (A promotion
    request's actions depend on its state and the workflow's rules: governance.workflow.policies.
    request_actions.)"""
    actions = [a for a in ("view", "request", "approve", "deploy") if can(user, a, obj, checker=checker)]
    if "request" in actions or "deploy" in actions:
        actions.append("rollback")
    return actions


def who_may(model) -> dict[str, list[str]]:
    """{action: ["group:ml_engineer", "alice", ...]} for request/approve/deploy on this model
    (superusers may always, and are not listed)."""
    from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

    scoped = is_scoped(model)
    user_grants = get_users_with_perms(model, attach_perms=True, with_superusers=False, with_group_users=False)
    group_grants = get_groups_with_perms(model, attach_perms=True)
    codenames = {action: _codename(action) for action in ("request", "approve", "deploy")}
    global_holders: dict[str, set[str]] = {c: set() for c in codenames.values()}
    if not scoped:  # model-level permissions count: two queries for all three actions
        wanted = list(codenames.values())
        for name, codename in Group.objects.filter(
                permissions__content_type__app_label="registry_ui", permissions__codename__in=wanted,
        ).values_list("name", "permissions__codename"):
            global_holders[codename].add(f"group:{name}")
        for name, codename in get_user_model().objects.filter(
                is_active=True, user_permissions__content_type__app_label="registry_ui",
                user_permissions__codename__in=wanted,
        ).values_list("username", "user_permissions__codename"):
            global_holders[codename].add(name)
    result = {}
    for action, codename in codenames.items():
        names = set(global_holders[codename])
        names |= {f"group:{g.name}" for g, perms in group_grants.items() if codename in perms}
        names |= {u.get_username() for u, perms in user_grants.items() if codename in perms}
        result[action] = sorted(names)
    return result
