"""Scoping with django-guardian object grants, who may act on a model, and the audited grant views of
the admin. (Every transition x role x scope, on the API and the pages: tests/test_url_matrix.py.)"""


import pytest
from django.urls import reverse

from governance.access import can, visible_models, who_may
from governance.audit.models import AuditEvent
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import RegisteredModel

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]

def test_scoped_model_needs_an_object_grant(shared_promo, engineer, scientist, ops_user):
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    model = shared_promo.model
    assert can(engineer, "approve", model)
    ModelPolicy.objects.create(model=model, scoped=True)
    model = RegisteredModel.objects.get(pk=model.pk)
    assert not can(engineer, "approve", model)
    assert not can(scientist, "request", model)
    assert can(engineer, "view", model)  # scoping limits actions, not reading
    assert who_may(model) == {"request": [], "approve": [], "deploy": []}
    team = Group.objects.create(name="fraud_team")
    engineer.groups.add(team)
    assign_perm("registry_ui.approve_promotion", team, model)
    assign_perm("registry_ui.request_promotion", scientist, model)
    from django.contrib.auth import get_user_model

    engineer = get_user_model().objects.get(pk=engineer.pk)  # fresh permission caches
    scientist = get_user_model().objects.get(pk=scientist.pk)
    model = RegisteredModel.objects.get(pk=model.pk)
    assert can(engineer, "approve", model) and can(scientist, "request", model)
    assert not can(ops_user, "deploy", model)
    assert who_may(model) == {"request": ["scientist"], "approve": ["group:fraud_team"], "deploy": []}


def test_who_may_lists_role_groups_on_unscoped_models(shared_promo):
    assert who_may(shared_promo.model) == {"request": ["group:data_scientist"], "approve": ["group:ml_engineer"],
                                           "deploy": ["group:ops"]}


def test_outsider_sees_only_models_granted_to_them(shared_promo, outsider):
    from guardian.shortcuts import assign_perm

    assert not visible_models(outsider, RegisteredModel.objects.all()).exists()
    assign_perm("registry_ui.view_registeredmodel", outsider, shared_promo.model)
    assert list(visible_models(outsider, RegisteredModel.objects.all())) == [shared_promo.model]


def test_admin_grants_and_revokes_are_audited(client, shared_promo, admin_user, engineer):
    client.force_login(admin_user)
    url = reverse("admin:registry_ui_registeredmodel_permissions_manage_user",
                  args=[shared_promo.model.pk, engineer.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"permissions": ["approve_promotion", "deploy_promotion"]})
    assert response.status_code == 302
    granted = AuditEvent.objects.filter(action="permission.granted").order_by("seq")
    assert [e.after["permission"] for e in granted] == ["approve_promotion", "deploy_promotion"]
    assert {e.actor_username for e in granted} == {"admin"}
    client.post(url, {"permissions": ["approve_promotion"]})
    revoked = AuditEvent.objects.get(action="permission.revoked")
    assert revoked.before == {"holder": "user:engineer", "permission": "deploy_promotion",
                              "object": shared_promo.name}
    assert revoked.actor_username == "admin"


def test_model_scoping_switch_in_admin(client, shared_promo, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("admin:registry_ui_registeredmodel_change", args=[shared_promo.model.pk]))
    assert response.status_code == 200
    assert b"scoped" in response.content and b"Object permissions" in response.content
