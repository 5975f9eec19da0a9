"""Serializers of /api/v1/risk/: input parsing with the page forms' limits, and the representations."""

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from governance.risk import selectors
from governance.risk.models import Finding, FindingState, Severity, TierChange, TierChangeState
from registry_ui.validation import MultiLineCharField, SingleLineCharField

MODEL_NAME_MAX_LENGTH = 256
TEXT_MAX_LENGTH = 8000


class TierDefinitionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    meaning = serializers.CharField()
    policy = serializers.DictField(help_text="What the tier sets by default: quorum, require_validation, "
                                             "approval_validity_days.")


class TierChangeSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    state = serializers.ChoiceField(choices=TierChangeState.choices)
    requester = serializers.CharField(source="requester_username")

    class Meta:
        model = TierChange
        fields = ["id", "model", "from_tier", "to_tier", "reason", "requester", "state", "decided_by",
                  "decision_comment", "created_at", "decided_at"]


class ModelTierSerializer(serializers.Serializer):
    """A model's tier ('' and label "Unassigned" when none was approved yet)."""

    model = serializers.CharField()
    tier = serializers.CharField(allow_blank=True)
    label = serializers.CharField()
    set_at = serializers.DateTimeField(allow_null=True)


class ModelTierDetailSerializer(ModelTierSerializer):
    meaning = serializers.CharField(allow_blank=True)
    policy = serializers.DictField()
    pending = TierChangeSerializer(allow_null=True)
    history = TierChangeSerializer(many=True)


@extend_schema_serializer(many=False)  # one object (tiers + a page), not a list of them
class TierListSerializer(serializers.Serializer):
    """The configured tiers and a page of models with theirs."""

    tiers = TierDefinitionSerializer(many=True)
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ModelTierSerializer(many=True)


# Values the services require (a tier, a reason, a severity, a description, an owner, a due date) are
# optional here and checked by the service after its permission check, as on the pages: whoever may not
# act learns that first, whatever they sent. Here only their form is checked.


class TierChangeRequestSerializer(serializers.Serializer):
    model = SingleLineCharField(max_length=MODEL_NAME_MAX_LENGTH)
    tier = SingleLineCharField(max_length=32, required=False, allow_blank=True, default="",
                               help_text="A configured tier key (see GET /api/v1/risk/tiers/); required.")
    reason = MultiLineCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="",
                                help_text="Why (required by the service: a tier change without a reason is refused).")


class DecisionSerializer(serializers.Serializer):
    comment = MultiLineCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="")


class NoteSerializer(serializers.Serializer):
    note = MultiLineCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="",
                              help_text="The remediation: what was done, with evidence or a link.")


class FindingRaiseSerializer(serializers.Serializer):
    model = SingleLineCharField(max_length=MODEL_NAME_MAX_LENGTH)
    version = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False, allow_null=True,
                                       default=None, help_text="Empty: the finding is on the model.")
    severity = serializers.ChoiceField(choices=Severity.choices, required=False, allow_blank=True, default="",
                                       help_text="Required.")
    description = MultiLineCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="",
                                     help_text="Required.")
    owner = SingleLineCharField(max_length=150, required=False, allow_blank=True, default="",
                                help_text="Username of the person who remediates it; required.")
    due_date = serializers.DateField(required=False, allow_null=True, default=None, help_text="Required.")


class FindingEventSerializer(serializers.Serializer):
    action = serializers.CharField()
    actor = serializers.CharField(source="actor_username")
    timestamp = serializers.DateTimeField()
    comment = serializers.CharField()


class FindingSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model.name")
    severity = serializers.ChoiceField(choices=Severity.choices)
    state = serializers.ChoiceField(choices=FindingState.choices)
    owner = serializers.CharField(source="owner_username")
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = ["id", "model", "version", "severity", "description", "owner", "due_date", "state", "overdue",
                  "raised_by", "remediation_note", "closed_by", "created_at", "closed_at"]

    def get_overdue(self, finding) -> bool:
        from django.utils import timezone

        return finding.is_open and finding.due_date < timezone.localdate()


class FindingDetailSerializer(FindingSerializer):
    history = serializers.SerializerMethodField()

    class Meta(FindingSerializer.Meta):
        fields = [*FindingSerializer.Meta.fields, "history"]

    def get_history(self, finding) -> list[dict]:
        events = selectors.finding_history([finding]).get(finding.pk, [])
        return FindingEventSerializer(events, many=True).data


def tier_definitions() -> list[dict]:
    return [{"key": key, "label": t.get("label", key), "meaning": t.get("meaning", ""),
             "policy": selectors.tier_policy(key)} for key, t in selectors.tiers().items()]
