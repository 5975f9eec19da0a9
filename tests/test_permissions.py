"""Every transition for every role, on the API and on the pages (allowed and forbidden), plus
scoping with django-guardian object grants. A successful write makes exactly its audit events."""

import itertools

import pytest
from django.urls import reverse

from governance.access import can, visible_models, who_may
from governance.audit.models import AuditEvent
from governance.workflow import services as workflow
from governance.workflow.models import ModelPolicy
from governance.workflow.policies import request_actions
from registry_ui.mirror.models import RegisteredModel
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]

ROLES = ["scientist", "engineer", "ops", "auditor", "outsider", "admin"]
OK = "ok"
EXPECTED = {
    "create": {"scientist": OK, "engineer": 403, "ops": 403, "auditor": 403, "outsider": 404, "admin": OK},
    "approve": {"scientist": 403, "engineer": OK, "ops": 403, "auditor": 403, "outsider": 404, "admin": OK},
    "reject": {"scientist": 403, "engineer": OK, "ops": 403, "auditor": 403, "outsider": 404, "admin": OK},
    "cancel": {"scientist": OK, "engineer": 403, "ops": 403, "auditor": 403, "outsider": 404, "admin": OK},
    "deploy": {"scientist": 403, "engineer": 403, "ops": OK, "auditor": 403, "outsider": 404, "admin": OK},
}
EVENTS = {"create": ["request.created"], "approve": ["request.approved"], "reject": ["request.rejected"],
          "cancel": ["request.cancelled"], "deploy": ["deploy.started", "deploy.succeeded"]}
_alias_counter = itertools.count()


def _unique_alias() -> str:
    return f"m{next(_alias_counter)}x{__import__('os').getpid()}"


def _setup(action, promo, users):
    """A request in the state the action needs; returns (request or None, alias)."""
    alias = _unique_alias()
    if action == "create":
        return None, alias
    requester = users["scientist"] if action == "cancel" else make_user("requester2", "data_scientist")
    req = workflow.promotion_request_create(actor=requester, model_name=promo.name, version=2, target_alias=alias,
                                            justification="matrix")
    if action == "deploy":
        workflow.promotion_request_approve(request_id=req.pk, actor=make_user("approver2", "ml_engineer"))
    return req, alias


@pytest.mark.parametrize("interface", ["api", "page"])
@pytest.mark.parametrize("action,role", [(a, r) for a in EXPECTED for r in ROLES])
def test_transition_matrix(client, shared_promo, role_users, interface, action, role):
    req, alias = _setup(action, shared_promo, role_users)
    client.force_login(role_users[role])
    before = AuditEvent.objects.count()
    if action == "create":
        data = {"model": shared_promo.name, "version": 2, "target_alias": alias, "justification": "because"}
        if interface == "api":
            response = client.post(reverse("requests_api:request_list"), data, content_type="application/json")
        else:
            response = client.post(reverse("governance:request_create"), {**data, "target_kind": "alias"})
    else:
        data = {"comment": "matrix comment"}
        if interface == "api":
            response = client.post(reverse(f"requests_api:request_{action}", args=[req.pk]), data,
                                   content_type="application/json")
        else:
            response = client.post(reverse(f"governance:request_{action}", args=[req.pk]), data)
    expected = EXPECTED[action][role]
    new_events = list(AuditEvent.objects.filter(seq__gt=before).order_by("seq").values_list("action", flat=True))
    if expected == OK:
        ok_status = {"api": 201 if action == "create" else 200, "page": 302}[interface]
        assert response.status_code == ok_status, response.content[:500]
        assert new_events == EVENTS[action]
        if interface == "api":
            assert response.json()["state"] in {"pending", "approved", "rejected", "cancelled", "deployed"}
    else:
        assert response.status_code == expected, response.content[:500]
        assert new_events == []
        if interface == "api":
            assert "detail" in response.json()


PAGES = ["governance:inbox", "governance:request_list", "governance:request_detail", "governance:request_create",
         "governance:request_rollback"]


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("role", ROLES + ["anonymous"])
def test_pages_by_role(client, shared_promo, role_users, name, role):
    req = workflow.promotion_request_create(actor=make_user("requester2", "data_scientist"),
                                            model_name=shared_promo.name, version=2, target_alias=_unique_alias(),
                                            justification="pages")
    if role != "anonymous":
        client.force_login(role_users[role])
    url = reverse(name, args=[req.pk]) if name == "governance:request_detail" else reverse(name)
    if name == "governance:request_create":
        url += f"?model={shared_promo.name}&version=2"
    response = client.get(url)
    if role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        return
    expected = 200
    if role == "outsider" and name in ("governance:request_detail", "governance:request_create"):
        expected = 404
    if name == "governance:request_create" and role in ("engineer", "ops", "auditor"):
        expected = 403
    assert response.status_code == expected
    if name == "governance:request_detail" and expected == 200:
        body = response.content.decode()
        shown = {a for a in ("approve", "reject", "cancel", "deploy") if f"/{a}/" in body}
        assert shown == set(request_actions(role_users[role], req))


def test_api_needs_authentication(client, db):
    response = client.get(reverse("requests_api:request_list"))
    assert response.status_code in (401, 403) and "detail" in response.json()


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


def test_every_workflow_url_is_in_the_matrix():
    from governance.workflow import urls as page_urls
    from governance.workflow.api import urls as request_urls

    covered = set(PAGES) | {f"governance:request_{a}" for a in EXPECTED if a != "create"}
    assert {f"governance:{p.name}" for p in page_urls.urlpatterns} <= covered | {"governance:request_create"}
    api_covered = {"request_list", "request_detail"} | {f"request_{a}" for a in EXPECTED if a != "create"}
    assert {p.name for p in request_urls.urlpatterns} <= api_covered
