"""Every URL name x every role (NetBox style): the status each role gets, and that an auditor's POST
changes nothing. A new URL fails `test_every_url_is_in_the_matrix` until it is added here."""

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from governance.audit.models import AuditEvent
from governance.workflow.models import PromotionRequest
from registry_ui.mirror.models import ModelAlias, ModelVersion, RegisteredModel, RunSnapshot
from tests.conftest import make_user

ROLES = ["anonymous", "outsider", "scientist", "engineer", "ops", "auditor", "admin"]
MODEL = "matrix model.v1 ü"

# Shorthands for the expected status per role, in ROLES order.
# A registry page: login redirect for anonymous; 403 ("ask an administrator") for a user with no role.
PAGE = (302, 403, 200, 200, 200, 200, 200)
SIGNED_IN = (302, 200, 200, 200, 200, 200, 200)
API = (403, 403, 200, 200, 200, 200, 200)  # session auth: anonymous is 403 (a token client gets 401)
POST_ONLY_PAGE = (302, 405, 405, 405, 405, 405, 405)
POST_ONLY_API = (403, 405, 405, 405, 405, 405, 405)

# url name -> (kwargs or callable(ctx) -> kwargs, query string, expected GET status per role)
MATRIX = {
    "home": ({}, "", SIGNED_IN),
    "login": ({}, "", (200, 200, 200, 200, 200, 200, 200)),
    "logout": ({}, "", (405, 405, 405, 405, 405, 405, 405)),
    "registry:catalogue": ({}, "", PAGE),
    "registry:model_detail": ({"name": MODEL}, "", PAGE),
    "registry:version_detail": ({"name": MODEL, "version": 1}, "", PAGE),
    "registry:lineage": ({"name": MODEL, "version": 1}, "", PAGE),
    "registry:compare": ({}, f"model={MODEL}&versions=1,2", PAGE),
    "registry:compare_csv": ({}, f"model={MODEL}&versions=1,2", PAGE),
    "compare_api:compare": ({}, f"model={MODEL}&versions=1,2", (403, 403, 200, 200, 200, 200, 200)),
    "registry_api:model_list": ({}, "", (403, 200, 200, 200, 200, 200, 200)),
    "registry_api:model_detail": ({"name": MODEL}, "", (403, 404, 200, 200, 200, 200, 200)),
    "registry_api:version_list": ({"name": MODEL}, "", (403, 404, 200, 200, 200, 200, 200)),
    "registry_api:version_detail": ({"name": MODEL, "version": 1}, "", (403, 404, 200, 200, 200, 200, 200)),
    "registry_api:sync_status": ({}, "", (403, 200, 200, 200, 200, 200, 200)),
    "hooks:mlflow": ({}, "", (405, 405, 405, 405, 405, 405, 405)),
    "governance:inbox": ({}, "", SIGNED_IN),
    "governance:request_list": ({}, "", SIGNED_IN),
    "governance:request_create": ({}, f"model={MODEL}&version=2", (302, 404, 200, 403, 403, 403, 200)),
    # rollback: data scientists and ops may ask to put the previous holder back
    "governance:request_rollback": ({}, f"model={MODEL}&target=alias:champion",
                                    (302, 404, 200, 403, 200, 403, 200)),
    "governance:request_detail": (lambda ctx: {"pk": ctx["request"].pk}, "", (302, 404, 200, 200, 200, 200, 200)),
    "governance:request_approve": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_PAGE),
    "governance:request_reject": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_PAGE),
    "governance:request_cancel": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_PAGE),
    "governance:request_deploy": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_PAGE),
    "requests_api:request_list": ({}, "", (403, 200, 200, 200, 200, 200, 200)),  # an outsider: empty list
    "requests_api:request_detail": (lambda ctx: {"pk": ctx["request"].pk}, "", (403, 404, 200, 200, 200, 200, 200)),
    "requests_api:request_approve": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_API),
    "requests_api:request_reject": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_API),
    "requests_api:request_cancel": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_API),
    "requests_api:request_deploy": (lambda ctx: {"pk": ctx["request"].pk}, "", POST_ONLY_API),
    # The trail: everyone signed in searches, exports and reports on the events of the models they may
    # see (auditors and admins: all of it); no checkpoint has been written in this world, hence 404.
    "audit:search": ({}, "", SIGNED_IN),
    "audit:export": ({}, "format=csv", SIGNED_IN),
    "audit:report_index": ({}, "", SIGNED_IN),
    "audit:model_report": ({"name": MODEL}, "", (302, 404, 200, 200, 200, 200, 200)),
    "audit:checkpoint_download": ({}, "", (302, 404, 404, 404, 404, 404, 404)),
    "audit_api:event_list": ({}, "", (403, 200, 200, 200, 200, 200, 200)),
    "audit_api:verify": ({}, "", (403, 403, 403, 403, 403, 200, 200)),
}


def _url_names(resolver=None, prefix="") -> set[str]:
    names = set()
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's admin checks is_staff itself
            names |= _url_names(entry, f"{prefix}{entry.namespace}:" if entry.namespace else prefix)
        elif isinstance(entry, URLPattern) and entry.name:
            names.add(prefix + entry.name)
    return names


def test_every_url_is_in_the_matrix():
    assert _url_names() == set(MATRIX)


@pytest.fixture
def world(db):
    users = {
        "outsider": make_user("m-outsider"),
        "scientist": make_user("m-scientist", "data_scientist"),
        "engineer": make_user("m-engineer", "ml_engineer"),
        "ops": make_user("m-ops", "ops"),
        "auditor": make_user("m-auditor", "auditor"),
        "admin": make_user("m-admin", staff=True),
    }
    model = RegisteredModel.objects.create(name=MODEL, description="matrix")
    for number, accuracy in ((1, 0.8), (2, 0.9)):
        run_id = f"run{number}"
        RunSnapshot.objects.create(run_id=run_id, params={"depth": number}, metrics={"val_accuracy": accuracy})
        ModelVersion.objects.create(model=model, version=number, run_id=run_id, status="READY",
                                    stage="Production" if number == 1 else "None",
                                    tags={"validation_status": "passed"})
    ModelAlias.objects.create(model=model, alias="champion", version=1)
    # A pending request as the service leaves one. Not made through the service: a request judges
    # evidence read from MLflow, and this mirror-only model is in no MLflow (the matrix is about URLs).
    request = PromotionRequest.objects.create(model=model, model_name=MODEL, version=2, target_stage="Staging",
                                              justification="matrix", requester=users["scientist"],
                                              requester_username=users["scientist"].get_username())
    return {"users": users, "request": request}


def _client(world, role) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(world["users"][role])
    return client


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_get_status_for_every_role(world, name):
    kwargs, query, expected = MATRIX[name]
    kwargs = kwargs(world) if callable(kwargs) else kwargs
    url = reverse(name, kwargs=kwargs) + (f"?{query}" if query else "")
    got = tuple(_client(world, role).get(url).status_code for role in ROLES)
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(ROLES, expected, strict=True))


@pytest.mark.parametrize("name", sorted(n for n in MATRIX if n not in {"login", "logout", "hooks:mlflow"}))
def test_an_auditor_post_changes_nothing(world, name):
    kwargs, query, _ = MATRIX[name]
    kwargs = kwargs(world) if callable(kwargs) else kwargs
    url = reverse(name, kwargs=kwargs) + (f"?{query}" if query else "")
    client = _client(world, "auditor")
    events = AuditEvent.objects.exclude(action__startswith="user.").count()
    requests = list(PromotionRequest.objects.values_list("pk", "state"))
    # Valid input for every form, so a refusal is the permission check and not a form error.
    response = client.post(url, {"comment": "auditor tries", "justification": "x", "model": MODEL, "version": 2,
                                 "target_kind": "stage", "target_stage": "Production", "target": "alias:champion"})
    assert response.status_code in {403, 404, 405}, response.status_code
    assert AuditEvent.objects.exclude(action__startswith="user.").count() == events
    assert list(PromotionRequest.objects.values_list("pk", "state")) == requests
