"""Template filters of the audit pages."""

import json

from django import template

from governance.audit.reading import event_sentence

register = template.Library()


@register.filter
def as_json(value) -> str:
    """Recorded JSON as readable text (autoescaped by the template); empty for nothing."""
    if value in (None, "", {}, []):
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)


# The design system's six state colours (static/css/app.css), by audit action.
ACTION_STATES = {
    "request.created": "requested", "request.approved": "approved", "deploy.started": "approved",
    "deploy.succeeded": "deployed", "deploy.failed": "failed", "request.rejected": "failed",
    "request.cancelled": "archived", "registry.drift": "drift", "request.reapproval_required": "failed",
}


@register.filter
def state_class(action: str) -> str:
    """'state-deployed' for deploy.succeeded, ...; '' for actions that are not a state."""
    state = ACTION_STATES.get(action or "")
    return f"state-{state}" if state else ""


@register.filter
def sentence(event) -> str:
    """The event as a sentence a person reads ("alice requested v3 → @champion (request #7)")."""
    return event_sentence(event)
