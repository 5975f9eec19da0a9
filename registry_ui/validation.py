"""What every form and serializer that reads user input shares: text checks, limits read from the
model fields, and the one JSON shape of an API's "invalid input" answer.

Lives in registry_ui (not governance) because both halves use it and registry_ui never imports governance.
"""

from __future__ import annotations

import unicodedata

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from rest_framework import serializers

# Free-text filters (search boxes, tag filters) are matched, never stored, so no model field bounds
# them; a longer one is a paste accident, not a search.
FILTER_TEXT_MAX_LENGTH = 300

# Bidirectional overrides and isolates make text display in an order other than the one stored
# ("Trojan Source"): in a name or an audit comment that would make the record lie to its reader.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")


def _bad_characters(value: str, allowed: frozenset[str]) -> bool:
    return any((unicodedata.category(c) == "Cc" and c not in allowed) or c in _BIDI_CONTROLS for c in value)


def single_line(value: str) -> None:
    """Names, filters, search text: one line of printable text."""
    if value and _bad_characters(value, frozenset()):
        raise ValidationError("Control characters (line breaks, tabs, invisible direction marks) are not "
                              "allowed here.", code="control_characters")


def multi_line(value: str) -> None:
    """Comments and justifications: line breaks and tabs are fine, other control characters are not."""
    if value and _bad_characters(value, _LINE_BREAKS_AND_TABS):
        raise ValidationError("Control characters other than line breaks and tabs (e.g. NUL, escape, "
                              "invisible direction marks) are not allowed here.", code="control_characters")


def normalise_newlines(value: str) -> str:
    # A browser counts a line break as one character against maxlength but submits it as CRLF: without
    # this, text the page accepted at exactly the limit would be refused as too long.
    return value.replace("\r\n", "\n").replace("\r", "\n")


def max_length_of(model, field_name: str) -> int:
    """The database limit of a CharField, so forms never repeat (and drift from) the number."""
    return model._meta.get_field(field_name).max_length


def max_value_of(model, field_name: str) -> int | None:
    """The largest value an integer column takes on this database (a larger one would be a 500)."""
    limits = [v.limit_value for v in model._meta.get_field(field_name).validators if isinstance(v, MaxValueValidator)]
    return min(limits) if limits else None


def length_hint(limit: int) -> str:
    return f"At most {limit} characters."


class MultiLineField(forms.CharField):
    """A comment or justification: a textarea with maxlength and a visible limit, CRLF counted as one."""

    def __init__(self, *, max_length: int, rows: int = 4, **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows}))
        kwargs.setdefault("help_text", length_hint(max_length))
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(multi_line)

    def to_python(self, value):
        value = super().to_python(value)
        return normalise_newlines(value) if isinstance(value, str) else value


class SingleLineField(forms.CharField):
    """A name or a filter: one line, maxlength rendered, the limit shown."""

    def __init__(self, *, max_length: int, **kwargs):
        kwargs.setdefault("help_text", length_hint(max_length))
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(single_line)


def form_errors(form: forms.Form) -> dict[str, list[str]]:
    """A bound, invalid form's errors as plain strings per field ("__all__" for the form as a whole)."""
    return {name: [str(m) for m in messages] for name, messages in form.errors.items()}


def invalid_input_body(fields: dict[str, list[str]]) -> dict:
    """The API's 400 body: `detail` (one line, what clients have always read) and `fields` (per field)."""
    parts = []
    for name, messages in fields.items():
        text = " ".join(messages)
        parts.append(text if name in ("__all__", "non_field_errors") else f"{name}: {text}")
    return {"detail": "; ".join(parts) or "Invalid input.", "fields": fields}


def flat_errors(errors) -> dict[str, list[str]]:
    """A DRF serializer's errors (a list field's are keyed by index) as plain strings per field."""

    def strings(value) -> list[str]:
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list | tuple):
            return [s for v in value for s in strings(v)]
        return [str(value)]

    if not isinstance(errors, dict):
        return {"non_field_errors": strings(errors)}
    return {name: strings(value) for name, value in errors.items()}


class MultiLineCharField(serializers.CharField):
    """The API's twin of MultiLineField: same limit, same characters refused, CRLF counted as one."""

    def __init__(self, *, max_length: int, **kwargs):
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(multi_line)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return normalise_newlines(value)


class SingleLineCharField(serializers.CharField):
    def __init__(self, *, max_length: int, **kwargs):
        super().__init__(max_length=max_length, **kwargs)
        self.validators.append(single_line)
