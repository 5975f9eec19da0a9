"""The one permission matrix (NetBox style): every URL name of the URLconf x every role x the scope of
the object it names, generated from the tables below.

- GET: the status each role gets on each URL, for an object of an open model and one of a model scoped
  to a team (model-level role permissions do not act on it; only the team's object grants do).
- Writes: every transition (create, approve, reject, cancel, deploy), on the API and on the pages, by
  every role on both scopes: a refusal changes nothing; a success moves the request to its new state
  and records exactly its audit event (deploy: its outbox pair, started and succeeded).
- A POST from anyone who may not write changes nothing, on every URL.
A new URL fails `test_every_url_is_in_the_matrix` until it is added here.

The world (users, both models in the real MLflow and in the mirror, a pending request on each) is
built once for the module inside a transaction that is rolled back at the end; each test runs in a
savepoint of it (pytest-django's `db`), so what one test writes is gone before the next.
"""

import itertools
import sys
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from governance.access import ensure_role_permissions
from governance.audit.models import AuditEvent
from governance.cards.services import card_edit
from governance.workflow import services as workflow
from governance.workflow.models import ModelPolicy, PromotionRequest
from governance.workflow.policies import request_actions
from tests.conftest import MlflowFactory, make_user
from tests.fixtures_workflow import build_promo, mirror_model

pytestmark = [pytest.mark.django_db, pytest.mark.mlflow]

ROLES = ["anonymous", "outsider", "scientist", "engineer", "ops", "auditor", "admin", "scoped"]
ROLE_GROUPS = {"scientist": "data_scientist", "engineer": "ml_engineer", "ops": "ops", "auditor": "auditor"}
TEAM = "team_b"  # "scoped" belongs to it: no role group, object grants on the team's model only
TEAM_PERMS = ["view_registeredmodel", "request_promotion", "approve_promotion", "deploy_promotion"]
# open: a model every role group acts on. team: a scoped model of another team.
SCOPES = ["open", "team"]


def _row(*statuses) -> dict:
    assert len(statuses) == len(ROLES)
    return dict(zip(ROLES, statuses, strict=True))


# Expected GET status per role, in ROLES order. A registry page: login redirect for anonymous, 403
# ("ask an administrator") for a user who may see no model at all.
SIGNED_IN = _row(302, 200, 200, 200, 200, 200, 200, 200)
API_SIGNED_IN = _row(401, 200, 200, 200, 200, 200, 200, 200)  # anonymous: 401 with WWW-Authenticate: Token
POST_ONLY_PAGE = _row(302, 405, 405, 405, 405, 405, 405, 405)
POST_ONLY_API = _row(401, 405, 405, 405, 405, 405, 405, 405)
EVERYONE = _row(*[200] * 8)
ADMIN_ONLY_PAGE = _row(302, 403, 403, 403, 403, 403, 200, 403)
NOBODY_GET = _row(*[405] * 8)
# Reading an object: every role group may read every model (scoping limits actions, not reading); the
# team member reads the team's model only, and the open one is out of scope for them: 404.
OBJECT_PAGE = {"open": _row(302, 403, 200, 200, 200, 200, 200, 404), "team": _row(302, 403, *[200] * 6)}
OBJECT_API = {"open": _row(401, 404, 200, 200, 200, 200, 200, 404), "team": _row(401, 404, *[200] * 6)}
OBJECT_SIGNED_IN = {"open": _row(302, 404, 200, 200, 200, 200, 200, 404), "team": _row(302, 404, *[200] * 6)}
OBJECT_API_PRIVATE = {"open": _row(401, 403, 200, 200, 200, 200, 200, 404), "team": _row(401, 403, *[200] * 6)}


@dataclass
class Target:
    """What a URL of the matrix names: a model, its request, the query string."""

    name: str
    request_pk: int


def _q(template):
    return lambda t: template.format(model=t.name)


def _pk(t):
    return {"pk": t.request_pk}


def _name(t):
    return {"name": t.name}


def _version(t):
    return {"name": t.name, "version": 1}


# url name -> (kwargs(target), query(target) or "", {scope: expected} or expected for URLs naming no object)
MATRIX = {
    "home": (None, "", SIGNED_IN),
    "login": (None, "", EVERYONE),
    "favicon": (None, "", EVERYONE),
    "healthz": (None, "", EVERYONE),
    "readyz": (None, "", EVERYONE),  # the matrix's world is migrated and its MLflow answers
    "logout": (None, "", NOBODY_GET),  # Django 5: logout is a POST
    "hooks:mlflow": (None, "", NOBODY_GET),  # MLflow POSTs signed events; tests/test_webhooks.py
    "registry:catalogue": (None, "", _row(302, 403, *[200] * 6)),
    "registry:model_detail": (_name, "", OBJECT_PAGE),
    "registry:version_detail": (_version, "", OBJECT_PAGE),
    "registry:lineage": (_version, "", OBJECT_PAGE),
    "registry:compare": (None, _q("model={model}&versions=1,2"), OBJECT_PAGE),
    "registry:compare_csv": (None, _q("model={model}&versions=1,2"), OBJECT_PAGE),
    "compare_api:compare": (None, _q("model={model}&versions=1,2"), OBJECT_API_PRIVATE),
    "registry_api:model_list": (None, "", API_SIGNED_IN),  # filtered: an outsider gets an empty list
    "registry_api:model_detail": (_name, "", OBJECT_API),
    "registry_api:version_list": (_name, "", OBJECT_API),
    "registry_api:version_detail": (_version, "", OBJECT_API),
    "registry_api:sync_status": (None, "", API_SIGNED_IN),
    "governance:inbox": (None, "", SIGNED_IN),
    "governance:request_list": (None, "", SIGNED_IN),
    # Asking: data scientists on open models; on the scoped one only the team (and admins).
    "governance:request_create": (None, _q("model={model}&version=2"), {
        "open": _row(302, 404, 200, 403, 403, 403, 200, 404),
        "team": _row(302, 404, 403, 403, 403, 403, 200, 200)}),
    # Rollback: data scientists and ops may ask to put the previous holder back.
    "governance:request_rollback": (None, _q("model={model}&target=alias:champion"), {
        "open": _row(302, 404, 200, 403, 200, 403, 200, 404),
        "team": _row(302, 404, 403, 403, 403, 403, 200, 200)}),
    "governance:request_detail": (_pk, "", OBJECT_SIGNED_IN),
    # Break-glass: only holders of the break-glass permission (no role carries it; admins do).
    "governance:break_glass": (None, _q("model={model}"), {
        "open": _row(302, 404, 403, 403, 403, 403, 200, 404),
        "team": _row(302, 404, 403, 403, 403, 403, 200, 403)}),
    "governance:request_review": (_pk, "", {s: POST_ONLY_PAGE for s in SCOPES}),
    "requests_api:break_glass": (None, "", POST_ONLY_API),
    "requests_api:request_review": (_pk, "", {s: POST_ONLY_API for s in SCOPES}),
    # The time machine: anyone who may see the model (no date-time given: just the form).
    "governance:time_machine": (None, _q("model={model}&target=alias:champion&at=2020-01-01T10:00"),
                                OBJECT_SIGNED_IN),
    "requests_api:held_at": (None, _q("model={model}&target=alias:champion&at=2020-01-01T10:00Z"), OBJECT_API),
    # The re-certification queue: everyone signed in sees the due holders of the models they may see.
    "governance:recertification": (None, "", SIGNED_IN),
    # The retention dry run: everyone who may see the model (proposing is a POST).
    "governance:retention": (None, _q("model={model}"), OBJECT_SIGNED_IN),
    "requests_api:request_list": (None, "", API_SIGNED_IN),  # filtered: an outsider gets an empty list
    "requests_api:request_detail": (_pk, "", OBJECT_API),
    **{f"governance:request_{a}": (_pk, "", {s: POST_ONLY_PAGE for s in SCOPES})
       for a in ("approve", "reject", "cancel", "deploy", "validate")},
    **{f"requests_api:request_{a}": (_pk, "", {s: POST_ONLY_API for s in SCOPES})
       for a in ("approve", "reject", "cancel", "deploy")},
    # The trail: everyone signed in searches, exports and reports on the events of the models they may
    # see (auditors and admins: all of it); no checkpoint has been written in this world, hence 404.
    "audit:search": (None, "", SIGNED_IN),
    "audit:export": (None, "format=csv", SIGNED_IN),
    "audit:report_index": (None, "", SIGNED_IN),
    "audit:model_report": (_name, "", OBJECT_SIGNED_IN),
    "audit:checkpoint_download": (None, "", _row(302, *[404] * 7)),
    "audit:verify": (None, "", POST_ONLY_PAGE),  # a POST by auditors and staff: tests/test_audit_report_page.py
    "audit_api:event_list": (None, "", API_SIGNED_IN),
    "audit_api:verify": (None, "", _row(401, 403, 403, 403, 403, 200, 200, 403)),
    # Notifications: everyone signed in has a profile (mail preferences, watches) and reads the event
    # feed (filtered to the models they may see); outbound webhooks are for administrators only.
    "notify:profile": (None, "", SIGNED_IN),
    "notify:watch": (None, "", POST_ONLY_PAGE),
    "notify:subscription_list": (None, "", ADMIN_ONLY_PAGE),
    # The permission is checked before the lookup: 403 for all but the admin, who gets 404 in this world
    # (it has no subscription; tests/test_notify.py opens a real one).
    "notify:subscription_edit": (lambda t: {"pk": 999999}, "", _row(302, 403, 403, 403, 403, 403, 404, 403)),
    "notify:subscription_delete": (lambda t: {"pk": 999999}, "", POST_ONLY_PAGE),
    "notify:delivery_list": (None, "", ADMIN_ONLY_PAGE),
    "notify:delivery_resend": (lambda t: {"pk": 999999}, "", POST_ONLY_PAGE),
    "events_api:event_list": (None, "", API_SIGNED_IN),
    # Operations: ops and admins; "Sync now" / "Sync this model" are POSTs (tests/test_operations.py).
    "operations:dashboard": (None, "", _row(302, 403, 403, 403, 200, 403, 200, 403)),
    "operations:sync_now": (None, "", POST_ONLY_PAGE),
    "operations:sync_model": (None, "", POST_ONLY_PAGE),
    "operations:task_status": (lambda t: {"task_id": "00000000-0000-4000-8000-000000000000"}, "",
                               _row(302, 403, 403, 403, 404, 403, 404, 403)),
    # Model risk: tier changes and findings are POSTs (tests/test_risk.py); the portfolio is for
    # approvers (the team member approves on the team's model), auditors and admins.
    "risk:tier_change_request": (None, "", POST_ONLY_PAGE),
    "risk:tier_change_decide": (lambda t: {"pk": 999999, "action": "approve"}, "", POST_ONLY_PAGE),
    "risk:finding_raise": (None, "", POST_ONLY_PAGE),
    "risk:finding_transition": (lambda t: {"pk": 999999, "action": "accept"}, "", POST_ONLY_PAGE),
    "portfolio:portfolio": (None, "", _row(302, 403, 403, 200, 403, 200, 200, 200)),
    "portfolio:portfolio_csv": (None, "tier=tier1", _row(302, 403, 403, 200, 403, 200, 200, 200)),
    # Model cards: read and exported by whoever sees the model (v1 has a card in this world); written
    # (GET of the edit page) by those who may request or approve on it; decided and re-written by POST.
    "cards:card_detail": (_version, "", OBJECT_PAGE),
    "cards:card_export": (lambda t: {"name": t.name, "version": 1, "fmt": "html"}, "", OBJECT_PAGE),
    "cards:card_edit": (_version, "", {"open": _row(302, 403, 200, 200, 403, 403, 200, 404),
                                       "team": _row(302, 403, 403, 403, 403, 403, 200, 200)}),
    "cards:card_publish": (_version, "", {s: POST_ONLY_PAGE for s in SCOPES}),
    "cards:card_decide": (lambda t: {"pk": 999999, "action": "approve"}, "", POST_ONLY_PAGE),
    # The risk API: everyone signed in reads tiers and findings of the models they may see (writes are
    # POSTs: tests/test_api_risk.py and schemathesis).
    "risk_api:tier_list": (None, "", API_SIGNED_IN),
    "risk_api:tier_detail": (_name, "", OBJECT_API),
    "risk_api:tier_change_request": (None, "", POST_ONLY_API),
    "risk_api:tier_change_approve": (lambda t: {"pk": 999999}, "", POST_ONLY_API),
    "risk_api:tier_change_reject": (lambda t: {"pk": 999999}, "", POST_ONLY_API),
    "risk_api:finding_list": (None, "", API_SIGNED_IN),
    "risk_api:finding_detail": (lambda t: {"pk": 999999}, "", _row(401, *[404] * 7)),
    **{f"risk_api:finding_{a}": (lambda t: {"pk": 999999}, "", POST_ONLY_API)
       for a in ("propose", "accept", "decline")},
    # The OpenAPI schema and its readers describe endpoints, never data: open to everyone.
    "api_docs:schema": (None, "", EVERYONE),
    "api_docs:swagger": (None, "", EVERYONE),
    "api_docs:redoc": (None, "", EVERYONE),
    # A model's policy: read by whoever sees the model; changed (PATCH/DELETE) by admins only.
    "policies_api:policy_detail": (_name, "", OBJECT_API),
    # Everyone signed in manages their own API tokens (tests/test_api_tokens.py).
    "tokens:token_list": (None, "", _row(302, *[200] * 7)),
    "tokens:token_create": (None, "", NOBODY_GET),
    "tokens:token_revoke": (lambda t: {"token_key": "abcdefghijklmno"}, "", NOBODY_GET),
    # Single sign-on (tests/settings.py turns it on): the start sends anyone to the identity provider;
    # the callback without the IdP's code and state sends back to the sign-in page (?sso=failed).
    "oidc_authentication_init": (None, "", _row(*[302] * 8)),
    "oidc_authentication_callback": (None, "", _row(*[302] * 8)),
}


def _url_names(resolver=None, prefix="") -> set[str]:
    names = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's admin checks is_staff itself; its audited grant views: test_permissions
            names |= _url_names(entry, f"{prefix}{entry.namespace}:" if entry.namespace else prefix)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(prefix + entry.name)
    return names


def test_every_url_is_in_the_matrix():
    assert _url_names() == set(MATRIX)


def _get_cases():
    for name, (_, _, expected) in sorted(MATRIX.items()):
        if set(expected) == set(SCOPES):
            yield from (pytest.param(name, scope, id=f"{name}-{scope}") for scope in SCOPES)
        else:
            yield pytest.param(name, None, id=name)


# --------------------------------------------------------------------------------------------------
# The world, built once for the module
# --------------------------------------------------------------------------------------------------


@dataclass
class World:
    users: dict
    targets: dict  # scope -> Target of the world's pending request
    requesters: dict  # scope -> who asks in the write matrix
    approvers: dict  # scope -> who approves before a deploy
    sessions: dict  # role -> session key, signed in once with the world (see _client)


def _build_world(factory, names: dict, mlflow_url: str) -> tuple[dict, dict]:
    from guardian.shortcuts import assign_perm

    # A transactional test's flush empties the role groups' permissions; the matrix needs them.
    ensure_role_permissions()
    with override_settings(MLFLOW_TRACKING_URI=mlflow_url):
        models = {scope: mirror_model(factory.client, name) for scope, name in names.items()}
        ModelPolicy.objects.create(model=models["team"], scoped=True)
        team = Group.objects.create(name=TEAM)
        for codename in TEAM_PERMS:
            assign_perm(f"registry_ui.{codename}", team, models["team"])
        users = {role: make_user(f"m-{role}", ROLE_GROUPS.get(role)) for role in ROLES[1:] if role != "admin"}
        users["admin"] = make_user("m-admin", staff=True)
        helpers = {"open-requester": "data_scientist", "open-approver": "ml_engineer",
                   "team-requester": None, "team-approver": None}
        for helper, group in helpers.items():
            users[helper] = make_user(f"m-{helper}", group)
        for user in (users["scoped"], users["team-requester"], users["team-approver"]):
            user.groups.add(team)
        targets = {}
        for scope, name in names.items():
            card_edit(actor=users[f"{scope}-requester"], model_name=name, version=1,
                      sections={"purpose": "The matrix's card"}, base_revision=None)
            req = workflow.promotion_request_create(actor=users[f"{scope}-requester"], model_name=name, version=2,
                                                    target_alias="champion", justification="matrix")
            targets[scope] = Target(name=name, request_pk=req.pk)
    return users, targets


def _sign_in_once(users: dict) -> dict:
    """One session per role, made with the world and kept by its transaction: each test's writes (and a
    session a view changed) roll back with the test's savepoint, the sign-in itself is not repeated
    for every role of every test (a session row and a `user.login` event each time)."""
    sessions = {}
    for role in ROLES[1:]:
        client = Client()
        client.force_login(users[role])
        sessions[role] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return sessions


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, mlflow_server) -> World:
    factory = MlflowFactory(mlflow_server.url)
    # Odd characters on purpose: every URL of the matrix quotes the name.
    names = {"open": factory.unique("matrix model.v1 ü"), "team": factory.unique("team-b model")}
    for name in names.values():
        build_promo(factory, name)  # v1 Production and @champion, v2 a better validated candidate, v3 pending
    outer = transaction.atomic()
    with django_db_blocker.unblock():
        outer.__enter__()
        try:
            users, targets = _build_world(factory, names, mlflow_server.url)
            sessions = _sign_in_once(users)
        except BaseException:
            outer.__exit__(*sys.exc_info())  # never leave the module's transaction open for the next one
            raise
    yield World(users=users, targets=targets,
                requesters={"open": users["scientist"], "team": users["scoped"]},
                approvers={"open": users["open-approver"], "team": users["team-approver"]}, sessions=sessions)
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _mlflow(use_mlflow_server):
    """Deploys write to the session's real MLflow server."""


def _client(world, role) -> Client:
    client = Client()
    if role != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    return client


def _url(name, target: Target | None) -> str:
    kwargs, query, _ = MATRIX[name]
    query = query(target) if callable(query) else query
    return reverse(name, kwargs=kwargs(target) if kwargs else None) + (f"?{query}" if query else "")


# --------------------------------------------------------------------------------------------------
# GET: the status of every role on every URL
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "scope"), list(_get_cases()))
def test_get_status_for_every_role(world, name, scope):
    expected = MATRIX[name][2][scope] if scope else MATRIX[name][2]
    url = _url(name, world.targets[scope or "open"])
    got = {}
    for role in ROLES:
        response = _client(world, role).get(url)
        got[role] = response.status_code
        if response.status_code == 302 and name == "oidc_authentication_init":
            assert response["Location"].startswith(settings.OIDC_OP_AUTHORIZATION_ENDPOINT), response["Location"]
        elif response.status_code == 302:
            assert response["Location"].startswith(reverse("login")), (role, response["Location"])
        elif response.status_code in (403, 404) and response["Content-Type"].startswith("application/json"):
            assert "detail" in response.json(), role
        elif response.status_code in (403, 404):
            body = response.content.decode()
            assert {403: "Not allowed", 404: "Not found"}[response.status_code] in body, role
            assert "Traceback" not in body, role
        if name == "governance:request_detail" and response.status_code == 200:
            # The buttons are exactly what the services would allow this user.
            req = PromotionRequest.objects.get(pk=world.targets[scope].request_pk)
            body = response.content.decode()
            shown = {a for a in ("approve", "reject", "cancel", "deploy") if f"/{a}/" in body}
            assert shown == set(request_actions(world.users[role], req)), role
    assert got == expected


# --------------------------------------------------------------------------------------------------
# Writes: every transition x role x scope x interface
# --------------------------------------------------------------------------------------------------

OK = "ok"
# Expected outcome per role (ROLES order) and scope. Anonymous: a page sends to the login page, the API
# says 403. A model out of the user's sight is 404; a visible model the user may not act on is 403.
WRITES = {
    "create": {"open": _row("anon", 404, OK, 403, 403, 403, OK, 404),
               "team": _row("anon", 404, 403, 403, 403, 403, OK, OK)},
    "approve": {"open": _row("anon", 404, 403, OK, 403, 403, OK, 404),
                "team": _row("anon", 404, 403, 403, 403, 403, OK, OK)},
    "reject": {"open": _row("anon", 404, 403, OK, 403, 403, OK, 404),
               "team": _row("anon", 404, 403, 403, 403, 403, OK, OK)},
    # Only the requester (the scientist; on the team's model, the team member) or an admin cancels.
    "cancel": {"open": _row("anon", 404, OK, 403, 403, 403, OK, 404),
               "team": _row("anon", 404, 403, 403, 403, 403, OK, OK)},
    "deploy": {"open": _row("anon", 404, 403, 403, OK, 403, OK, 404),
               "team": _row("anon", 404, 403, 403, 403, 403, OK, OK)},
}
EVENTS = {"create": ["request.created"], "approve": ["request.approved"], "reject": ["request.rejected"],
          "cancel": ["request.cancelled"], "deploy": ["deploy.started", "deploy.succeeded"]}
STATE_AFTER = {"create": "pending", "approve": "approved", "reject": "rejected", "cancel": "cancelled",
               "deploy": "deployed"}
_aliases = itertools.count()


def _fresh_alias() -> str:
    # Deploys change the session's MLflow for good: each test points its own alias.
    return f"w{next(_aliases)}x{__import__('os').getpid()}"


def _request_for(world, action, scope, alias):
    """A request in the state the action needs (None for create)."""
    if action == "create":
        return None
    requester = world.requesters[scope] if action == "cancel" else world.users[f"{scope}-requester"]
    req = workflow.promotion_request_create(actor=requester, model_name=world.targets[scope].name, version=2,
                                            target_alias=alias, justification="matrix")
    if action == "deploy":
        workflow.promotion_request_approve(request_id=req.pk, actor=world.approvers[scope])
    return req


@pytest.mark.parametrize("interface", ["api", "page"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("action", list(WRITES))
def test_write_matrix(world, action, scope, role, interface):
    alias = _fresh_alias()
    req = _request_for(world, action, scope, alias)
    before_state = req and PromotionRequest.objects.get(pk=req.pk).state
    requests = PromotionRequest.objects.count()
    client = _client(world, role)
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    if action == "create":
        data = {"model": world.targets[scope].name, "version": 2, "target_alias": alias, "justification": "because"}
        if interface == "api":
            response = client.post(reverse("requests_api:request_list"), data, content_type="application/json")
        else:
            response = client.post(reverse("governance:request_create"), {**data, "target_kind": "alias"})
    elif interface == "api":
        response = client.post(reverse(f"requests_api:request_{action}", args=[req.pk]),
                               {"comment": "matrix comment"}, content_type="application/json")
    else:
        response = client.post(reverse(f"governance:request_{action}", args=[req.pk]), {"comment": "matrix comment"})
    events = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq").values_list("action", flat=True))
    expected = WRITES[action][scope][role]
    if expected == OK:
        assert response.status_code == ({"api": 201 if action == "create" else 200, "page": 302}[interface]), (
            response.content[:500])
        assert events == EVENTS[action]
        changed = req or PromotionRequest.objects.get(model_name=world.targets[scope].name, target_alias=alias)
        changed.refresh_from_db()
        assert changed.state == STATE_AFTER[action]
        if interface == "api":
            assert response.json()["state"] == STATE_AFTER[action]
        return
    if expected == "anon":
        expected = 401 if interface == "api" else 302
    assert response.status_code == expected, response.content[:500]
    if expected == 302:
        assert response["Location"].startswith(reverse("login"))
    elif interface == "api":
        assert "detail" in response.json()
    assert events == []
    assert PromotionRequest.objects.count() == requests
    if req:
        assert PromotionRequest.objects.get(pk=req.pk).state == before_state


# --------------------------------------------------------------------------------------------------
# A write from anyone who may not write changes nothing, whatever the URL
# --------------------------------------------------------------------------------------------------

READ_ONLY = ["anonymous", "outsider", "auditor", "scoped"]  # "scoped", on the open model out of its sight


# A person's own mail preferences, watches and API tokens are theirs to change, whatever their role (no
# request touched): tests/test_notify.py and tests/test_api_tokens.py cover them.
NOT_WRITES = {"login", "logout", "hooks:mlflow", "notify:profile", "notify:watch"}


@pytest.mark.parametrize("name", sorted(n for n in MATRIX if n not in NOT_WRITES and not n.startswith("tokens:")))
def test_a_write_by_someone_who_may_not_write_changes_nothing(world, name):
    url = _url(name, world.targets["open"])
    events = AuditEvent.objects.exclude(action__startswith="user.").count()  # signing in is an event
    requests = list(PromotionRequest.objects.order_by("pk").values_list("pk", "state"))
    # Valid input for every form, so a refusal is the permission check and not a form error.
    data = {"comment": "tries", "justification": "x", "model": world.targets["open"].name, "version": 2,
            "target_kind": "stage", "target_stage": "Production", "target": "alias:champion",
            "reason": "tries", "model_name": world.targets["open"].name}
    api = name.split(":")[0].endswith("_api") or name.startswith("api_docs:")
    attempts = [(role, "post") for role in READ_ONLY] + [("auditor", m) for m in ("put", "patch", "delete")]
    for role, method in attempts:
        if name == "audit:verify" and (role, method) == ("auditor", "post"):
            continue  # the auditor's one write: verifying the chain, itself audited (test_audit_report_page.py)
        client = _client(world, role)
        response = (client.post(url, data) if method == "post"
                    else getattr(client, method)(url, data, content_type="application/json"))
        allowed = {302} if role == "anonymous" and not api else set()
        allowed |= {401} if role == "anonymous" and api else set()
        assert response.status_code in allowed | {403, 404, 405}, (role, method, response.status_code)
        assert AuditEvent.objects.exclude(action__startswith="user.").count() == events, (role, method)
        assert list(PromotionRequest.objects.order_by("pk").values_list("pk", "state")) == requests, (role, method)
