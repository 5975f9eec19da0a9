"""Template filters of the audit pages."""

import json

from django import template

register = template.Library()


@register.filter
def as_json(value) -> str:
    """Recorded JSON as readable text (autoescaped by the template); empty for nothing."""
    if value in (None, "", {}, []):
        return "–"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, default=str)
