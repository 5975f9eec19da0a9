"""DRF plumbing of the API tokens: authentication (knox, plus the time of last use), the permission
that enforces a token's scope, and the throttle keyed per token."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from knox.auth import TokenAuthentication
from knox.settings import knox_settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from governance.tokens.models import ApiToken, TokenScope, scope_allows


class ScopedTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <secret>`. knox hashes the secret, refuses an expired token (and deletes it)
    and refuses the token of an inactive user, on every call: deactivating a user stops their tokens at
    once. Last use is written at most once a minute per token (a conditional update, no read-modify-write)."""

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        now = timezone.now()
        stale = now - timedelta(seconds=knox_settings.MIN_REFRESH_INTERVAL)
        if token.last_used_at is None or token.last_used_at < stale:
            ApiToken.objects.filter(digest=token.digest).update(last_used_at=now)
            token.last_used_at = now
        return user, token


def request_scope(request) -> str | None:
    """The scope of the token that authenticated this request (None: a session, not a token)."""
    auth = getattr(request, "auth", None)
    return auth.scope if isinstance(auth, ApiToken) else None


class TokenScopePermission(BasePermission):
    """A token may read with any scope; a write needs the scope the view names in `token_scope`
    (a string, or a dict method -> scope). A write whose view names no scope is refused to every token."""

    message = "This token's scope does not allow this; use a token with a wider scope or sign in."

    def has_permission(self, request, view) -> bool:
        scope = request_scope(request)
        if scope is None or request.method in SAFE_METHODS:
            return True
        needed = getattr(view, "token_scope", None)
        if isinstance(needed, dict):
            needed = needed.get(request.method)
        if callable(needed):
            needed = needed(request)
        if needed is None:
            self.message = "Tokens may not do this: sign in to do it."
            return False
        if not scope_allows(scope, needed):
            self.message = f"This needs a token with scope '{needed}' (this one is '{scope}')."
            return False
        return True


class TokenRateThrottle(SimpleRateThrottle):
    """Requests per token (a session counts per user; anonymous per address). Rate: API_THROTTLE_RATE.
    Counters live in Django's cache: a shared cache is needed for one limit across web nodes."""

    scope = "token"

    def get_cache_key(self, request, view):
        token = getattr(request, "auth", None)
        if isinstance(token, ApiToken):
            ident = f"t:{token.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = f"a:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


__all__ = ["ScopedTokenAuthentication", "TokenScopePermission", "TokenRateThrottle", "TokenScope"]


class ScopedTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema names the token authentication."""

    target_class = ScopedTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <secret>`: create one on the API tokens page (shown once)."}
