"""emit(): an audit event becomes an outbound event, its webhook deliveries and its emails, as rows of
the caller's transaction; the tasks that send them are enqueued when that transaction commits.

Called explicitly by the code that records the audit event (governance.workflow.services, .drift),
never from a signal. Who gets mail is decided here, once, from permissions (governance.access), the
person's preferences and watches, and the caller's `turn` predicate (the workflow passes its own
request_actions, so "it is your turn" means exactly what the inbox offers).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from governance.access import ACTION_PERMS, can
from governance.notify import tasks
from governance.notify.models import (
    Delivery,
    EventKind,
    MailKind,
    MailPreference,
    ModelWatch,
    Notification,
    OutboundEvent,
    Subscription,
)
from governance.notify.text import summary
from registry_ui.mirror.models import RegisteredModel

OUTBOUND_KINDS = frozenset(EventKind.values)


def _link(path_name: str, **kwargs) -> str:
    try:
        path = reverse(path_name, kwargs=kwargs)
    except NoReverseMatch:
        return ""
    return settings.CONSOLE_BASE_URL.rstrip("/") + path if settings.CONSOLE_BASE_URL else path


def _target(subject, after: dict) -> str:
    stage = getattr(subject, "target_stage", None) or after.get("target_stage") or after.get("stage") or ""
    alias = getattr(subject, "target_alias", None) or after.get("target_alias") or after.get("alias") or ""
    if not stage and not alias and after.get("kind") in ("stage", "alias"):
        stage, alias = (after.get("target"), "") if after["kind"] == "stage" else ("", after.get("target"))
    return stage or (f"@{alias}" if alias else "")


def payload_for(event, subject=None) -> dict:
    """The Standard Webhooks body: {"type", "timestamp", "data"}; the same document the feed returns."""
    after = event.after if isinstance(event.after, dict) else {}
    data = {
        "audit_seq": event.seq,
        "model": event.model_name,
        "version": event.version,
        "request_id": event.request_id,
        "actor": event.actor_username,
        "comment": event.comment,
        "state": getattr(subject, "state", None) or after.get("state"),
        "target": _target(subject, after),
    }
    if event.request_id:
        data["url"] = _link("governance:request_detail", pk=event.request_id)
    elif event.model_name:
        data["url"] = _link("registry:model_detail", name=event.model_name)
    if event.action == "deploy.failed":
        data["error"] = after.get("error", "")
    if event.action == "registry.drift":
        data["before"], data["after"] = event.before, event.after
    if event.action == "validation.finished":
        data["validation_status"] = after.get("status")
        data["failed_checks"] = after.get("failed_checks") or []
    return {"type": event.action, "timestamp": event.timestamp.isoformat(), "data": data}


# --------------------------------------------------------------------------------------------------
# Who gets mail
# --------------------------------------------------------------------------------------------------


def _holders(action: str, model) -> Iterable:
    """Active users with an email who may `action` the model (then checked one by one with can())."""
    from guardian.shortcuts import get_users_with_perms

    app_label, codename = ACTION_PERMS[action].split(".", 1)
    perm = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    granted = [u.pk for u in get_users_with_perms(model, only_with_perms_in=[codename], with_group_users=True)]
    query = Q(is_superuser=True) | Q(pk__in=granted)
    if perm is not None:
        query |= Q(groups__permissions=perm) | Q(user_permissions=perm)
    users = get_user_model().objects.filter(query, is_active=True).exclude(email="").distinct().order_by("pk")
    return [u for u in users if can(u, action, model) and can(u, "view", model)]


def _audience(kind: str, event, subject, turn) -> list[tuple[str, object]]:
    """[(mail kind, user)] this event concerns, before preferences."""
    model = RegisteredModel.objects.filter(name=event.model_name).first() if event.model_name else None
    after = event.after if isinstance(event.after, dict) else {}
    out: list[tuple[str, object]] = []
    if model is None:
        return out  # a model the mirror no longer has: nobody can be shown it
    if kind in ("request.created", "request.reapproval_required"):
        out += [(MailKind.APPROVAL_NEEDED, u) for u in _holders("approve", model) if turn is None or turn(u, "approve")]
    if kind == "request.break_glass":
        out += [(MailKind.EMERGENCY, u) for u in _holders("approve", model)]
    if kind == "recertification.reminded":
        out += [(MailKind.RECERTIFICATION, u) for u in _holders("approve", model)]
    if kind == "finding.overdue":
        owners = set(after.get("owners") or [])
        people = [u for u in get_user_model().objects.filter(username__in=owners, is_active=True)
                  if u.email and can(u, "view", model)]
        out += [(MailKind.FINDINGS, u) for u in people + list(_holders("approve", model))]
    if kind == "request.approved" and after.get("state") == "approved":
        out += [(MailKind.DEPLOY_NEEDED, u) for u in _holders("deploy", model) if turn is None or turn(u, "deploy")]
    if kind in ("request.approved", "request.rejected", "deploy.succeeded", "deploy.failed"):
        requester = getattr(subject, "requester", None)
        if requester is not None and requester.is_active and requester.email and can(requester, "view", model):
            out.append((MailKind.MY_REQUEST, requester))
    if kind == "registry.drift":
        for watch in ModelWatch.objects.filter(model=model).select_related("user"):
            if watch.user.is_active and watch.user.email and can(watch.user, "view", model):
                out.append((MailKind.WATCHED_DRIFT, watch.user))
    return out


def _mail_body(kind: str, data: dict, mail_kind: str) -> str:
    lines = [summary(kind, data), ""]
    if data.get("comment"):
        lines += ["Comment:", data["comment"], ""]
    if data.get("error"):
        lines += ["Error:", data["error"], ""]
    if data.get("url"):
        lines += [f"Open it: {data['url']}", ""]
    lines += [f"You get this mail because: {MailKind(mail_kind).label.lower()}.",
              "Turn kinds of mail off on your profile page" + (f": {_link('notify:profile')}" if _link(
                  'notify:profile') else ".")]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# emit
# --------------------------------------------------------------------------------------------------


def emit(event, *, subject=None, turn: Callable[[object, str], bool] | None = None) -> OutboundEvent | None:
    """Write the outbound event of audit `event` with its deliveries and mails; enqueue their tasks on
    commit. Must be called inside the transaction that recorded `event`. `subject` is what the event
    is about (a promotion request: its requester, target and state are read from it); `turn(user,
    action)` says whether it is this user's turn to approve/deploy."""
    kind = event.action
    if kind not in OUTBOUND_KINDS:
        return None
    payload = payload_for(event, subject)
    outbound = OutboundEvent.objects.create(audit_seq=event.seq, kind=kind, model_name=event.model_name,
                                            version=event.version, request_id=event.request_id,
                                            occurred_at=event.timestamp, payload=payload)
    now = timezone.now()
    deliveries = [Delivery(event=outbound, subscription=sub, next_attempt_at=now)
                  for sub in Subscription.objects.filter(active=True) if sub.wants(kind, event.model_name)]
    Delivery.objects.bulk_create(deliveries)
    seen: set[tuple[int, str]] = set()
    mails = []
    audience = [(k, u) for k, u in _audience(kind, event, subject, turn) if u.pk != event.actor_id]
    muted = dict(MailPreference.objects.filter(user__in=[u.pk for _, u in audience]).values_list("user_id", "muted"))
    for mail_kind, user in audience:
        if (user.pk, mail_kind) in seen or mail_kind in (muted.get(user.pk) or []):
            continue
        seen.add((user.pk, mail_kind))
        # One line: a mail header never carries a newline from a name.
        mail_subject = " ".join(f"[Model governance] {summary(kind, payload['data'])}".split())[:300]
        mails.append(Notification(event=outbound, user=user, kind=mail_kind, subject=mail_subject,
                                  body=_mail_body(kind, payload["data"], mail_kind)))
    Notification.objects.bulk_create(mails)
    delivery_ids = list(Delivery.objects.filter(event=outbound).values_list("pk", flat=True))
    mail_ids = list(Notification.objects.filter(event=outbound).values_list("pk", flat=True))
    if delivery_ids or mail_ids:
        transaction.on_commit(lambda: enqueue_sends(delivery_ids=delivery_ids, mail_ids=mail_ids))
    return outbound


def enqueue_sends(*, delivery_ids: Iterable[int] = (), mail_ids: Iterable[int] = (),
                  delivery_attempt: dict[int, int] | None = None) -> None:
    """Enqueue one task per delivery (its next attempt number) and per mail."""
    for pk in delivery_ids:
        tasks.deliver_webhook.enqueue(pk, (delivery_attempt or {}).get(pk, 1))
    for pk in mail_ids:
        tasks.send_notification.enqueue(pk)

