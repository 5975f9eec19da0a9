"""The portfolio's filters (django-filter, like the catalogue's): the page, its CSV and the auditor's
report read the same parameters, and a bad value is a 400 naming the field, never a filter silently
dropped. They narrow a queryset of registered models the caller may see; the period (since, until)
does not narrow the models, it says which months the charts and the "in period" columns count."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django_filters import rest_framework as filters

from governance.audit.models import AuditEvent
from governance.risk import selectors as risk
from governance.risk.models import OPEN_FINDING_STATES, Finding, ModelRiskTier, Severity
from governance.validation.models import FINISHED, ValidationRun, ValidationStatus
from registry_ui.filters import SingleLineCharFilter
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel

UNASSIGNED = "none"
PERIOD_MONTHS = 12  # the default period: this month and the eleven before it
STATES = [
    ("production", "In Production or holding a protected alias"),
    ("not_production", "Not in Production, no protected alias"),
    ("validated", "Latest validation passed"),
    ("not_validated", "Latest validation failed, or none"),
    ("blocked", "An open blocking finding"),
    ("drift", "Drift in the period"),
]
OVERDUE = [("findings", "Open findings past their due date"), ("rereview", "Re-review (re-certification) overdue"),
           ("any", "Either")]


def _tier_choices():
    return [*[(k, v.get("label", k)) for k, v in risk.tiers().items()], (UNASSIGNED, "Unassigned")]


class _DateInput(forms.DateInput):
    input_type = "date"


def default_period(now=None) -> tuple[datetime, datetime]:
    """The first moment of the month PERIOD_MONTHS - 1 months back, and now."""
    now = timezone.localtime(now or timezone.now())
    year, month = now.year, now.month - (PERIOD_MONTHS - 1)
    while month < 1:
        year, month = year - 1, month + 12
    return now.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0), now


def _latest_validation():
    from django.db.models import Subquery

    return Subquery(ValidationRun.objects.filter(model_name=OuterRef("name"), status__in=FINISHED)
                    .order_by("-finished_at", "-id").values("status")[:1])


class PortfolioFilterSet(filters.FilterSet):
    q = SingleLineCharFilter(field_name="name", lookup_expr="icontains", max_length=256,
                             help_text="Text in the model's name.")
    tier = filters.ChoiceFilter(choices=_tier_choices, method="filter_tier", empty_label="All tiers",
                                help_text=f"A risk tier key, or {UNASSIGNED!r} (no tier approved yet).")
    state = filters.ChoiceFilter(choices=STATES, method="filter_state", empty_label="Any state")
    severity = filters.ChoiceFilter(choices=Severity.choices, method="filter_severity", empty_label="Any severity",
                                    help_text="Has an open finding of this severity.")
    owner = SingleLineCharFilter(method="filter_owner", max_length=150,
                                 help_text="Has an open finding owned by this username.")
    overdue = filters.ChoiceFilter(choices=OVERDUE, method="filter_overdue", empty_label="Overdue or not")
    since = filters.DateFilter(method="keep", widget=_DateInput, help_text="Period start (a date).")
    until = filters.DateFilter(method="keep", widget=_DateInput, help_text="Period end (a date, inclusive).")

    class Meta:
        model = RegisteredModel
        fields = []

    def __init__(self, *args, rereview_models=None, today=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Names of models with a holder overdue for re-review: computed once by the caller (it also shows
        # them), so the filter and the column agree.
        self._rereview = rereview_models or (lambda: set())
        self.today = today or timezone.localdate()

    def is_valid(self):
        valid = super().is_valid()
        data = self.form.cleaned_data if valid else {}
        if valid and data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.form.add_error("until", "until must not be before since.")
            return False
        return valid

    def period(self, now=None) -> tuple[datetime, datetime]:
        """[start, end] of the period asked for (default: the last PERIOD_MONTHS months up to now)."""
        start, end = default_period(now)
        data = self.form.cleaned_data if self.is_bound and self.is_valid() else {}
        tz = timezone.get_current_timezone()
        if data.get("since"):
            start = datetime.combine(data["since"], time.min, tzinfo=tz)
        if data.get("until"):
            end = datetime.combine(data["until"], time.min, tzinfo=tz) + timedelta(days=1) - timedelta(microseconds=1)
        return start, end

    def keep(self, qs, name, value):
        return qs

    def filter_tier(self, qs, name, value):
        if value == UNASSIGNED:
            return qs.exclude(Exists(ModelRiskTier.objects.filter(model=OuterRef("pk"))))
        return qs.filter(Exists(ModelRiskTier.objects.filter(model=OuterRef("pk"), tier=value)))

    def filter_state(self, qs, name, value):
        protected = ModelAlias.objects.filter(model=OuterRef("pk"), alias__in=settings.PROTECTED_ALIASES)
        held = Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage="Production")) | Exists(protected)
        if value == "production":
            return qs.filter(held)
        if value == "not_production":
            return qs.exclude(held)
        if value == "validated":
            return qs.alias(_validation=_latest_validation()).filter(_validation=ValidationStatus.PASSED)
        if value == "not_validated":
            return qs.alias(_validation=_latest_validation()).exclude(_validation=ValidationStatus.PASSED)
        if value == "blocked":
            return qs.filter(Exists(Finding.objects.filter(model=OuterRef("pk"), state__in=OPEN_FINDING_STATES,
                                                           severity=Severity.BLOCKING)))
        start, end = self.period()
        return qs.filter(Exists(AuditEvent.objects.filter(action="registry.drift", model_name=OuterRef("name"),
                                                          timestamp__gte=start, timestamp__lte=end)))

    def filter_severity(self, qs, name, value):
        return qs.filter(Exists(Finding.objects.filter(model=OuterRef("pk"), state__in=OPEN_FINDING_STATES,
                                                       severity=value)))

    def filter_owner(self, qs, name, value):
        return qs.filter(Exists(Finding.objects.filter(model=OuterRef("pk"), state__in=OPEN_FINDING_STATES,
                                                       owner_username=value)))

    def filter_overdue(self, qs, name, value):
        late = Exists(Finding.objects.filter(model=OuterRef("pk"), state__in=OPEN_FINDING_STATES,
                                             due_date__lt=self.today))
        rereview = Q(name__in=sorted(self._rereview()))
        return qs.filter({"findings": late, "rereview": rereview}.get(value, Q(late) | rereview))
