"""Reads of notify: the event feed (scoped to what the reader may see), the delivery log, a person's
preferences and watches."""

from __future__ import annotations

from django.conf import settings

from governance.access import can, visible_models
from governance.errors import InvalidInput
from governance.notify.models import Delivery, MailKind, MailPreference, ModelWatch, OutboundEvent, Subscription
from registry_ui.mirror.models import RegisteredModel

FEED_MAX = 500


def events_visible_to(user):
    """Outbound events on models this user may see (everyone with the model-level view permission sees
    all of them, also events on models since deleted from MLflow)."""
    qs = OutboundEvent.objects.all()
    if can(user, "view", None):
        return qs
    return qs.filter(model_name__in=visible_models(user, RegisteredModel.objects.all()).values("name"))


def parse_cursor(value: str | None) -> int:
    """The cursor is the id of the last event read ("" or absent: from the start)."""
    if value in (None, ""):
        return 0
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput("after must be a cursor returned by this feed (a non-negative integer).")
    return int(value)


def parse_limit(value: str | None) -> int:
    if value in (None, ""):
        return settings.EVENT_FEED_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= FEED_MAX:
        raise InvalidInput(f"limit must be a whole number from 1 to {FEED_MAX}.")
    return int(value)


def feed_page(user, *, after: int, limit: int) -> tuple[list[dict], str]:
    """Up to `limit` events after cursor `after`, oldest first, and the cursor to ask with next (the
    same cursor when nothing new: poll again with it)."""
    rows = list(events_visible_to(user).filter(pk__gt=after).order_by("pk")[:limit])
    items = [{"id": str(e.pk), **e.payload} for e in rows]
    return items, str(rows[-1].pk if rows else after)


def deliveries_page(*, state: str = "", subscription: int | None = None, limit: int = 100):
    qs = Delivery.objects.select_related("event", "subscription").order_by("-id")
    if state:
        qs = qs.filter(state=state)
    if subscription:
        qs = qs.filter(subscription_id=subscription)
    return list(qs[:limit])


def subscriptions():
    return list(Subscription.objects.order_by("name"))


def profile(user) -> dict:
    muted = MailPreference.objects.filter(user=user).values_list("muted", flat=True).first() or []
    watches = list(ModelWatch.objects.filter(user=user, model__in=visible_models(user, RegisteredModel.objects.all()))
                   .select_related("model").order_by("model__name"))
    return {"muted": muted, "kinds": MailKind.choices, "watches": watches}


def watches(user, model) -> bool:
    return ModelWatch.objects.filter(user=user, model=model).exists()
