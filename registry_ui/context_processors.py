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
# Beside the user's name: their own settings; and, for staff, administration pages.
ACCOUNT_NAV = [("My profile", "notify:profile")]
STAFF_NAV = [("Webhooks", "notify:subscription_list")]
# The nav entry beside which a template shows `awaiting_count` (requests waiting for my action), when
# an extension provides that count through a context processor.
COUNTED_ENTRY = "governance:inbox"


def _resolved(entries) -> tuple[tuple[str, str, bool], ...]:
    links = []
    for label, name in entries:
        try:
            links.append((label, reverse(name), name == COUNTED_ENTRY))
        except NoReverseMatch:
            continue
    return tuple(links)


@cache
def nav_links() -> tuple[tuple[str, str, bool], ...]:
    """(label, url, counted) for every main entry whose page exists."""
    return _resolved(NAV)


@cache
def account_links() -> tuple[tuple[str, str, bool], ...]:
    return _resolved(ACCOUNT_NAV)


@cache
def staff_links() -> tuple[tuple[str, str, bool], ...]:
    return _resolved(STAFF_NAV)


def console(request: HttpRequest) -> dict:
    return {"nav_links": nav_links(), "account_links": account_links(), "staff_links": staff_links(),
            "sso_enabled": settings.OIDC_ENABLED}
