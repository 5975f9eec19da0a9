"""Model risk in the admin: read-only. A tier is set only by an approved tier change and a finding
moves only through its services (each step audited), so the admin shows and never edits them."""

from django.contrib import admin

from governance.risk.models import Finding, ModelRiskTier, TierChange


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ModelRiskTier)
class ModelRiskTierAdmin(_ReadOnly):
    list_display = ("model", "tier", "change", "set_at")


@admin.register(TierChange)
class TierChangeAdmin(_ReadOnly):
    list_display = ("pk", "model", "from_tier", "to_tier", "state", "requester_username", "decided_by", "created_at")
    list_filter = ("state", "to_tier")


@admin.register(Finding)
class FindingAdmin(_ReadOnly):
    list_display = ("pk", "model", "version", "severity", "state", "owner_username", "due_date", "raised_by")
    list_filter = ("severity", "state")
