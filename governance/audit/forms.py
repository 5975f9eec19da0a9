"""The one parser of the audit trail's query parameters (search page, export, reports, API): a bad
value is a 400 with the field's message, never a filter silently dropped or cut short (a search that
quietly ignores "version=x" shows events that do not match what the auditor asked for)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from governance import audit
from governance.audit.models import AuditEvent
from governance.audit.search import AuditFilters, BadFilter
from registry_ui.validation import FILTER_TEXT_MAX_LENGTH, SingleLineField, max_length_of, max_value_of

API_MAX_LIMIT = 500  # events per API page: bounded so one call cannot ask for the whole trail at once


class _DateInput(forms.TextInput):
    input_type = "date"


def _moment(key: str, raw: str):
    """Parse `since`/`until` exactly as AuditFilters does (a bare date: since = its start, until = its end)."""
    try:
        return getattr(AuditFilters.from_params({key: raw}), key)
    except BadFilter as exc:
        raise forms.ValidationError(str(exc)) from None


class PeriodForm(forms.Form):
    since = forms.CharField(max_length=32, required=False, widget=_DateInput)
    until = forms.CharField(max_length=32, required=False, widget=_DateInput)

    def clean_since(self):
        return _moment("since", self.cleaned_data["since"]) if self.cleaned_data["since"] else None

    def clean_until(self):
        return _moment("until", self.cleaned_data["until"]) if self.cleaned_data["until"] else None

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "until must not be before since.")
        return data


class ReportIndexForm(PeriodForm):
    """The reports page: the period of its portfolio, and part of a model's name to find that model's report."""

    model = SingleLineField(max_length=max_length_of(AuditEvent, "model_name"), required=False,
                            widget=forms.SearchInput(attrs={"placeholder": "part of a model's name"}))


class AuditFilterForm(PeriodForm):
    """The search filters (FILTER_KEYS); `filters()` gives the AuditFilters the selectors take."""

    q = SingleLineField(max_length=FILTER_TEXT_MAX_LENGTH, required=False, widget=forms.SearchInput(
        attrs={"placeholder": "comment, model, actor"}))
    actor = SingleLineField(max_length=max_length_of(AuditEvent, "actor_username"), required=False)
    action = forms.CharField(max_length=max_length_of(AuditEvent, "action"), required=False)
    model = SingleLineField(max_length=max_length_of(AuditEvent, "model_name"), required=False)
    version = forms.IntegerField(min_value=1, max_value=max_value_of(AuditEvent, "version"), required=False,
                                 widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 4}))
    request = forms.IntegerField(min_value=1, max_value=max_value_of(AuditEvent, "request_id"), required=False,
                                 widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}))
    field_order = ["q", "actor", "action", "model", "version", "request", "since", "until"]

    def clean_action(self) -> str:
        action = self.cleaned_data["action"]
        if action and action not in audit.ACTIONS:
            raise forms.ValidationError(f"Unknown action {action!r}.")
        return action

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(q=data["q"], actor=data["actor"], action=data["action"], model=data["model"],
                            version=data["version"], request=data["request"], since=data["since"],
                            until=data["until"])


class AuditSearchForm(AuditFilterForm):
    """The page: filters plus the keyset cursor of the next page."""

    before = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)


class AuditApiSearchForm(AuditSearchForm):
    limit = forms.IntegerField(min_value=1, max_value=API_MAX_LIMIT, required=False)

    def page_size(self) -> int:
        return self.cleaned_data["limit"] or settings.AUDIT_PAGE_SIZE


class AuditExportForm(AuditFilterForm):
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("json", "JSON")], required=False)


class ReportForm(PeriodForm):
    format = forms.ChoiceField(choices=[("", "page"), ("csv", "CSV"), ("html", "HTML")], required=False)
