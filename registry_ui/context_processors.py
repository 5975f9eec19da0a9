"""Values every page needs (navigation, the user's roles)."""

from functools import cache

from django.conf import settings
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

# (label, url name): an entry shows once its page exists, so each area adds its own without edits here.
NAV = [
    ("Models", "registry:catalogue"),
    ("Compare", "registry:compare"),
    ("Inbox", "governance:inbox"),
    ("Requests", "governance:request_list"),
    ("Audit trail", "audit:search"),
    ("Reports", "audit:report_index"),
]


@cache
def nav_links() -> tuple[tuple[str, str], ...]:
    links = []
    for label, name in NAV:
        try:
            links.append((label, reverse(name)))
        except NoReverseMatch:
            continue
    return tuple(links)


def user_roles(user) -> list[str]:
    """The role groups (see settings.ROLE_GROUPS) the user belongs to, in a stable order."""
    if not user.is_authenticated:
        return []
    names = {g.name for g in user.groups.all()}
    return [role for role in settings.ROLE_GROUPS if role in names]


def console(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    # Panels render with the same request: read the roles once per request (and user).
    cached = getattr(request, "_console_roles", None)
    if cached is None or cached[0] is not user:
        cached = request._console_roles = (user, user_roles(user) if user is not None else [])
    return {"user_roles": cached[1], "nav_links": nav_links()}
