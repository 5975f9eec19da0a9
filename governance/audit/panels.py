"""Audit-trail panels on the registry pages: the stage/alias timeline of a model (deployments,
drift) from the audit events."""

from django.urls import reverse

from governance.access import can, request_checker
from governance.audit.models import AuditEvent

TIMELINE_ACTIONS = ("deploy.succeeded", "registry.drift")
TIMELINE_LIMIT = 50


def _change(event) -> str:
    """A one-line 'before -> after' of whatever stage/alias keys the event carries."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    parts = []
    for key in ("stage", "alias", "aliases", "target"):
        if key in before or key in after:
            parts.append(f"{key}: {before.get(key, '–')} → {after.get(key, '–')}")
    return "; ".join(parts)


def timeline_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    if kind != "model" or not can(request.user, "view", obj, checker=request_checker(request)):
        return []
    events = list(
        AuditEvent.objects.filter(model_name=obj.name, action__in=TIMELINE_ACTIONS)
        .order_by("-seq")
        .only("seq", "timestamp", "action", "version", "actor_username", "comment", "before", "after")[:TIMELINE_LIMIT]
    )
    rows = [{"seq": e.seq, "timestamp": e.timestamp, "action": e.action, "version": e.version,
             "actor_username": e.actor_username, "comment": e.comment, "change": _change(e),
             "kind": "drift" if e.action == "registry.drift" else "deploy"} for e in events]
    return [("audit/_timeline.html", {"events": rows, "report_url": reverse("audit:model_report", args=[obj.name])})]
