"""Values every page needs (navigation, the user's roles)."""

from django.conf import settings
from django.http import HttpRequest


def user_roles(user) -> list[str]:
    """The role groups (see settings.ROLE_GROUPS) the user belongs to, in a stable order."""
    if not user.is_authenticated:
        return []
    names = {g.name for g in user.groups.all()}
    return [role for role in settings.ROLE_GROUPS if role in names]


def console(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    return {"user_roles": user_roles(user) if user is not None else []}
