"""Query parameters of GET /api/v1/risk/findings/ and /api/v1/risk/tiers/ (FilterSets: in the schema)."""

from django.db.models import Exists, OuterRef
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from governance.risk import selectors
from governance.risk.models import OPEN_FINDING_STATES, Finding, FindingState, ModelRiskTier, Severity
from registry_ui.filters import SingleLineCharFilter
from registry_ui.mirror.models import RegisteredModel

UNASSIGNED = "none"


class FindingFilterSet(filters.FilterSet):
    model = SingleLineCharFilter(field_name="model__name", max_length=256, help_text="Exact model name.")
    version = filters.NumberFilter(field_name="version", min_value=1, max_value=2**31 - 1)
    severity = filters.ChoiceFilter(choices=Severity.choices)
    state = filters.ChoiceFilter(choices=FindingState.choices)
    owner = SingleLineCharFilter(field_name="owner_username", max_length=150, help_text="The owner's username.")
    open = filters.BooleanFilter(method="filter_open", help_text="true: open or closure proposed; false: closed.")
    overdue = filters.BooleanFilter(method="filter_overdue", help_text="true: open and past its due date.")

    class Meta:
        model = Finding
        fields = []

    def filter_open(self, qs, name, value):
        return qs.filter(state__in=OPEN_FINDING_STATES) if value else qs.exclude(state__in=OPEN_FINDING_STATES)

    def filter_overdue(self, qs, name, value):
        late = {"state__in": OPEN_FINDING_STATES, "due_date__lt": timezone.localdate()}
        return qs.filter(**late) if value else qs.exclude(**late)


def _tier_choices():
    return [*[(k, v.get("label", k)) for k, v in selectors.tiers().items()], (UNASSIGNED, "Unassigned")]


@extend_schema_field({"type": "string", "description": "A tier key (settings.RISK_TIERS) or 'none'."})
class TierFilter(filters.ChoiceFilter):
    """The tiers are configured, so the schema says "a string" and the answer to a wrong one is a 400."""


class ModelTierFilterSet(filters.FilterSet):
    tier = TierFilter(choices=_tier_choices, method="filter_tier",
                                help_text=f"A tier key, or {UNASSIGNED!r} (no tier approved yet).")

    class Meta:
        model = RegisteredModel
        fields = []

    def filter_tier(self, qs, name, value):
        if value == UNASSIGNED:
            return qs.exclude(Exists(ModelRiskTier.objects.filter(model=OuterRef("pk"))))
        return qs.filter(Exists(ModelRiskTier.objects.filter(model=OuterRef("pk"), tier=value)))
