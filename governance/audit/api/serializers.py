"""Schema of /api/v1/audit/ (the views build the dicts themselves; these describe them)."""

from django.conf import settings
from rest_framework import serializers

from governance import audit
from governance.audit.forms import API_MAX_LIMIT
from registry_ui.validation import FILTER_TEXT_MAX_LENGTH


class AuditQuerySerializer(serializers.Serializer):
    """The query parameters (parsed by governance.audit.forms.AuditApiSearchForm, the page's parser)."""

    q = serializers.CharField(required=False, max_length=FILTER_TEXT_MAX_LENGTH,
                              help_text="Words in the comment, model, actor (all must match; prefixes).")
    actor = serializers.CharField(required=False, max_length=150)
    action = serializers.ChoiceField(choices=sorted(audit.ACTIONS), required=False)
    model = serializers.CharField(required=False, max_length=256)
    version = serializers.IntegerField(required=False, min_value=1)
    request = serializers.IntegerField(required=False, min_value=1)
    since = serializers.CharField(required=False, max_length=32, help_text="ISO date or date-time (inclusive).")
    until = serializers.CharField(required=False, max_length=32, help_text="ISO date or date-time (inclusive).")
    before = serializers.IntegerField(required=False, min_value=1, help_text="Keyset cursor: events before this seq.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=API_MAX_LIMIT,
                                     help_text=f"Events per page (default {settings.AUDIT_PAGE_SIZE}).")


class AuditEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    timestamp = serializers.CharField()
    actor = serializers.CharField()
    action = serializers.CharField()
    model = serializers.CharField(allow_blank=True)
    version = serializers.IntegerField(allow_null=True)
    request = serializers.IntegerField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)
    source_ip = serializers.CharField(allow_null=True)
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class AuditPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null.")


class VerificationSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    count = serializers.IntegerField()
    head_seq = serializers.IntegerField(allow_null=True)
    head_hash = serializers.CharField(allow_blank=True)
    broken_seq = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    checkpoints_checked = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField())
    verified_at = serializers.CharField(allow_blank=True)
    scope = serializers.ChoiceField(choices=["whole", "incremental"])
    from_seq = serializers.IntegerField(allow_null=True)
    checkpoint_file = serializers.CharField(allow_blank=True)
    summary = serializers.CharField()
