"""Admin for workflow objects, policy gates, model scoping and object grants.

Registered models get django-guardian's "Object permissions" pages; every grant or revoke made there
goes through governance.grants.object_permissions_set, which audits it with the admin as actor. The
policy inline is saved through governance.workflow.policy_changes (never by the formset itself), so a
policy change made here is recorded with before and after like one made by any other door.
Requests and the outbox are read-only here: their state changes only through governance.workflow.
"""

import json

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models
from guardian.admin import (
    AdminGroupObjectPermissionsForm,
    AdminUserObjectPermissionsForm,
    GroupManage,
    GuardedModelAdmin,
    UserManage,
)

from governance.audit.admin import ReadOnlyAdmin
from governance.grants import object_permissions_set
from governance.workflow.models import Approval, Deployment, ModelPolicy, PromotionRequest
from governance.workflow.policy_changes import POLICY_FIELDS, model_policy_delete, model_policy_set
from registry_ui.client_ip import client_ip
from registry_ui.mirror.models import RegisteredModel

User = get_user_model()


def _audited(base, request, kind):
    class AuditedForm(base):
        def save_obj_perms(self) -> None:
            holder = {"user": self.user} if kind == "user" else {"group": self.group}
            object_permissions_set(actor=request.user, obj=self.obj,
                                   perms=self.cleaned_data[self.get_obj_perms_field_name()],
                                   source_ip=client_ip(request), **holder)

    return AuditedForm


class UserPicker(UserManage):
    """Guardian asks for a username typed by hand: pick from the active users instead."""

    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("username"),
                                  to_field_name="username", label="User", empty_label="Choose a user")

    def clean_user(self):
        return self.cleaned_data["user"]


class GroupPicker(GroupManage):
    """The group from a list (the role groups and the teams) instead of a typed name."""

    group = forms.ModelChoiceField(queryset=Group.objects.order_by("name"), to_field_name="name", label="Group",
                                   empty_label="Choose a group")

    def clean_group(self):
        return self.cleaned_data["group"]


class PrettyJSONField(forms.JSONField):
    """Policy JSON (required tags, thresholds) shown indented in its textarea, not on one line."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, cls=self.encoder)


class ModelPolicyInline(admin.StackedInline):
    model = ModelPolicy
    can_delete = True
    extra = 0
    max_num = 1
    formfield_overrides = {models.JSONField: {"form_class": PrettyJSONField, "widget": forms.Textarea(
        attrs={"rows": 4, "cols": 60})}}


@admin.register(RegisteredModel)
class RegisteredModelAdmin(GuardedModelAdmin):
    """The mirror is written by the sync; here admins only scope models and manage grants and gates."""

    list_display = ["name", "updated_at", "scoped"]
    search_fields = ["name"]
    readonly_fields = ["name", "description", "tags", "created_at", "updated_at", "synced_at"]
    inlines = [ModelPolicyInline]

    @admin.display(boolean=True)
    def scoped(self, obj) -> bool:
        return bool(getattr(getattr(obj, "policy", None), "scoped", False))

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("policy")

    def has_add_permission(self, request):
        return False  # models come from MLflow

    def has_delete_permission(self, request, obj=None):
        return False

    def get_obj_perms_user_select_form(self, request):
        return UserPicker

    def get_obj_perms_group_select_form(self, request):
        return GroupPicker

    def get_obj_perms_manage_user_form(self, request):
        return _audited(AdminUserObjectPermissionsForm, request, "user")

    def get_obj_perms_manage_group_form(self, request):
        return _audited(AdminGroupObjectPermissionsForm, request, "group")

    def save_model(self, request, obj, form, change):
        # Every field of the mirror row is read-only here (the sync owns it): nothing to write.
        if not change:
            raise PermissionDenied("Registered models come from MLflow.")

    def save_formset(self, request, form, formset, change):
        if formset.model is not ModelPolicy:
            raise PermissionDenied(f"{formset.model.__name__} is not edited here.")
        model, ip = form.instance, client_ip(request)
        # What Django's change message (the admin's LogEntry) reads after save_formset.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline_form in formset.forms:
            existing = inline_form.instance if inline_form.instance.pk else None
            if formset._should_delete_form(inline_form):
                if existing is not None:
                    model_policy_delete(actor=request.user, model=model, source_ip=ip)
                    formset.deleted_objects.append(existing)
                continue
            if not inline_form.has_changed():
                continue
            changes = {name: inline_form.cleaned_data[name] for name in POLICY_FIELDS
                       if name in inline_form.cleaned_data}
            policy = model_policy_set(actor=request.user, model=model, changes=changes, source_ip=ip)
            if existing is None:
                formset.new_objects.append(policy)
            else:
                formset.changed_objects.append((policy, inline_form.changed_data))


class ApprovalInline(admin.TabularInline):
    model = Approval
    extra = 0
    can_delete = False
    readonly_fields = ["approver_username", "comment", "created_at"]
    exclude = ["approver"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyAdmin):
    list_display = ["id", "model_name", "version", "target_stage", "target_alias", "state", "requester_username",
                    "created_at"]
    list_filter = ["state", "target_stage", "rollback"]
    search_fields = ["model_name", "requester_username", "target_alias"]
    inlines = [ApprovalInline]


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["id", "request", "model_name", "version", "kind", "target", "state", "created_at"]
    list_filter = ["state", "kind"]
