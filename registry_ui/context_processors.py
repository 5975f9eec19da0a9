"""Values every page needs: the navigation. (The user's roles come from governance.access.roles_context.)"""

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
    ("API tokens", "tokens:token_list"),
    ("API", "api_docs:redoc"),
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


def console(request: HttpRequest) -> dict:
    return {"nav_links": nav_links(), "sso_enabled": settings.OIDC_ENABLED}
