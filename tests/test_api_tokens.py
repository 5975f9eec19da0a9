"""API tokens (django-rest-knox, extended): stored only as a digest, expire, die with their user at once,
scoped, audited when issued and revoked, managed on the Tokens page."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from governance.audit.models import AuditEvent
from governance.grants import user_activation_set, user_delete
from governance.tokens.models import ApiToken
from governance.tokens.services import api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"


def token_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_the_secret_is_not_stored_only_its_digest(auditor):
    token, secret = api_token_create(actor=auditor, name="ci", scope="read")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiToken._meta.db_table}")
        rows = [" ".join(str(v) for v in row) for row in cursor.fetchall()]
    assert len(rows) == 1 and secret not in rows[0]
    assert secret[:15] in rows[0]  # the lookup prefix only (15 of 64 characters)
    assert len(token.digest) == 128 and token.digest != secret  # SHA-512 hex
    assert token_client(secret).get(MODELS).status_code == 200


def test_an_expired_token_is_refused(auditor):
    token, secret = api_token_create(actor=auditor, name="short", scope="read", ttl_days=1)
    assert token.expiry - timezone.now() <= timedelta(days=1)
    ApiToken.objects.filter(digest=token.digest).update(expiry=timezone.now() - timedelta(seconds=1))
    response = token_client(secret).get(MODELS)
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


def test_a_deactivated_users_tokens_stop_at_once(auditor, admin_user):
    _token, secret = api_token_create(actor=auditor, name="ci", scope="read")
    client = token_client(secret)
    assert client.get(MODELS).status_code == 200
    user_activation_set(actor=admin_user, user=auditor, active=False)
    assert client.get(MODELS).status_code == 401
    user_delete(actor=admin_user, user=auditor)
    assert client.get(MODELS).status_code == 401 and not ApiToken.objects.exists()


@pytest.mark.mlflow
def test_scope_is_enforced(client, promo, scientist, engineer, ops_user):
    _t, read = api_token_create(actor=scientist, name="r", scope="read")
    _t, request_scope = api_token_create(actor=scientist, name="q", scope="request")
    body = {"model": promo.name, "version": 2, "target_alias": "champion", "justification": "CI"}
    refused = token_client(read).post("/api/v1/requests/", body, format="json")
    assert refused.status_code == 403 and "scope 'request'" in refused.json()["detail"]
    created = token_client(request_scope).post("/api/v1/requests/", body, format="json")
    assert created.status_code == 201, created.json()
    rid = created.json()["id"]
    _t, eng_deploy = api_token_create(actor=engineer, name="d", scope="deploy")
    # approving is a person's decision: only a "full" token (or a session) may do it
    assert token_client(eng_deploy).post(f"/api/v1/requests/{rid}/approve/", {}, format="json").status_code == 403
    _t, eng_full = api_token_create(actor=engineer, name="f", scope="full")
    assert token_client(eng_full).post(f"/api/v1/requests/{rid}/approve/", {}, format="json").status_code == 200
    _t, ops_request = api_token_create(actor=ops_user, name="q", scope="request")
    assert token_client(ops_request).post(f"/api/v1/requests/{rid}/deploy/", {}, format="json").status_code == 403
    _t, ops_deploy = api_token_create(actor=ops_user, name="d", scope="deploy")
    deployed = token_client(ops_deploy).post(f"/api/v1/requests/{rid}/deploy/", {}, format="json")
    assert deployed.status_code == 200 and deployed.json()["state"] == "deployed"
    assert ApiToken.objects.filter(user=ops_user, last_used_at__isnull=False).count() == 2


def test_issue_and_revoke_are_audited_without_the_secret(auditor):
    token, secret = api_token_create(actor=auditor, name="nightly", scope="read", source_ip="10.0.0.1")
    api_token_revoke(actor=auditor, token_key=token.token_key)
    events = list(AuditEvent.objects.filter(action__startswith="token.").order_by("seq"))
    assert [e.action for e in events] == ["token.issued", "token.revoked"]
    assert events[0].after["name"] == "nightly" and events[0].after["scope"] == "read"
    assert all(secret not in str(e.before) + str(e.after) + e.comment for e in events)
    assert token_client(secret).get(MODELS).status_code == 401


def test_nobody_revokes_someone_elses_token(auditor, scientist):
    token, secret = api_token_create(actor=auditor, name="mine", scope="read")
    from governance.errors import NotFound

    with pytest.raises(NotFound):
        api_token_revoke(actor=scientist, token_key=token.token_key)
    assert token_client(secret).get(MODELS).status_code == 200


def test_tokens_page_shows_the_secret_once_and_revokes(client, scientist):
    client.force_login(scientist)
    page = client.get(reverse("tokens:token_list"))
    assert page.status_code == 200 and "No tokens." in page.content.decode()
    created = client.post(reverse("tokens:token_create"), {"name": "ci-train", "scope": "request", "ttl_days": 30})
    assert created.status_code == 201 and created["Cache-Control"].startswith("max-age=0")
    secret = created.content.decode().split('id="token-secret">')[1].split("<")[0]
    assert len(secret) == 64 and token_client(secret).get(MODELS).status_code == 200
    again = client.get(reverse("tokens:token_list")).content.decode()
    assert "ci-train" in again and secret not in again
    bad = client.post(reverse("tokens:token_create"), {"name": "", "scope": "root", "ttl_days": 0})
    assert bad.status_code == 400 and ApiToken.objects.count() == 1
    token = ApiToken.objects.get()
    revoked = client.post(reverse("tokens:token_revoke", args=[token.token_key]))
    assert revoked.status_code == 302 and not ApiToken.objects.exists()
    assert token_client(secret).get(MODELS).status_code == 401
