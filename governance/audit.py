"""The one way to write the audit trail.

Every state change calls record() inside its own transaction, so an event exists if and only if the
change it records was committed. Each row carries the SHA-256 of a canonical JSON of its content plus
the previous row's hash.
"""

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from governance.models import AuditEvent

GENESIS_HASH = "0" * 64

# The fixed, namespaced vocabulary. Extend it here, nowhere else.
ACTIONS = frozenset(
    {
        "request.created",
        "request.approved",
        "request.rejected",
        "request.cancelled",
        "deploy.started",
        "deploy.succeeded",
        "deploy.failed",
        "registry.drift",
        "registry.synced",
        "permission.granted",
        "permission.revoked",
        "group.member_added",
        "group.member_removed",
        "user.login",
        "user.login_failed",
        "user.logout",
        "report.exported",
        "audit.checkpoint",
    }
)


class UnknownAuditAction(ValueError):
    pass


def canonical_payload(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "timestamp": event.timestamp.isoformat(),
        "actor": event.actor_username,
        "action": event.action,
        "model": event.model_name,
        "version": event.version,
        "request": event.request_id,
        "before": event.before,
        "after": event.after,
        "comment": event.comment,
        "source_ip": event.source_ip,
        "prev_hash": event.prev_hash,
    }


def compute_hash(event: AuditEvent) -> str:
    blob = json.dumps(canonical_payload(event), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def record(
    *,
    actor=None,
    actor_name: str | None = None,
    action: str,
    model: str | Any = "",
    version: int | None = None,
    request: int | Any | None = None,
    before: Any = None,
    after: Any = None,
    comment: str = "",
    source_ip: str | None = None,
) -> AuditEvent:
    """Append one event. `actor` is a User or None (then `actor_name`, e.g. "system:sync", names it).

    `model` may be a RegisteredModel or a name; `request` an object with a pk or an id.
    Must be called inside the caller's transaction.atomic() block.
    """
    if action not in ACTIONS:
        raise UnknownAuditAction(action)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    name = actor.get_username() if actor is not None else (actor_name or "anonymous")
    model_name = getattr(model, "name", model) or ""
    request_id = getattr(request, "pk", request)
    with transaction.atomic():
        last = AuditEvent.objects.order_by("-seq").only("seq", "hash").first()
        event = AuditEvent(
            seq=(last.seq + 1) if last else 1,
            timestamp=timezone.now(),
            actor=actor,
            actor_username=name,
            action=action,
            model_name=model_name,
            version=version,
            request_id=request_id,
            before=before,
            after=after,
            comment=comment or "",
            source_ip=source_ip,
            prev_hash=last.hash if last else GENESIS_HASH,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
    return event
