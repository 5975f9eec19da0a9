"""Audit-trail panels on the registry pages: the stage/alias timeline of a model (deployments,
drift) from the audit events."""

from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

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


DRIFT_BANNER_DAYS = 30


def drift_banner(request, model) -> list[tuple[str, dict]]:
    """The model page's top banner: MLflow changes no governed deploy explains (drift), recorded in the
    last DRIFT_BANNER_DAYS days, newest first, with a link to those events in the trail."""
    since = timezone.now() - timedelta(days=DRIFT_BANNER_DAYS)
    drift = AuditEvent.objects.filter(model_name=model.name, action="registry.drift", timestamp__gte=since)
    count = drift.count()
    if not count:
        return []
    latest = drift.order_by("-seq").only("timestamp", "version", "actor_username", "before", "after").first()
    return [("audit/_drift_banner.html", {
        "count": count, "days": DRIFT_BANNER_DAYS, "latest": latest, "change": _change(latest),
        "trail_url": reverse("audit:search") + "?" + urlencode({"action": "registry.drift", "model": model.name}),
    })]


def timeline_panels(kind: str, request, obj) -> list[tuple[str, dict]]:
    if kind not in ("model", "model_banner") or not can(request.user, "view", obj, checker=request_checker(request)):
        return []
    if kind == "model_banner":
        return drift_banner(request, obj)
    events = list(
        AuditEvent.objects.filter(model_name=obj.name, action__in=TIMELINE_ACTIONS)
        .order_by("-seq")
        .only("seq", "timestamp", "action", "version", "actor_username", "comment", "before", "after")[:TIMELINE_LIMIT]
    )
    rows = [{"seq": e.seq, "timestamp": e.timestamp, "action": e.action, "version": e.version,
             "actor_username": e.actor_username, "comment": e.comment, "change": _change(e),
             "kind": "drift" if e.action == "registry.drift" else "deploy"} for e in events]
    return [("audit/_timeline.html", {"events": rows, "report_url": reverse("audit:model_report", args=[obj.name])})]
