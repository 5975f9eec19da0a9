"""Template helpers of the registry pages: the sync-status banner shown on every page, and small
filters for the tables."""

import html
import json

from django import template
from django.utils import timezone
from django.utils.safestring import mark_safe

from registry_ui.pages import formatting, selectors
from registry_ui.pages.markdown import render_markdown_excerpt

register = template.Library()


@register.inclusion_tag("registry/_sync_banner.html", takes_context=True)
def sync_banner(context):
    """"Registry data as of <last good sync>", and a warning when the last sync failed."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    state = selectors.sync_state()
    success = state.last_success_at if state else None
    error_at = state.last_error_at if state else None
    failed = bool(error_at and (success is None or error_at > success))
    return {"show": True, "success": success, "failed": failed, "error_at": error_at,
            "error": (state.last_error.splitlines()[0][:300] if failed and state.last_error else ""),
            "now": timezone.now()}


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key, "")
    except AttributeError:
        return ""


@register.filter
def when(value):
    """The one date format of the console: absolute, relative, ISO in the tooltip (see formatting.py)."""
    return formatting.when_html(value)


@register.filter
def when_abs(value):
    """The same <time> without the relative part (reports, printed pages)."""
    return formatting.when_html(value, relative_time=False)


@register.filter
def num(value):
    """A number to 4 significant figures, the full value on hover."""
    return formatting.number_html(value)


@register.filter
def sig4(value) -> str:
    return formatting.sig4(value)


@register.filter
def markdown_excerpt(text):
    """A description's start, markdown rendered and sanitised (inline tags only)."""
    return render_markdown_excerpt(text or "")


@register.filter
def pretty_json(contents):
    """A read-only admin field that holds JSON, indented (and "null" as an em dash); other values as they are."""
    text = html.unescape(str(contents))
    if text == "null":
        return mark_safe('<span class="muted">—</span>')  # noqa: S308 - constant
    if text[:1] not in ("{", "["):
        return contents
    try:
        value = json.loads(text)
    except ValueError:
        return contents
    pretty = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
    return mark_safe(f'<pre class="json">{html.escape(pretty)}</pre>')  # noqa: S308 - escaped
