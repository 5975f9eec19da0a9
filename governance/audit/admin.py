"""Admin for the audit trail: read-only. (Users and groups are administered in governance.admin,
through the audited services of governance.grants.)"""

from django.contrib import admin

from governance.audit.models import AuditEvent, AuditVerification


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "timestamp", "actor_username", "action", "model_name", "version", "request_id")
    list_filter = ("action",)
    search_fields = ("=actor_username", "=model_name", "=action")
    show_full_result_count = False  # no COUNT(*) over a large trail per page
    ordering = ("-seq",)


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ("verified_at", "ok", "scope", "from_seq", "count", "head_seq", "broken_seq", "source")
