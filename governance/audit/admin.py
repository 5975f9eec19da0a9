"""Admin for the audit trail (read-only) and audited user/group administration.

Group membership and permission changes made in the admin are audited with the admin as actor, in
the admin's own transaction (changeform_view runs inside transaction.atomic).
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission

from governance import audit
from governance.audit.models import AuditEvent, AuditVerification
from registry_ui.client_ip import client_ip

User = get_user_model()


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
    list_display = ("verified_at", "ok", "count", "head_seq", "broken_seq", "source")


def _perm_label(p: Permission) -> str:
    return f"{p.content_type.app_label}.{p.codename}"


def _audit_permission_diff(request, *, subject: str, before: set, after: set, **target) -> None:
    ip = client_ip(request)
    for p in Permission.objects.filter(pk__in=after - before).select_related("content_type"):
        audit.record(actor=request.user, action="permission.granted", after={"permission": _perm_label(p), **target},
                     comment=f"{_perm_label(p)} granted to {subject}", source_ip=ip)
    for p in Permission.objects.filter(pk__in=before - after).select_related("content_type"):
        audit.record(actor=request.user, action="permission.revoked", before={"permission": _perm_label(p), **target},
                     comment=f"{_perm_label(p)} revoked from {subject}", source_ip=ip)


def _audit_membership(request, *, user, group, added: bool) -> None:
    action = "group.member_added" if added else "group.member_removed"
    payload = {"user": user.get_username(), "group": group.name}
    audit.record(actor=request.user, action=action, after=payload if added else None,
                 before=None if added else payload, source_ip=client_ip(request),
                 comment=f"{user.get_username()} {'added to' if added else 'removed from'} group {group.name}")


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    def save_related(self, request, form, formsets, change):
        user = form.instance
        groups_before = set(user.groups.values_list("pk", flat=True)) if change else set()
        perms_before = set(user.user_permissions.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        groups_after = set(user.groups.values_list("pk", flat=True))
        for group in Group.objects.filter(pk__in=groups_after ^ groups_before):
            _audit_membership(request, user=user, group=group, added=group.pk in groups_after)
        _audit_permission_diff(request, subject=f"user {user.get_username()}", before=perms_before,
                               after=set(user.user_permissions.values_list("pk", flat=True)),
                               user=user.get_username())


class GroupWithMembersForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(User.objects.order_by("username"), required=False,
                                             widget=FilteredSelectMultiple("users", is_stacked=False))

    class Meta:
        model = Group
        fields = ("name", "permissions", "members")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = self.instance.user_set.all()


@admin.register(Group)
class AuditedGroupAdmin(GroupAdmin):
    form = GroupWithMembersForm

    def save_related(self, request, form, formsets, change):
        group = form.instance
        members_before = set(group.user_set.values_list("pk", flat=True)) if change else set()
        perms_before = set(group.permissions.values_list("pk", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)
        members_after = {u.pk for u in form.cleaned_data.get("members", [])}
        group.user_set.set(members_after)
        for user in User.objects.filter(pk__in=members_after ^ members_before):
            _audit_membership(request, user=user, group=group, added=user.pk in members_after)
        _audit_permission_diff(request, subject=f"group {group.name}", before=perms_before,
                               after=set(group.permissions.values_list("pk", flat=True)), group=group.name)

    def delete_model(self, request, obj):
        for user in obj.user_set.all():
            _audit_membership(request, user=user, group=obj, added=False)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for group in queryset:
            for user in group.user_set.all():
                _audit_membership(request, user=user, group=group, added=False)
        super().delete_queryset(request, queryset)
