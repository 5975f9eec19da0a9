"""Serializers of /api/v1/requests/: input parsing and the request's representation."""

from rest_framework import serializers

from governance.workflow.models import PromotionRequest
from governance.workflow.policies import request_actions


class RequestCreateSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=256)
    version = serializers.IntegerField(min_value=1, required=False)
    target_stage = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    target_alias = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    archive_existing = serializers.BooleanField(required=False, default=False)
    justification = serializers.CharField(max_length=5000)
    rollback = serializers.BooleanField(required=False, default=False)
    urgent = serializers.BooleanField(required=False, default=False)

    def validate(self, data):
        if not data.get("rollback") and data.get("version") is None:
            raise serializers.ValidationError("version is required (except for a rollback).")
        return data


class TransitionSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    override = serializers.BooleanField(required=False, default=False)


class RequestSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="model_name")
    target = serializers.SerializerMethodField()
    requester = serializers.CharField(source="requester_username")
    approvals = serializers.SerializerMethodField()

    class Meta:
        model = PromotionRequest
        fields = ["id", "model", "version", "target", "target_stage", "target_alias", "archive_existing", "state",
                  "justification", "requester", "rollback", "urgent", "override", "approvals", "decided_by",
                  "decision_comment", "deployed_by", "deployed_at", "error", "created_at", "updated_at",
                  "gate_results"]

    def get_target(self, obj) -> dict:
        return {"kind": obj.target_kind, "name": obj.target_stage or obj.target_alias, "label": obj.target_label}

    def get_approvals(self, obj) -> list[dict]:
        return [{"approver": a.approver_username, "comment": a.comment, "at": a.created_at.isoformat()}
                for a in obj.approvals.all()]



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
