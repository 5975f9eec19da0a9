"""One way to show a number and a date on every page (the design system's text half; the colours are
in static/css/app.css).

- Numbers: 4 significant figures, the full value in a `title` tooltip. Exact integers stay whole.
- Dates: one absolute format ("2026-11-23 08:00 UTC") with the relative time beside it, the full ISO
  timestamp in the tooltip, inside <time datetime> so machines read it too.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from html import escape

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

DATE_FORMAT = "%Y-%m-%d %H:%M %Z"


def as_float(raw) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def sig4(raw) -> str:
    """0.9234567 -> "0.9235", 1234.567 -> "1235", 12345.6 -> "12350", 0.000123456 -> "0.0001235", 3 -> "3"."""
    value = as_float(raw)
    if value is None:
        return "" if raw is None else str(raw)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    magnitude = math.floor(math.log10(abs(value)))
    if 3 <= magnitude < 6:
        return str(int(round(value, 3 - magnitude)))
    if -4 <= magnitude < 3:
        text = f"{value:.{max(0, 3 - magnitude)}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{value:.4g}"


def full_number(raw) -> str:
    value = as_float(raw)
    if value is None:
        return "" if raw is None else str(raw)
    return repr(value) if value != int(value) or abs(value) >= 1e16 else str(int(value))


def number_html(raw) -> SafeString:
    """<span title="full value">4 significant figures</span>; an em dash for nothing."""
    if raw is None or raw == "":
        return mark_safe('<span class="muted">—</span>')  # noqa: S308 - constant
    short, full = sig4(raw), full_number(raw)
    if short == full:
        return mark_safe(f'<span class="number">{escape(short)}</span>')  # noqa: S308 - escaped
    return mark_safe(f'<span class="number" title="{escape(full)}">{escape(short)}</span>')  # noqa: S308 - escaped


def _aware(value) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return timezone.localtime(value)


def relative(value: datetime, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if abs((now - value).total_seconds()) < 60:
        return "just now"
    if value <= now:
        return f"{timesince(value, now, depth=1)} ago"
    return f"in {timeuntil(value, now, depth=1)}"


def absolute(value) -> str:
    moment = _aware(value)
    return moment.strftime(DATE_FORMAT) if moment else ""


def when_html(value, *, relative_time: bool = True, now: datetime | None = None) -> SafeString:
    """<time datetime="ISO" title="ISO">2026-11-23 08:00 UTC (3 hours ago)</time>; a dash for nothing."""
    moment = _aware(value)
    if moment is None:
        return mark_safe('<span class="muted">—</span>') if not value else mark_safe(escape(str(value)))  # noqa: S308
    iso = escape(moment.isoformat())
    text = moment.strftime(DATE_FORMAT)
    if relative_time:
        text += f" ({relative(moment, now)})"
    return mark_safe(f'<time datetime="{iso}" title="{iso}">{escape(text)}</time>')  # noqa: S308 - escaped
