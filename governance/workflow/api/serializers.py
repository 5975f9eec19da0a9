"""Serializers of /api/v1/requests/: input parsing (limits and messages shared with the page forms)
and the request's representation."""

from django.conf import settings
from rest_framework import serializers

from governance.workflow.forms import (
    ALIAS_MAX_LENGTH,
    MODEL_NAME_MAX_LENGTH,
    OVERRIDE_NEEDS_COMMENT,
    REJECT_NEEDS_COMMENT,
    TEXT_MAX_LENGTH,
    VERSION_MAX,
    alias_problem,
)
from governance.workflow.models import (
    OPERATION_NOT_REQUESTABLE,
    REQUESTED_OPERATIONS,
    ModelPolicy,
    Operation,
    PromotionRequest,
    RequestState,
)
from governance.workflow.policies import STAGE_TARGETS, effective_policy, request_actions
from governance.workflow.policy_changes import POLICY_FIELDS, policy_state
from registry_ui.validation import MultiLineCharField, SingleLineCharField

UNKNOWN_STAGE = f"Unknown stage {{input!r}}; choose one of {', '.join(STAGE_TARGETS)}."


class RequestCreateSerializer(serializers.Serializer):
    """The API's twin of RequestForm/RollbackForm: the same limits, the same messages."""

    model = SingleLineCharField(max_length=MODEL_NAME_MAX_LENGTH)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)
    target_stage = serializers.ChoiceField(choices=STAGE_TARGETS, required=False, allow_blank=True, default="",
                                           error_messages={"invalid_choice": UNKNOWN_STAGE})
    target_alias = SingleLineCharField(max_length=ALIAS_MAX_LENGTH, required=False, allow_blank=True, default="",
                                       trim_whitespace=False)
    archive_existing = serializers.BooleanField(required=False, default=False)
    justification = MultiLineCharField(max_length=TEXT_MAX_LENGTH,
                                       error_messages={"blank": "A justification is required.",
                                                       "required": "A justification is required."})
    rollback = serializers.BooleanField(required=False, default=False)
    urgent = serializers.BooleanField(required=False, default=False)
    operation = serializers.ChoiceField(
        choices=[op.value for op in REQUESTED_OPERATIONS], required=False, default=Operation.MOVE,
        error_messages={"invalid_choice": OPERATION_NOT_REQUESTABLE.replace("{operation!r}", "{input!r}")})

    def validate_target_alias(self, value: str) -> str:
        if value and (problem := alias_problem(value)):
            raise serializers.ValidationError(problem)
        return value

    def validate(self, data):
        operation = data.get("operation") or Operation.MOVE
        if operation == Operation.DELETE:
            if data.get("target_stage") or data.get("target_alias"):
                raise serializers.ValidationError("A deletion names no target: only the version.")
        elif operation == Operation.REMOVE_ALIAS:
            if data.get("target_stage") or not data.get("target_alias"):
                raise serializers.ValidationError({"target_alias": ["Name the alias to remove."]})
        elif bool(data.get("target_stage")) == bool(data.get("target_alias")):
            raise serializers.ValidationError("Name exactly one target: a stage or an alias.")
        if operation != Operation.MOVE and data.get("rollback"):
            raise serializers.ValidationError("A rollback is a move.")
        if not data.get("rollback") and data.get("version") is None:
            raise serializers.ValidationError({"version": ["version is required (except for a rollback)."]})
        return data


class BreakGlassSerializer(serializers.Serializer):
    model = SingleLineCharField(max_length=MODEL_NAME_MAX_LENGTH)
    version = serializers.IntegerField(min_value=1, max_value=VERSION_MAX, required=False)
    target_stage = serializers.ChoiceField(choices=STAGE_TARGETS, required=False, allow_blank=True, default="",
                                           error_messages={"invalid_choice": UNKNOWN_STAGE})
    target_alias = SingleLineCharField(max_length=ALIAS_MAX_LENGTH, required=False, allow_blank=True, default="",
                                       trim_whitespace=False)
    rollback = serializers.BooleanField(required=False, default=False)
    reason = MultiLineCharField(max_length=TEXT_MAX_LENGTH, error_messages={
        "blank": "Breaking the glass needs a reason.", "required": "Breaking the glass needs a reason."})

    def validate_target_alias(self, value: str) -> str:
        if value and (problem := alias_problem(value)):
            raise serializers.ValidationError(problem)
        return value

    def validate(self, data):
        if bool(data.get("target_stage")) == bool(data.get("target_alias")):
            raise serializers.ValidationError("Name exactly one target: a stage or an alias.")
        if not data.get("rollback") and data.get("version") is None:
            raise serializers.ValidationError({"version": ["version is required (except for a rollback)."]})
        return data


class HeldAtSerializer(serializers.Serializer):
    """Query parameters of GET /api/v1/requests/held-at/."""

    model = SingleLineCharField(max_length=MODEL_NAME_MAX_LENGTH)
    target = SingleLineCharField(max_length=ALIAS_MAX_LENGTH + 6)
    at = serializers.DateTimeField()

    def validate_target(self, value: str) -> str:
        kind, sep, name = value.partition(":")
        if not sep or kind not in ("stage", "alias") or (kind == "stage" and name not in STAGE_TARGETS) or (
                kind == "alias" and alias_problem(name)):
            raise serializers.ValidationError("Write the target as stage:<stage> or alias:<alias>.")
        return value


class TransitionSerializer(serializers.Serializer):
    comment = MultiLineCharField(max_length=TEXT_MAX_LENGTH, required=False, allow_blank=True, default="")
    override = serializers.BooleanField(required=False, default=False)

    def validate(self, data):
        action = self.context.get("action")
        if action == "reject" and not data["comment"]:
            raise serializers.ValidationError({"comment": [REJECT_NEEDS_COMMENT]})
        if action == "review" and not data["comment"]:
            raise serializers.ValidationError({"comment": ["Closing a review needs a comment: what was found."]})
        if action == "approve" and data["override"] and not data["comment"]:
            raise serializers.ValidationError({"comment": [OVERRIDE_NEEDS_COMMENT]})
        return data

    def service_kwargs(self) -> dict:
        kwargs = {"comment": self.validated_data["comment"]}
        if self.context.get("action") == "approve":
            kwargs["override"] = self.validated_data["override"]
        return kwargs


class RequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_name")
    target = serializers.SerializerMethodField()
    requester = serializers.CharField(source="requester_username")
    approvals = serializers.SerializerMethodField()
    needs_reapproval = serializers.BooleanField(read_only=True)
    reapproval = serializers.SerializerMethodField()

    class Meta:
        model = PromotionRequest
        fields = ["id", "model", "version", "operation", "target", "target_stage", "target_alias",
                  "archive_existing", "state",
                  "justification", "requester", "rollback", "urgent", "override", "approvals", "decided_by",
                  "decision_comment", "deployed_by", "deployed_at", "error", "created_at", "updated_at",
                  "gate_results", "needs_reapproval", "reapproval", "emergency", "review_due_at", "reviewed_at",
                  "reviewed_by", "review_comment", "plan"]

    def get_target(self, obj) -> dict:
        return {"kind": obj.target_kind, "name": obj.target_stage or obj.target_alias, "label": obj.target_label}

    def get_approvals(self, obj) -> list[dict]:
        return [{"approver": a.approver_username, "comment": a.comment, "at": a.created_at.isoformat(),
                 "superseded": a.superseded_at is not None}
                for a in obj.approvals.all()]

    def get_reapproval(self, obj) -> dict | None:
        """Why the request was sent back for re-approval (what changed in MLflow, which gates fail).
        The superseded evidence itself stays out of listings: it is evidence.at_approval on the detail
        until the next approval replaces it."""
        if not obj.reapproval:
            return None
        return {k: v for k, v in obj.reapproval.items() if k != "superseded_evidence"}



class RequestDetailSerializer(RequestSerializer):
    evidence = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField()

    class Meta(RequestSerializer.Meta):
        fields = RequestSerializer.Meta.fields + ["evidence", "history", "allowed_actions"]

    def get_allowed_actions(self, obj) -> list[str]:
        """What the caller may do next (the same rules the services apply)."""
        user = self.context.get("user")
        return request_actions(user, obj) if user else []

    def get_evidence(self, obj) -> dict:
        return {"at_request": obj.evidence, "at_approval": obj.approval_evidence or None}

    def get_history(self, obj) -> list[dict]:
        from governance.workflow.services import request_history

        return request_history(obj)


class WaitParams(serializers.Serializer):
    """GET /api/v1/requests/<id>/?wait=30&while=pending: answer when the state is no longer `while`."""

    wait = serializers.IntegerField(min_value=0, max_value=settings.API_WAIT_MAX_SECONDS, required=False,
                                    help_text="Seconds to wait for the state to change (0: answer at once).")


WaitParams._declared_fields["while"] = serializers.ChoiceField(
    choices=RequestState.values, required=False, default=RequestState.PENDING,
    help_text="The state to wait out (default pending).")


class PolicyFieldsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelPolicy
        fields = list(POLICY_FIELDS)


class PolicyChangeSerializer(PolicyFieldsSerializer):
    """The fields to change; the model's validation (ModelPolicy.full_clean) runs in the service."""

    required_tags = serializers.DictField(child=serializers.CharField(max_length=TEXT_MAX_LENGTH), allow_null=True,
                                          required=False)
    metric_thresholds = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()), allow_null=True, required=False,
        help_text='e.g. {"accuracy": {"min": 0.8}, "latency_ms": {"max": 50}}')

    class Meta(PolicyFieldsSerializer.Meta):
        extra_kwargs = {name: {"required": False} for name in POLICY_FIELDS}


class EffectivePolicySerializer(serializers.Serializer):
    required_tags = serializers.DictField(child=serializers.CharField())
    metric_thresholds = serializers.DictField(child=serializers.DictField(child=serializers.FloatField()))
    compare_metric = serializers.CharField(allow_blank=True)
    higher_is_better = serializers.BooleanField()
    require_lineage = serializers.BooleanField()
    quorum = serializers.IntegerField()


class PolicySerializer(serializers.Serializer):
    model = serializers.CharField()
    policy = PolicyFieldsSerializer(allow_null=True, help_text="The model's own policy; null: the defaults apply.")
    effective = EffectivePolicySerializer(help_text="The policy in force (own fields over the global defaults).")


def policy_body(model) -> dict:
    own = ModelPolicy.objects.filter(model=model).first()
    return {"model": model.name, "policy": policy_state(own), "effective": effective_policy(model)}
