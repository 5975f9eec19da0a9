"""Sign-ins, failed sign-ins, sign-outs and admin changes to groups and permissions are audited."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from governance.audit.models import AuditEvent
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.django_db


def last(action):
    return AuditEvent.objects.filter(action=action).order_by("-seq").first()


def test_login_logout_and_failed_login_are_audited_with_ip(client, scientist):
    client.post(reverse("login"), {"username": "scientist", "password": "wrong"}, REMOTE_ADDR="192.0.2.5")
    failed = last("user.login_failed")
    assert failed.actor_username == "anonymous" and failed.after == {"username": "scientist"}
    assert failed.source_ip == "192.0.2.5"
    client.post(reverse("login"), {"username": "scientist", "password": TEST_PASSWORD}, REMOTE_ADDR="192.0.2.6")
    login = last("user.login")
    assert login.actor_username == "scientist" and login.actor_id == scientist.pk and login.source_ip == "192.0.2.6"
    client.post(reverse("logout"), REMOTE_ADDR="192.0.2.6")
    assert last("user.logout").actor_username == "scientist"


def test_group_membership_change_through_user_admin(client, admin_user, scientist):
    client.force_login(admin_user)
    url = reverse("admin:auth_user_change", args=[scientist.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups",
                                                                                    "user_permissions")}
    data.update({"username": "scientist", "password": scientist.password, "last_login_0": "", "last_login_1": "",
                 "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
                 "groups": [Group.objects.get(name="ml_engineer").pk],
                 "user_permissions": [Permission.objects.get(codename="request_promotion").pk]})
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    added, removed = last("group.member_added"), last("group.member_removed")
    assert added.actor_username == "admin" and added.after == {"user": "scientist", "group": "ml_engineer"}
    assert removed.before == {"user": "scientist", "group": "data_scientist"}
    granted = last("permission.granted")
    assert granted.after == {"permission": "registry_ui.request_promotion", "user": "scientist"}


def test_group_membership_change_through_group_admin(client, admin_user, auditor, outsider):
    client.force_login(admin_user)
    group = Group.objects.get(name="auditor")
    url = reverse("admin:auth_group_change", args=[group.pk])
    response = client.post(url, {"name": "auditor", "members": [outsider.pk], "permissions": []})
    assert response.status_code == 302
    assert set(group.user_set.all()) == {outsider}
    assert last("group.member_added").after == {"user": "outsider", "group": "auditor"}
    assert last("group.member_removed").before == {"user": "auditor", "group": "auditor"}
    assert last("group.member_added").actor_username == "admin"


def test_audit_events_are_read_only_in_admin(client, admin_user):
    client.force_login(admin_user)
    event = last("user.login")
    assert client.get(reverse("admin:governance_auditevent_changelist")).status_code == 200
    page = client.get(reverse("admin:governance_auditevent_change", args=[event.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    delete_url = reverse("admin:governance_auditevent_delete", args=[event.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:governance_auditevent_add")).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()
