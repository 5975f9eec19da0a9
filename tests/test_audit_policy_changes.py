"""Policy and access changes are on the record, with before and after, whichever door they come through:
the registered model's admin page (policy inline, object permissions), the user and group admin
(change form, delete page, list actions) and the services themselves (commands, scripts, a future API).
"""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from guardian.shortcuts import assign_perm

from governance import grants
from governance.audit.models import AuditEvent
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import RegisteredModel

pytestmark = pytest.mark.django_db
User = get_user_model()


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def only(action):
    found = events(action)
    assert len(found) == 1, f"{action}: {len(found)} events"
    return found[0]


@pytest.fixture
def fraud_model(db):
    # The mirror row as the sync leaves it; policies and grants hang off it (MLflow is not involved).
    return RegisteredModel.objects.create(name="fraud-detector")


# --------------------------------------------------------------------------------------------------
# Policies: the inline on the registered model's admin page
# --------------------------------------------------------------------------------------------------


def post_policy(client, model, *, delete=False, **values):
    """Submit the registered model's admin page with its policy inline as an admin would."""
    url = reverse("admin:registry_ui_registeredmodel_change", args=[model.pk])
    formset = client.get(url).context["inline_admin_formsets"][0].formset
    prefix, existing = formset.prefix, ModelPolicy.objects.filter(model=model).first()
    data = {f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "1" if existing else "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1", f"{prefix}-0-model": str(model.pk)}
    if existing:
        data[f"{prefix}-0-id"] = str(existing.pk)
    fields = {"scoped": False, "required_tags": None, "metric_thresholds": None, "compare_metric": "",
              "higher_is_better": True, "require_lineage": None, "production_quorum": None}
    if existing:
        fields.update({name: getattr(existing, name) for name in fields})
    fields.update(values)
    for name, value in fields.items():
        if isinstance(value, bool) and name != "require_lineage":
            if value:
                data[f"{prefix}-0-{name}"] = "on"
        elif name == "require_lineage":
            data[f"{prefix}-0-{name}"] = {None: "unknown", True: "true", False: "false"}[value]
        elif isinstance(value, dict):
            data[f"{prefix}-0-{name}"] = json.dumps(value)
        else:
            data[f"{prefix}-0-{name}"] = "" if value is None else str(value)
    if delete:
        data[f"{prefix}-0-DELETE"] = "on"
    response = client.post(url, data, REMOTE_ADDR="192.0.2.10")
    assert response.status_code == 302, getattr(response, "context", None) and \
        response.context["inline_admin_formsets"][0].formset.errors
    return response


def test_policy_created_changed_and_deleted_in_admin_are_audited(client, admin_user, fraud_model):
    client.force_login(admin_user)

    post_policy(client, fraud_model, scoped=True, metric_thresholds={"auc": {"min": 0.85}})
    created = only("policy.created")
    assert created.model_name == "fraud-detector" and created.actor_username == "admin"
    assert created.source_ip == "192.0.2.10" and created.before is None
    assert created.after["scoped"] is True and created.after["metric_thresholds"] == {"auc": {"min": 0.85}}

    post_policy(client, fraud_model, metric_thresholds={"auc": {"min": 0.70}}, production_quorum=2)
    changed = only("policy.changed")
    assert changed.before["metric_thresholds"] == {"auc": {"min": 0.85}}
    assert changed.after["metric_thresholds"] == {"auc": {"min": 0.70}}
    assert changed.before["production_quorum"] is None and changed.after["production_quorum"] == 2
    assert ModelPolicy.objects.get(model=fraud_model).production_quorum == 2

    post_policy(client, fraud_model, delete=True)
    deleted = only("policy.deleted")
    assert deleted.before["metric_thresholds"] == {"auc": {"min": 0.70}} and deleted.after is None
    assert not ModelPolicy.objects.filter(model=fraud_model).exists()


def test_unchanged_policy_saved_again_records_nothing(client, admin_user, fraud_model):
    client.force_login(admin_user)
    post_policy(client, fraud_model, scoped=True)
    post_policy(client, fraud_model)          # the same values submitted again
    assert len(events("policy.created")) == 1 and events("policy.changed") == []


def test_scoping_switched_off_is_audited(client, admin_user, fraud_model):
    client.force_login(admin_user)
    post_policy(client, fraud_model, scoped=True)
    post_policy(client, fraud_model, scoped=False)
    changed = only("policy.changed")
    assert changed.before["scoped"] is True and changed.after["scoped"] is False


def test_policy_service_refuses_a_user_without_the_permission(scientist, fraud_model):
    from governance.workflow.policy_changes import model_policy_delete, model_policy_set

    with pytest.raises(PermissionDenied):
        model_policy_set(actor=scientist, model=fraud_model, changes={"metric_thresholds": {}})
    with pytest.raises(PermissionDenied):
        model_policy_delete(actor=scientist, model=fraud_model)
    assert not ModelPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="policy.").exists()


def test_policy_service_from_code_is_audited(admin_user, fraud_model):
    """A command or script changes a policy through the same service as the admin page."""
    from governance.workflow.policy_changes import model_policy_set

    model_policy_set(actor=admin_user, model=fraud_model, changes={"required_tags": {"validation": "ok"}})
    model_policy_set(actor=admin_user, model=fraud_model, changes={"compare_metric": "auc"})
    assert only("policy.created").after["required_tags"] == {"validation": "ok"}
    changed = only("policy.changed")
    assert changed.before["compare_metric"] == "" and changed.after["compare_metric"] == "auc"


def test_the_policy_in_force_at_a_point_of_the_trail_is_the_last_one_recorded_before_it(
        client, admin_user, fraud_model):
    from governance.workflow.policy_changes import policy_in_force

    client.force_login(admin_user)
    post_policy(client, fraud_model, metric_thresholds={"auc": {"min": 0.85}})
    approved_then = AuditEvent.objects.order_by("-seq").first().seq + 1  # an approval right after it
    post_policy(client, fraud_model, metric_thresholds={"auc": {"min": 0.70}})
    post_policy(client, fraud_model, delete=True)
    now = AuditEvent.objects.order_by("-seq").first().seq + 1

    then = policy_in_force(model_name="fraud-detector", before_seq=approved_then)
    assert then["known"] and then["policy"]["metric_thresholds"] == {"auc": {"min": 0.85}}
    assert policy_in_force(model_name="fraud-detector", before_seq=now) == {
        "known": True, "seq": now - 1, "policy": None}  # deleted: the global defaults apply
    assert policy_in_force(model_name="fraud-detector", before_seq=1)["known"] is False


# --------------------------------------------------------------------------------------------------
# Per-model grants: django-guardian's admin pages
# --------------------------------------------------------------------------------------------------


def test_object_permission_pages_record_grant_and_revoke(client, admin_user, scientist, fraud_model):
    client.force_login(admin_user)
    url = reverse("admin:registry_ui_registeredmodel_permissions_manage_user", args=[fraud_model.pk, scientist.pk])
    assert client.post(url, {"permissions": ["request_promotion"]}).status_code == 302
    granted = only("permission.granted")
    assert granted.model_name == "fraud-detector" and granted.actor_username == "admin"
    assert granted.after["holder"] == "user:scientist" and granted.after["permission"] == "request_promotion"
    group = Group.objects.get(name="ops")
    url = reverse("admin:registry_ui_registeredmodel_permissions_manage_group", args=[fraud_model.pk, group.pk])
    client.post(url, {"permissions": ["deploy_promotion"]})
    # A browser always sends the CSRF token; without any field guardian would see no POST at all.
    client.post(url, {"permissions": [], "csrfmiddlewaretoken": "unchecked-in-tests"})
    revoked = only("permission.revoked")
    assert revoked.before["holder"] == "group:ops" and revoked.before["permission"] == "deploy_promotion"


def test_grant_service_refuses_a_user_without_the_permission(scientist, engineer, fraud_model):
    with pytest.raises(PermissionDenied):
        grants.object_permissions_set(actor=scientist, obj=fraud_model, perms=["approve_promotion"], user=engineer)
    assert not engineer.has_perm("registry_ui.approve_promotion", fraud_model)
    assert not AuditEvent.objects.filter(action="permission.granted").exists()


# --------------------------------------------------------------------------------------------------
# Users: activation, privileges, deletion, through every door of the user admin
# --------------------------------------------------------------------------------------------------


def post_user_form(client, user, **changes):
    url = reverse("admin:auth_user_change", args=[user.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items()
            if v is not None and k not in ("password", "groups", "user_permissions", "last_login", "date_joined")}
    data.update({"password": user.password, "last_login_0": "", "last_login_1": "",
                 "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
                 "groups": [g.pk for g in user.groups.all()],
                 "user_permissions": [p.pk for p in user.user_permissions.all()]})
    for name in ("is_active", "is_staff", "is_superuser"):
        data.pop(name, None)
        if changes.get(name, getattr(user, name)):
            data[name] = "on"
    data.update({k: v for k, v in changes.items() if k not in ("is_active", "is_staff", "is_superuser")})
    return client.post(url, data, REMOTE_ADDR="192.0.2.11")


def test_deactivating_and_reactivating_a_user_in_admin_is_audited(client, admin_user, engineer):
    client.force_login(admin_user)
    assert post_user_form(client, engineer, is_active=False).status_code == 302
    engineer.refresh_from_db()
    assert not engineer.is_active
    off = only("user.deactivated")
    assert off.actor_username == "admin" and off.source_ip == "192.0.2.11"
    assert off.before == {"user": "engineer", "is_active": True} and off.after == {"user": "engineer",
                                                                                   "is_active": False}
    assert post_user_form(client, engineer, is_active=True).status_code == 302
    assert only("user.activated").after == {"user": "engineer", "is_active": True}
    assert events("user.changed") == [] and events("user.privileges_changed") == []


def test_staff_and_superuser_flags_are_audited(client, admin_user, engineer):
    client.force_login(admin_user)
    assert post_user_form(client, engineer, is_staff=True, is_superuser=True).status_code == 302
    event = only("user.privileges_changed")
    assert event.before == {"user": "engineer", "is_staff": False, "is_superuser": False}
    assert event.after == {"user": "engineer", "is_staff": True, "is_superuser": True}


def test_only_a_superuser_may_make_a_superuser(client, engineer, outsider):
    """A staff user allowed to edit users must not be able to raise anyone (or themselves) to superuser."""
    outsider.is_staff = True
    outsider.save()
    outsider.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth",
                                                             codename__in=["view_user", "change_user"]))
    client.force_login(outsider)
    response = post_user_form(client, engineer, is_superuser=True)
    assert response.status_code == 403
    engineer.refresh_from_db()
    assert not engineer.is_superuser
    assert events("user.privileges_changed") == []


def test_user_list_actions_deactivate_and_activate(client, admin_user, engineer, ops_user):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_changelist")
    client.post(url, {"action": "deactivate_users", "_selected_action": [engineer.pk, ops_user.pk]})
    assert set(User.objects.filter(is_active=False).values_list("username", flat=True)) == {"engineer", "ops"}
    assert sorted(e.after["user"] for e in events("user.deactivated")) == ["engineer", "ops"]
    client.post(url, {"action": "activate_users", "_selected_action": [engineer.pk]})
    assert only("user.activated").after["user"] == "engineer"


def test_activation_service_from_code_is_audited_and_checked(admin_user, scientist, engineer):
    grants.user_activation_set(actor=admin_user, user=engineer, active=False, source_ip="192.0.2.12")
    assert only("user.deactivated").source_ip == "192.0.2.12"
    with pytest.raises(PermissionDenied):
        grants.user_activation_set(actor=scientist, user=engineer, active=True)
    engineer.refresh_from_db()
    assert not engineer.is_active and events("user.activated") == []


def test_deleting_a_user_records_what_access_they_had(client, admin_user, engineer, fraud_model):
    assign_perm("approve_promotion", engineer, fraud_model)
    client.force_login(admin_user)
    response = client.post(reverse("admin:auth_user_delete", args=[engineer.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(username="engineer").exists()
    deleted = only("user.deleted")
    assert deleted.actor_username == "admin" and deleted.after is None
    assert deleted.before["user"] == "engineer" and deleted.before["groups"] == ["ml_engineer"]
    assert deleted.before["object_permissions"] == [{"model": "fraud-detector", "permission": "approve_promotion"}]


def test_deleting_users_from_the_list_is_audited(client, admin_user, engineer, ops_user):
    client.force_login(admin_user)
    client.post(reverse("admin:auth_user_changelist"),
                {"action": "delete_selected", "_selected_action": [engineer.pk, ops_user.pk], "post": "yes"})
    assert not User.objects.filter(username__in=["engineer", "ops"]).exists()
    assert sorted(e.before["user"] for e in events("user.deleted")) == ["engineer", "ops"]


def test_creating_a_user_in_admin_is_audited(client, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("admin:auth_user_add"),
                           {"username": "newcomer", "password1": "a-Long-pass-42!", "password2": "a-Long-pass-42!",
                            "usable_password": "true"})
    assert response.status_code == 302
    created = only("user.created")
    assert created.after == {"user": "newcomer", "is_active": True, "is_staff": False, "is_superuser": False}


# --------------------------------------------------------------------------------------------------
# Groups: deletion takes members, permissions and grants with it
# --------------------------------------------------------------------------------------------------


def test_deleting_a_group_from_the_list_records_its_members_and_grants(client, admin_user, engineer, fraud_model):
    group = Group.objects.create(name="fraud-team")
    group.user_set.add(engineer)
    assign_perm("approve_promotion", group, fraud_model)
    client.force_login(admin_user)
    client.post(reverse("admin:auth_group_changelist"),
                {"action": "delete_selected", "_selected_action": [group.pk], "post": "yes"})
    assert not Group.objects.filter(name="fraud-team").exists()
    deleted = only("group.deleted")
    assert deleted.before["group"] == "fraud-team" and deleted.before["members"] == ["engineer"]
    assert deleted.before["object_permissions"] == [{"model": "fraud-detector", "permission": "approve_promotion"}]
    assert only("group.member_removed").before == {"user": "engineer", "group": "fraud-team"}


def test_renaming_a_group_is_audited(client, admin_user):
    group = Group.objects.create(name="fraud-team")
    client.force_login(admin_user)
    response = client.post(reverse("admin:auth_group_change", args=[group.pk]),
                           {"name": "fraud-squad", "members": [], "permissions": []})
    assert response.status_code == 302
    renamed = only("group.changed")
    assert renamed.before == {"group": "fraud-team"} and renamed.after == {"group": "fraud-squad"}
