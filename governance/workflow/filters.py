"""The one way to filter promotion requests: the query parameters of GET /api/v1/requests/ (a FilterSet,
so they are in the schema) and of the request list page, with the same names and meanings in both:

    q                          text in the model name (case-insensitive substring)
    model                      exact model name
    state, version, target_stage, requester
    target_alias               "champion" or "@champion"
    created_after, created_before, updated_after, updated_before   ISO 8601 date-times (inclusive)

Limits and messages are those of the page forms."""

from django import forms
from django_filters import rest_framework as filters

from governance.workflow.forms import MODEL_NAME_MAX_LENGTH, REQUESTER_MAX_LENGTH, VERSION_MAX
from governance.workflow.models import PromotionRequest, RequestState
from governance.workflow.policies import STAGE_TARGETS
from registry_ui.filters import ALIAS_FILTER_MAX_LENGTH, SingleLineCharFilter, UtcDateTimeFilter


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


class RequestFilterSet(filters.FilterSet):
    q = SingleLineCharFilter(field_name="model_name", lookup_expr="icontains", max_length=MODEL_NAME_MAX_LENGTH,
                             label="Model name contains", widget=forms.SearchInput,
                             help_text='Text in the model name (case-insensitive); "model" is the exact name.')
    state = filters.ChoiceFilter(choices=RequestState.choices, empty_label="any", error_messages={
        "invalid_choice": f"Select a valid choice: one of {', '.join(RequestState.values)}."},
                                 help_text="The request's state.")
    model = SingleLineCharFilter(field_name="model_name", max_length=MODEL_NAME_MAX_LENGTH,
                                 help_text='Exact model name; "q" matches part of it.')
    version = IntegerFilter(field_name="version", min_value=1, max_value=VERSION_MAX)
    target_stage = filters.ChoiceFilter(choices=[(s, s) for s in STAGE_TARGETS])
    target_alias = SingleLineCharFilter(method="filter_alias", max_length=ALIAS_FILTER_MAX_LENGTH,
                                        help_text='"champion" or "@champion".')
    requester = SingleLineCharFilter(field_name="requester_username", max_length=REQUESTER_MAX_LENGTH)
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lte")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = UtcDateTimeFilter(field_name="updated_at", lookup_expr="lte")

    class Meta:
        model = PromotionRequest
        fields = []

    def filter_alias(self, qs, name, value):
        return qs.filter(target_alias=value.lstrip("@"))
