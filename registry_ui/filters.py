"""The one way to filter the registry: django-filter FilterSets used by the API (DjangoFilterBackend, so
they are in the OpenAPI schema) and by the catalogue page (registry_ui/pages/selectors.py). The same
parameter names everywhere:

    q                          text in the name, description or tags (models); description, run id (versions)
    stage, alias               a version in that stage / holding that alias ("@champion" and "champion" alike)
    tag                        repeatable; "key=value", "key:value" or "key" (has the tag). On the models
                               endpoint it matches MODEL tags, on the versions endpoint VERSION tags.
    created_after, created_before, updated_after, updated_before   ISO 8601 date-times (inclusive)
    run_id                     versions built by that MLflow run

Promotion requests have their own FilterSet in the same style (governance/workflow/filters.py: `q` text
in the model name, `model` the exact name), shared by the request list page and the API.

A FilterSet only narrows the queryset it is given: callers start from extensions.visible_models.
"""

from datetime import UTC

from django import forms
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema_field

from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel, Stage
from registry_ui.validation import FILTER_TEXT_MAX_LENGTH, max_length_of, single_line

ALIAS_FILTER_MAX_LENGTH = max_length_of(ModelAlias, "alias") + 1  # "@champion" and "champion" both name it
TAG_HELP = ('Repeatable; all must match. "key=value" (or "key:value") matches a tag\'s value, "key" alone '
            "that the tag is set.")


def parse_tag(text: str) -> tuple[str, str | None]:
    """'key=value' | 'key:value' -> (key, value); 'key' -> (key, None). '=' wins over ':' (keys may hold ':')."""
    for sep in ("=", ":"):
        key, found, value = text.partition(sep)
        if found:
            return key.strip(), value.strip()
    return text.strip(), None


def _check_tag(value: str) -> None:
    key, _value = parse_tag(value)
    if not key:
        raise forms.ValidationError('tag filter must look like key=value, key:value or key.', code="invalid_tag")


class TagField(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=FILTER_TEXT_MAX_LENGTH, **kwargs)
        self.validators += [single_line, _check_tag]


class MultiTagField(forms.Field):
    """A repeated ?tag= (the widget hands over the list)."""

    widget = forms.SelectMultiple

    def to_python(self, value):
        if value in (None, "", []):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        field = TagField(required=False)
        return [field.clean(v) for v in values if v not in ("", None)]


@extend_schema_field({"type": "array", "items": {"type": "string", "maxLength": FILTER_TEXT_MAX_LENGTH}})
class TagFilter(filters.Filter):
    field_class = MultiTagField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("help_text", TAG_HELP)
        super().__init__(*args, **kwargs)

    def filter(self, qs, value):
        for i, tag in enumerate(value or []):
            key, tag_value = parse_tag(tag)
            if tag_value is None:
                qs = qs.filter(tags__has_key=key)
            else:
                # KeyTextTransform + Cast, not tags__<key>: a key may contain "__" or dots, and a bare key
                # transform compares JSON values rather than text on some backends.
                alias = f"_tag{i}_{self.field_name}"
                qs = qs.alias(**{alias: Cast(KeyTextTransform(key, "tags"), TextField())}).filter(**{alias: tag_value})
        return qs


class SingleLineCharFilter(filters.CharFilter):
    def __init__(self, *args, max_length: int = FILTER_TEXT_MAX_LENGTH, **kwargs):
        super().__init__(*args, max_length=max_length, validators=[single_line], **kwargs)


class UtcDateTimeField(filters.IsoDateTimeFilter.field_class):
    """An ISO 8601 moment, turned into UTC before it reaches SQL (PostgreSQL refuses offsets beyond its
    range, e.g. +19:42, that Python accepts); one that does not fit in UTC is invalid input."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC) if moment.tzinfo else moment
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a date-time between the years 1 and 9999 (UTC).",
                                        code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


STAGE_CHOICES = Stage.choices
STAGE_ERROR = {"invalid_choice": f"stage must be one of {', '.join(Stage.values)}"}


class _Ranges(filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte",
                                              help_text="Created at or after (ISO 8601).")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lte",
                                               help_text="Created at or before (ISO 8601).")
    updated_after = UtcDateTimeFilter(field_name="updated_at", lookup_expr="gte",
                                              help_text="Last updated at or after (ISO 8601).")
    updated_before = UtcDateTimeFilter(field_name="updated_at", lookup_expr="lte",
                                               help_text="Last updated at or before (ISO 8601).")


class ModelFilterSet(_Ranges):
    """Registered models: GET /api/v1/models/ and the catalogue page."""

    q = SingleLineCharFilter(method="filter_q", help_text="Text in the name, the description or a tag.")
    stage = filters.ChoiceFilter(choices=STAGE_CHOICES, method="filter_stage", error_messages=STAGE_ERROR,
                                 help_text="Has a version in this stage.")
    alias = SingleLineCharFilter(method="filter_alias", max_length=ALIAS_FILTER_MAX_LENGTH,
                                 help_text='Has this alias ("champion" or "@champion").')
    tag = TagFilter(field_name="model_tags", help_text="Model tags. " + TAG_HELP)

    class Meta:
        model = RegisteredModel
        fields = []

    def filter_q(self, qs, name, value):
        return qs.alias(_tags_text=Cast("tags", TextField())).filter(
            Q(name__icontains=value) | Q(description__icontains=value) | Q(_tags_text__icontains=value))

    def filter_stage(self, qs, name, value):
        return qs.filter(Exists(ModelVersion.objects.filter(model=OuterRef("pk"), stage=value)))

    def filter_alias(self, qs, name, value):
        return qs.filter(Exists(ModelAlias.objects.filter(model=OuterRef("pk"), alias=value.lstrip("@"))))


class VersionFilterSet(_Ranges):
    """Versions of a model: GET /api/v1/models/<name>/versions/ (tags are the VERSION's tags)."""

    q = SingleLineCharFilter(method="filter_q", help_text="Text in the description, the run id or the source.")
    stage = filters.ChoiceFilter(choices=STAGE_CHOICES, error_messages=STAGE_ERROR, help_text="In this stage.")
    alias = SingleLineCharFilter(method="filter_alias", max_length=ALIAS_FILTER_MAX_LENGTH,
                                 help_text='Holds this alias ("champion" or "@champion").')
    tag = TagFilter(field_name="version_tags", help_text="Version tags. " + TAG_HELP)
    run_id = SingleLineCharFilter(field_name="run_id", max_length=64, help_text="Built by this MLflow run.")

    class Meta:
        model = ModelVersion
        fields = []

    def filter_q(self, qs, name, value):
        return qs.filter(Q(description__icontains=value) | Q(run_id__icontains=value) | Q(source__icontains=value))

    def filter_alias(self, qs, name, value):
        return qs.filter(Exists(ModelAlias.objects.filter(model=OuterRef("model"), version=OuterRef("version"),
                                                          alias=value.lstrip("@"))))
