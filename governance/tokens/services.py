"""Issue and revoke API tokens: permission check, write, audit event in the same transaction."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from knox.settings import knox_settings

from governance import audit
from governance.errors import InvalidInput, NotFound
from governance.tokens.models import ApiToken, TokenScope

NAME_MAX_LENGTH = ApiToken._meta.get_field("name").max_length
MAX_TTL_DAYS = 365


def token_state(token: ApiToken) -> dict:
    """What the trail records of a token: never the secret, nor its digest."""
    return {"name": token.name, "scope": token.scope, "token_key": token.token_key,
            "expiry": token.expiry.isoformat() if token.expiry else None}


def tokens_of(user):
    """The user's live tokens, newest first (expired ones are not listed)."""
    now = timezone.now()
    return ApiToken.objects.filter(user=user, expiry__gt=now).order_by("-created")


def api_token_create(*, actor, name: str, scope: str, ttl_days: int | None = None,
                     source_ip: str | None = None) -> tuple[ApiToken, str]:
    """A new token for `actor` itself. Returns the row and the secret (shown once, stored only hashed)."""
    if not (getattr(actor, "is_authenticated", False) and actor.is_active):
        raise InvalidInput("Sign in to create a token.")
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"A token needs a name of at most {NAME_MAX_LENGTH} characters.")
    if scope not in TokenScope.values:
        raise InvalidInput(f"scope must be one of {', '.join(TokenScope.values)}.")
    ttl = knox_settings.TOKEN_TTL if ttl_days is None else timedelta(days=ttl_days)
    if ttl_days is not None and not 1 <= ttl_days <= MAX_TTL_DAYS:
        raise InvalidInput(f"A token lives from 1 to {MAX_TTL_DAYS} days.")
    limit = knox_settings.TOKEN_LIMIT_PER_USER
    with transaction.atomic():
        if limit is not None and tokens_of(actor).count() >= limit:
            raise InvalidInput(f"You already hold {limit} tokens: revoke one first.")
        token, secret = ApiToken.objects.create(actor, expiry=ttl, name=name, scope=scope)
        audit.record(actor=actor, action="token.issued", after=token_state(token), source_ip=source_ip,
                     comment=f"API token {name!r} ({scope}) issued")
    return token, secret


def api_token_revoke(*, actor, token_key: str, source_ip: str | None = None) -> None:
    """Revoke one of the actor's own tokens (staff may revoke anyone's through the admin's user page)."""
    with transaction.atomic():
        qs = ApiToken.objects.filter(token_key=token_key)
        if not actor.is_superuser:
            qs = qs.filter(user=actor)
        token = qs.select_related("user").first()
        if token is None:
            raise NotFound("No such token.")
        before = token_state(token)
        ApiToken.objects.filter(digest=token.digest).delete()
        audit.record(actor=actor, action="token.revoked", before=before, source_ip=source_ip,
                     comment=f"API token {token.name!r} of {token.user.get_username()} revoked")
