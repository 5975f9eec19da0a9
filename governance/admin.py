"""Admin registrations, one module per area (imported here because Django autodiscovers admin.py), and
the user and group admin.

Users and groups are written only through governance.grants: every door of their admin pages (the
change and add forms, the delete page, the list actions) calls a service that checks the admin's
permission and records the change with before and after in the same transaction. Nothing here calls
save(), delete() or an m2m set() itself.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction

from governance import grants
from governance.cards import admin as admin_cards  # noqa: F401
from governance.notify import admin as admin_notify  # noqa: F401
from governance.risk import admin as admin_risk  # noqa: F401
from governance.workflow import admin as admin_workflow  # noqa: F401
from registry_ui.client_ip import client_ip

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)

# Branded, and its home page points to the governance pages (templates/admin/console_index.html).
admin.site.site_header = "Model Governance Console: administration"
admin.site.site_title = "Model Governance Console"
admin.site.index_title = "Users, role groups, per-model grants and policies"
admin.site.site_url = "/"
admin.site.index_template = "admin/console_index.html"


def _field(form, name):
    """A many-to-many field's submitted value, or None when this form does not offer it."""
    return form.cleaned_data.get(name) if name in form.fields else None


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    actions = ["activate_users", "deactivate_users"]

    def save_model(self, request, obj, form, change):
        grants.user_save(actor=request.user, user=obj, groups=_field(form, "groups"),
                         permissions=_field(form, "user_permissions"), source_ip=client_ip(request))

    def save_related(self, request, form, formsets, change):
        # Groups and permissions were saved (and audited) by user_save; form.save_m2m() would write them
        # again behind the service's back.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        grants.user_delete(actor=request.user, user=obj, source_ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                grants.user_delete(actor=request.user, user=user, source_ip=client_ip(request))

    def _set_active(self, request, queryset, active: bool) -> None:
        with transaction.atomic():
            for user in queryset:
                grants.user_activation_set(actor=request.user, user=user, active=active,
                                           source_ip=client_ip(request))
        self.message_user(request, f"{queryset.count()} user(s) {'activated' if active else 'deactivated'}.")

    @admin.action(description="Activate selected users", permissions=["change"])
    def activate_users(self, request, queryset):
        self._set_active(request, queryset, True)

    @admin.action(description="Deactivate selected users", permissions=["change"])
    def deactivate_users(self, request, queryset):
        self._set_active(request, queryset, False)


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

    def save_model(self, request, obj, form, change):
        grants.group_save(actor=request.user, group=obj, permissions=_field(form, "permissions"),
                          members=_field(form, "members"), source_ip=client_ip(request))

    def save_related(self, request, form, formsets, change):
        for formset in formsets:  # permissions and members: saved and audited by group_save
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        grants.group_delete(actor=request.user, group=obj, source_ip=client_ip(request))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for group in queryset:
                grants.group_delete(actor=request.user, group=group, source_ip=client_ip(request))
