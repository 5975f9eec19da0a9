"""The API's contract: the OpenAPI schema (valid, every endpoint in it, docs served locally), one error
shape for every status, per-token throttling, no traceback in a 500, the long-poll, and policies."""

import re

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.tokens.services import api_token_create
from governance.workflow import services as workflow
from governance.workflow.models import ModelPolicy
from registry_ui.mirror.models import RegisteredModel

pytestmark = pytest.mark.django_db

ERROR_KEYS = {"detail", "code", "fields"}


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert "/api/v1/requests/{id}/deploy/" in text and "tokenAuth" in text


def test_every_api_url_is_in_the_schema(client):
    from tests.test_url_matrix import _url_names

    schema = client.get(reverse("api_docs:schema"), HTTP_ACCEPT="application/json").json()
    paths = {re.sub(r"\{[^}]+\}", "X", p) for p in schema["paths"]}
    api_names = {n for n in _url_names() if n.split(":")[0].endswith("_api")}
    # every concrete API path answers to a schema path
    concrete = ["/api/v1/models/", "/api/v1/models/X/", "/api/v1/models/X/versions/", "/api/v1/models/X/versions/X/",
                "/api/v1/sync/status/", "/api/v1/compare/", "/api/v1/requests/", "/api/v1/requests/X/",
                "/api/v1/requests/X/approve/", "/api/v1/requests/X/reject/", "/api/v1/requests/X/cancel/",
                "/api/v1/requests/X/deploy/", "/api/v1/audit/", "/api/v1/audit/verify/", "/api/v1/policies/X/",
                "/api/v1/requests/break-glass/", "/api/v1/requests/held-at/", "/api/v1/requests/X/review/",
                "/api/v1/events/", "/api/v1/risk/tiers/", "/api/v1/risk/tiers/X/", "/api/v1/risk/tier-changes/",
                "/api/v1/risk/tier-changes/X/approve/", "/api/v1/risk/tier-changes/X/reject/",
                "/api/v1/risk/findings/", "/api/v1/risk/findings/X/", "/api/v1/risk/findings/X/propose-closure/",
                "/api/v1/risk/findings/X/accept-closure/", "/api/v1/risk/findings/X/decline-closure/"]
    assert set(concrete) == paths
    assert len(api_names) == len(concrete)  # one URL name per path: a new API URL must be added here too
    for path in schema["paths"].values():
        for op in path.values():
            assert {"401", "403", "429"} <= set(op["responses"]), op["operationId"]
            assert any(c.get("examples") for r in op["responses"].values()
                       for c in r.get("content", {}).values()), op["operationId"]


def test_docs_are_served_locally_under_the_csp(client):
    for name in ("api_docs:swagger", "api_docs:redoc"):
        response = client.get(reverse(name))
        body = response.content.decode()
        assert response.status_code == 200
        assert "https://" not in body and "<script>" not in body, name  # no CDN, no inline script
        for src in re.findall(r'src="([^"]+)"', body):
            assert src.startswith("/"), src
            assert client.get(src).status_code == 200, src
        csp = response["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "worker-src 'self' blob:" in csp


def test_errors_have_one_shape(client, scientist, auditor):
    anonymous = APIClient().get("/api/v1/models/")
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    api = APIClient()
    api.force_authenticate(scientist)
    cases = {
        401: anonymous,
        400: api.get("/api/v1/models/", {"stage": "Prod"}),
        403: api.get("/api/v1/audit/verify/"),
        404: api.get("/api/v1/models/nope/"),
        405: api.delete("/api/v1/models/"),
    }
    for status, response in cases.items():
        assert response.status_code == status
        assert set(response.json()) == ERROR_KEYS, (status, response.json())
    assert cases[400].json()["fields"] == {"stage": ["stage must be one of None, Staging, Production, Archived"]}
    assert cases[404].json()["code"] == "not_found" and cases[403].json()["code"] == "permission_denied"


@pytest.mark.mlflow
def test_conflict_is_409_in_the_shape(promo, scientist, ops_user):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="a")
    api = APIClient()
    api.force_authenticate(ops_user)
    response = api.post(f"/api/v1/requests/{req.pk}/deploy/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "transition_not_allowed" and set(response.json()) == ERROR_KEYS


def test_throttled_per_token_with_retry_after(auditor, settings):
    cache.clear()
    _t, first = api_token_create(actor=auditor, name="a", scope="read")
    _t, second = api_token_create(actor=auditor, name="b", scope="read")
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "token": "2/min"}
    from governance.tokens.auth import TokenRateThrottle

    TokenRateThrottle.THROTTLE_RATES = rates  # DRF reads the rates once, at import
    try:
        a, b = APIClient(), APIClient()
        a.credentials(HTTP_AUTHORIZATION=f"Token {first}")
        b.credentials(HTTP_AUTHORIZATION=f"Token {second}")
        assert [a.get("/api/v1/sync/status/").status_code for _ in range(3)] == [200, 200, 429]
        throttled = a.get("/api/v1/sync/status/")
        assert throttled.json()["code"] == "throttled" and int(throttled["Retry-After"]) > 0
        assert b.get("/api/v1/sync/status/").status_code == 200  # another token, its own budget
    finally:
        TokenRateThrottle.THROTTLE_RATES = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        cache.clear()


def test_a_500_leaks_nothing(scientist, monkeypatch):
    from registry_ui.api import selectors

    def boom(**kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(selectors, "model_search", boom)
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(scientist)
    with override_settings(DEBUG=True):
        response = api.get("/api/v1/models/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "code": "server_error", "fields": {}}


@pytest.mark.mlflow
def test_wait_returns_the_request_once_settled_or_after_the_bound(promo, scientist, engineer):
    req = workflow.promotion_request_create(actor=scientist, model_name=promo.name, version=2,
                                            target_alias="champion", justification="a")
    api = APIClient()
    api.force_authenticate(scientist)
    still = api.get(f"/api/v1/requests/{req.pk}/", {"wait": 1})
    assert still.status_code == 200 and still.json()["state"] == "pending"
    workflow.promotion_request_approve(request_id=req.pk, actor=engineer)
    done = api.get(f"/api/v1/requests/{req.pk}/", {"wait": 30, "while": "pending"})
    assert done.json()["state"] == "approved"
    too_long = api.get(f"/api/v1/requests/{req.pk}/", {"wait": 3600})
    assert too_long.status_code == 400 and "wait" in too_long.json()["fields"]


@pytest.mark.mlflow
def test_policies_read_and_changed_through_the_api_are_audited(promo, scientist, admin_user):
    model = RegisteredModel.objects.get(name=promo.name)
    url = f"/api/v1/policies/{promo.name}/"
    api = APIClient()
    api.force_authenticate(scientist)
    read = api.get(url).json()
    assert read["policy"] is None and "quorum" in read["effective"]
    assert api.patch(url, {"production_quorum": 2}, format="json").status_code == 403
    admin = APIClient()
    admin.force_authenticate(admin_user)
    changed = admin.patch(url, {"production_quorum": 2, "required_tags": {"validation_status": "passed"}},
                          format="json")
    assert changed.status_code == 200 and changed.json()["effective"]["quorum"] == 2
    assert ModelPolicy.objects.get(model=model).production_quorum == 2
    event = AuditEvent.objects.filter(action="policy.created").get()
    assert event.after["production_quorum"] == 2 and event.actor_username == admin_user.username
    bad = admin.patch(url, {"production_quorum": -1}, format="json")
    assert bad.status_code == 400 and "production_quorum" in bad.json()["fields"]
    assert admin.delete(url).json()["policy"] is None
    assert AuditEvent.objects.filter(action="policy.deleted").count() == 1
