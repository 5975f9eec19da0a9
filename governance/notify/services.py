"""The writers of notify's configuration: subscriptions (admins, audited), re-sends (audited), and each
person's own mail preferences and model watches."""

from __future__ import annotations

import base64
import secrets

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import audit
from governance.access import visible_models
from governance.errors import InvalidInput, NotFound, TransitionNotAllowed
from governance.notify import tasks
from governance.notify.models import (
    Delivery,
    EventKind,
    MailKind,
    MailPreference,
    ModelWatch,
    OutboxState,
    Subscription,
)
from governance.notify.safety import destination_problem
from registry_ui.mirror.models import RegisteredModel

SUBSCRIPTION_FIELDS = ("name", "url", "kinds", "model_name", "slack", "active")


def may_manage_webhooks(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and (user.is_superuser or (user.is_staff and user.has_perm("governance.change_subscription"))))


def _require_admin(actor) -> None:
    if not may_manage_webhooks(actor):
        raise PermissionDenied("Only administrators manage outbound webhooks.")


def new_secret() -> str:
    """A Standard Webhooks secret: "whsec_" + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def subscription_state(sub: Subscription) -> dict:
    """As recorded in the trail: everything but the secret."""
    return {name: getattr(sub, name) for name in SUBSCRIPTION_FIELDS}


def _clean(values: dict) -> dict:
    unknown = sorted(set(values) - set(SUBSCRIPTION_FIELDS))
    if unknown:
        raise InvalidInput(f"Not a subscription field: {', '.join(unknown)}.")
    if "url" in values and (problem := destination_problem(values["url"])):
        raise InvalidInput(problem)
    if "kinds" in values:
        kinds = list(values["kinds"] or [])
        bad = sorted(set(kinds) - set(EventKind.values))
        if bad:
            raise InvalidInput(f"Unknown event kind: {', '.join(bad)}.")
        values["kinds"] = sorted(set(kinds))
    if "name" in values and not (values["name"] or "").strip():
        raise InvalidInput("A subscription needs a name.")
    return values


def subscription_create(*, actor, name: str, url: str, kinds: list[str], model_name: str = "", slack: bool = False,
                        active: bool = True, source_ip: str | None = None) -> Subscription:
    """Create a subscription with a new secret (the caller shows it once)."""
    _require_admin(actor)
    values = _clean({"name": name, "url": url, "kinds": kinds, "model_name": model_name.strip(), "slack": slack,
                     "active": active})
    try:
        with transaction.atomic():
            sub = Subscription.objects.create(**values, secret=new_secret(), created_by=actor.get_username())
            audit.record(actor=actor, action="subscription.created", model=sub.model_name, before=None,
                         after={**subscription_state(sub), "id": sub.pk, "secret": "generated"}, source_ip=source_ip)
    except IntegrityError:
        raise InvalidInput(f"A subscription named {name!r} already exists.") from None
    return sub


def subscription_update(*, actor, subscription_id: int, changes: dict, rotate_secret: bool = False,
                        source_ip: str | None = None) -> Subscription:
    _require_admin(actor)
    values = _clean(dict(changes))
    try:
        with transaction.atomic():
            sub = Subscription.objects.select_for_update().filter(pk=subscription_id).first()
            if sub is None:
                raise NotFound("No such subscription.")
            before = subscription_state(sub)
            for key, value in values.items():
                setattr(sub, key, value)
            if rotate_secret:
                sub.secret = new_secret()
            after = subscription_state(sub)
            if before == after and not rotate_secret:
                return sub
            sub.save()
            audit.record(actor=actor, action="subscription.changed", model=sub.model_name, before=before,
                         after={**after, "id": sub.pk, **({"secret": "rotated"} if rotate_secret else {})},
                         source_ip=source_ip)
    except IntegrityError:
        raise InvalidInput(f"A subscription named {values.get('name')!r} already exists.") from None
    return sub


def subscription_delete(*, actor, subscription_id: int, source_ip: str | None = None) -> None:
    _require_admin(actor)
    with transaction.atomic():
        sub = Subscription.objects.filter(pk=subscription_id).first()
        if sub is None:
            raise NotFound("No such subscription.")
        before = {**subscription_state(sub), "id": sub.pk}
        sub.delete()
        audit.record(actor=actor, action="subscription.deleted", model=before["model_name"], before=before,
                     after=None, source_ip=source_ip)


def delivery_resend(*, actor, delivery_id: int, source_ip: str | None = None) -> Delivery:
    """Send a delivery again (same webhook-id, a fresh attempt budget). Refused while one is in flight."""
    _require_admin(actor)
    with transaction.atomic():
        delivery = Delivery.objects.select_related("event", "subscription").filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No such delivery.")
        if delivery.state in (OutboxState.PENDING, OutboxState.SENDING):
            raise TransitionNotAllowed("This delivery is still being attempted.")
        before = {"state": delivery.state, "attempts": delivery.attempts, "response_code": delivery.response_code}
        claimed = Delivery.objects.filter(pk=delivery.pk, state=delivery.state, attempts=delivery.attempts).update(
            state=OutboxState.PENDING, attempts=0, next_attempt_at=timezone.now())
        if claimed != 1:
            raise TransitionNotAllowed("Someone else changed this delivery first.")
        audit.record(actor=actor, action="delivery.resent", model=delivery.event.model_name,
                     version=delivery.event.version, request=delivery.event.request_id, before=before,
                     after={"state": OutboxState.PENDING, "delivery": delivery.pk, "webhook_id": delivery.webhook_id,
                            "subscription": delivery.subscription.name, "event": delivery.event.kind},
                     source_ip=source_ip)
        transaction.on_commit(lambda: tasks.deliver_webhook.enqueue(delivery.pk, 1))
    delivery.refresh_from_db()
    return delivery


def mail_preferences_set(*, actor, muted: list[str]) -> MailPreference:
    """A person's own choice of mail (not a governance decision, so not in the audit trail)."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Sign in first.")
    bad = sorted(set(muted) - set(MailKind.values))
    if bad:
        raise InvalidInput(f"Unknown kind of mail: {', '.join(bad)}.")
    pref, _ = MailPreference.objects.update_or_create(user=actor, defaults={"muted": sorted(set(muted))})
    return pref


def model_watch_set(*, actor, model_name: str, watch: bool) -> bool:
    """Watch (or stop watching) a model the person may see; returns whether they now watch it."""
    if not getattr(actor, "is_authenticated", False):
        raise PermissionDenied("Sign in first.")
    model = visible_models(actor, RegisteredModel.objects.all()).filter(name=model_name).first()
    if model is None:
        raise NotFound(f"No registered model {model_name!r}.")
    if watch:
        ModelWatch.objects.get_or_create(user=actor, model=model)
    else:
        ModelWatch.objects.filter(user=actor, model=model).delete()
    return watch
