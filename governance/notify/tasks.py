"""The tasks that send what the outbox holds, and the sweep that finds rows whose task was lost.

Every task claims its row with a conditional UPDATE first, so a task enqueued twice (by the sweep, or a
re-send) sends once. Webhooks are at-least-once only across a worker crash mid-POST (the same webhook-id,
so receivers de-duplicate); a mail whose worker died mid-send is marked failed, never sent again.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from governance.access import can
from governance.notify.models import Delivery, MailPreference, Notification, OutboxState
from governance.notify.sending import backoff, body_for, post_signed, send_mail
from registry_ui.mirror.models import RegisteredModel
from registry_ui.scheduler.jobs import PeriodicJob

# A task may start this much before the row's next_attempt_at (clocks of web and worker differ slightly).
CLOCK_SLACK = timedelta(seconds=2)


def _enqueue_attempt(pk: int, attempt: int, run_after=None) -> None:
    runner = deliver_webhook.using(run_after=run_after) if run_after else deliver_webhook
    transaction.on_commit(lambda: runner.enqueue(pk, attempt))


@task()
def deliver_webhook(delivery_id: int, attempt: int) -> str:
    """Attempt number `attempt` of one delivery; on failure schedule the next with exponential backoff,
    until OUTBOUND_WEBHOOK_MAX_ATTEMPTS, then the delivery is failed (an admin may re-send it)."""
    now = timezone.now()
    claimed = Delivery.objects.filter(pk=delivery_id, state=OutboxState.PENDING, attempts=attempt - 1,
                                      next_attempt_at__lte=now + CLOCK_SLACK).update(
        state=OutboxState.SENDING, attempts=attempt, last_attempt_at=now)
    if claimed != 1:
        return "not claimed (already sent, or another attempt holds it)"
    delivery = Delivery.objects.select_related("event", "subscription").get(pk=delivery_id)
    sub = delivery.subscription
    if not sub.active:
        Delivery.objects.filter(pk=delivery_id).update(state=OutboxState.SKIPPED, last_error="subscription inactive")
        return "skipped"
    body = body_for(sub, delivery.event.payload)
    outcome = post_signed(url=sub.url, secret=sub.secret, msg_id=delivery.webhook_id, body=body)
    done = timezone.now()
    with transaction.atomic():
        if outcome.ok:
            Delivery.objects.filter(pk=delivery_id, state=OutboxState.SENDING).update(
                state=OutboxState.SUCCEEDED, response_code=outcome.status, delivered_at=done, last_error="")
            return "delivered"
        if attempt >= settings.OUTBOUND_WEBHOOK_MAX_ATTEMPTS or outcome.error.startswith("refused"):
            Delivery.objects.filter(pk=delivery_id, state=OutboxState.SENDING).update(
                state=OutboxState.FAILED, response_code=outcome.status, last_error=outcome.error)
            return "failed"
        retry_at = done + backoff(attempt)
        Delivery.objects.filter(pk=delivery_id, state=OutboxState.SENDING).update(
            state=OutboxState.PENDING, response_code=outcome.status, last_error=outcome.error,
            next_attempt_at=retry_at)
        _enqueue_attempt(delivery_id, attempt + 1, run_after=retry_at)
    return f"retry at {retry_at.isoformat()}"


@task()
def send_notification(notification_id: int) -> str:
    """Send one mail, if its person may still see the model and still wants this kind of mail."""
    now = timezone.now()
    if Notification.objects.filter(pk=notification_id, state=OutboxState.PENDING).update(
            state=OutboxState.SENDING, claimed_at=now) != 1:
        return "not claimed"
    mail = Notification.objects.select_related("user", "event").get(pk=notification_id)
    user = mail.user
    model = RegisteredModel.objects.filter(name=mail.event.model_name).first()
    muted = MailPreference.objects.filter(user=user).values_list("muted", flat=True).first() or []
    why_not = ("inactive or no address" if not (user.is_active and user.email) else
               "may no longer see the model" if model is None or not can(user, "view", model) else
               "turned off by the person" if mail.kind in muted else "")
    if why_not:
        Notification.objects.filter(pk=notification_id).update(state=OutboxState.SKIPPED, last_error=why_not)
        return f"skipped: {why_not}"
    try:
        send_mail(to=user.email, subject=mail.subject, body=mail.body)
    except Exception as exc:  # noqa: BLE001 - any transport error is recorded on the row
        Notification.objects.filter(pk=notification_id).update(state=OutboxState.FAILED,
                                                                last_error=f"{type(exc).__name__}: {exc}"[:1000])
        return "failed"
    Notification.objects.filter(pk=notification_id).update(state=OutboxState.SUCCEEDED, sent_at=timezone.now())
    return "sent"


@task()
def sweep_outbox() -> dict:
    """Re-enqueue outbox rows whose task was lost (a crashed worker, a lost queue). Meant to run every
    minute or so from the scheduler; harmless to run any time (each task claims its row)."""
    now = timezone.now()
    grace = timedelta(seconds=settings.NOTIFY_SWEEP_GRACE_SECONDS)
    counts = {"deliveries": 0, "mails": 0, "stale_deliveries": 0, "stale_mails": 0}
    with transaction.atomic():
        for pk, attempts in Delivery.objects.filter(state=OutboxState.PENDING,
                                                    next_attempt_at__lte=now - grace).values_list("pk", "attempts"):
            _enqueue_attempt(pk, attempts + 1)
            counts["deliveries"] += 1
        for pk, attempts in Delivery.objects.filter(state=OutboxState.SENDING,
                                                    last_attempt_at__lte=now - grace).values_list("pk", "attempts"):
            # The worker died during the POST: the receiver may have it (same webhook-id), send again.
            final = attempts >= settings.OUTBOUND_WEBHOOK_MAX_ATTEMPTS
            if Delivery.objects.filter(pk=pk, state=OutboxState.SENDING, attempts=attempts).update(
                    state=OutboxState.FAILED if final else OutboxState.PENDING, next_attempt_at=now,
                    last_error="the worker stopped during this attempt") == 1 and not final:
                _enqueue_attempt(pk, attempts + 1)
            counts["stale_deliveries"] += 1
        for pk in Notification.objects.filter(state=OutboxState.PENDING,
                                              created_at__lte=now - grace).values_list("pk", flat=True):
            transaction.on_commit(lambda pk=pk: send_notification.enqueue(pk))
            counts["mails"] += 1
        # A mail cannot be de-duplicated by its reader: one whose sender died is not sent again.
        counts["stale_mails"] = Notification.objects.filter(state=OutboxState.SENDING,
                                                            claimed_at__lte=now - grace).update(
            state=OutboxState.FAILED, last_error="outcome unknown: the worker stopped while sending; not re-sent "
                                                 "so that nobody gets it twice")
    return {"outcome": "done", "detail": ", ".join(f"{k}={v}" for k, v in counts.items()), **counts}


SWEEP_JOB = PeriodicJob(name="notify.sweep_outbox", task=sweep_outbox, interval_setting="NOTIFY_SWEEP_INTERVAL",
                        default=60, description="re-enqueue webhook deliveries and mails whose task was lost")
