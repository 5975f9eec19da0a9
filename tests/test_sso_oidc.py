"""Single sign-on against a REAL OpenID Connect provider: tests/oidc_provider/ (django-oauth-toolkit) runs
as a second process with an RS256 key generated here; a requests session signs in through it (PKCE,
authorization code, ID token checked against the provider's JWKS, userinfo) and lands in the console
with the role its IdP group maps to (OIDC_GROUP_ROLE_MAP)."""

import os
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import override_settings

from benchmarks.servers import free_port
from governance.access import ensure_role_permissions, user_roles
from governance.audit.models import AuditEvent
from governance.tokens.services import api_token_create
from tests.fixtures_tasks import wait_until

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID, CLIENT_SECRET = "console", secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    port = free_port()
    idp_db = tmp_path_factory.mktemp("idp") / "idp.sqlite3"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
           "IDP_SECRET_KEY": secrets.token_urlsafe(32), "IDP_RSA_PRIVATE_KEY": key,
           "IDP_DB": str(idp_db), "IDP_PORT": str(port),
           "IDP_CLIENT_ID": CLIENT_ID, "IDP_CLIENT_SECRET": CLIENT_SECRET,
           "IDP_REDIRECT_URI": f"{live_server.url}/oidc/callback/",
           "IDP_USERS": "erin:idp-pass-1:idp-approvers|unrelated,sam:idp-pass-2:idp-scientists,"
                        "nobody:idp-pass-3:,breakglass:idp-pass-4:idp-approvers,"
                        "riley:idp-pass-5:idp-approvers,gale:idp-pass-6:idp-approvers"}
    proc = subprocess.Popen([sys.executable, "tests/oidc_provider/serve.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", line + (proc.stdout.read() if proc.poll() is not None else "")
        base = f"http://127.0.0.1:{port}"
        yield {"base": base, "db": idp_db, "settings": {
            "OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{base}/o/authorize/", "OIDC_OP_TOKEN_ENDPOINT": f"{base}/o/token/",
            "OIDC_OP_USER_ENDPOINT": f"{base}/o/userinfo/", "OIDC_OP_JWKS_ENDPOINT": f"{base}/o/.well-known/jwks.json",
        }}
    finally:
        proc.kill()
        proc.wait(timeout=10)


def sign_in(live_server, username: str, password: str, session: requests.Session | None = None) -> requests.Response:
    """The browser's walk: console -> IdP login page -> IdP authorize -> console callback -> home."""
    session = session or requests.Session()
    login_page = session.get(f"{live_server.url}/oidc/authenticate/", timeout=30)
    assert login_page.status_code == 200 and "Test identity provider" in login_page.text, login_page.url
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    next_url = re.search(r'name="next" value="([^"]+)"', login_page.text).group(1).replace("&amp;", "&")
    return session.post(login_page.url, data={"csrfmiddlewaretoken": csrf, "username": username,
                                              "password": password, "next": next_url},
                        headers={"Referer": login_page.url}, timeout=30)


@pytest.mark.django_db(transaction=True)
def test_sign_in_through_the_identity_provider_lands_with_the_mapped_role(live_server, oidc_provider):
    ensure_role_permissions()
    User = get_user_model()
    User.objects.create_user("breakglass", password="local-password")  # a local account of the same name
    with override_settings(**oidc_provider["settings"]):
        landed = sign_in(live_server, "erin", "idp-pass-1")
        assert landed.status_code == 200 and landed.url == f"{live_server.url}/", landed.url
        erin = User.objects.get(username="erin")
        assert user_roles(erin) == ["ml_engineer"] and not erin.has_usable_password()
        assert erin.email == "erin@idp.example"
        # the console knows who signed in: the home page greets the user
        assert "erin" in landed.text

        sam = sign_in(live_server, "sam", "idp-pass-2")
        assert sam.url == f"{live_server.url}/"
        assert user_roles(User.objects.get(username="sam")) == ["data_scientist"]

        # a group the map does not name gives no role; the account exists and sees nothing
        sign_in(live_server, "nobody", "idp-pass-3")
        assert user_roles(User.objects.get(username="nobody")) == []

        # an IdP identity never takes over a local account (break-glass admins stay local)
        refused = sign_in(live_server, "breakglass", "idp-pass-4")
        assert refused.url == f"{live_server.url}/accounts/login/?sso=failed"
        assert "Single sign-on did not" in refused.text
        assert user_roles(User.objects.get(username="breakglass")) == []

    wait_until(lambda: AuditEvent.objects.filter(action="group.member_added").count() == 2, timeout=5,
               what="the role grants to be audited")
    added = list(AuditEvent.objects.filter(action="group.member_added").order_by("seq"))
    assert [(e.actor_username, e.after["user"], e.after["group"]) for e in added] == [
        ("system:oidc", "erin", "ml_engineer"), ("system:oidc", "sam", "data_scientist")]
    assert AuditEvent.objects.filter(action="user.created", actor_username="system:oidc").count() == 3


# --- Renewal: the IdP is asked again (prompt=none) once OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS have passed ---


def at_provider(oidc_provider, sql: str, *params) -> None:
    """Change the IdP's own records (its SQLite file; the provider process reads them per request)."""
    with sqlite3.connect(oidc_provider["db"]) as db:
        db.execute(sql, params)


def make_renewal_due(http: requests.Session) -> None:
    """As if the renewal interval had passed: the session's renewal time (set at sign-in) into the past."""
    store = SessionStore(session_key=http.cookies[settings.SESSION_COOKIE_NAME])
    assert store["oidc_id_token_expiration"] > time.time()
    store["oidc_id_token_expiration"] = time.time() - 1
    store.save()


def signed_in(live_server, username: str, password: str) -> requests.Session:
    http = requests.Session()
    landed = sign_in(live_server, username, password, http)
    assert landed.url == f"{live_server.url}/", landed.url
    return http


@pytest.mark.django_db(transaction=True)
def test_a_user_deactivated_at_the_provider_is_signed_out_at_the_next_renewal(live_server, oidc_provider):
    ensure_role_permissions()
    with override_settings(**oidc_provider["settings"]):
        http = signed_in(live_server, "riley", "idp-pass-5")
        at_provider(oidc_provider, "UPDATE auth_user SET is_active = 0 WHERE username = ?", "riley")
        # before the interval has passed the console does not ask: the session goes on
        assert http.get(f"{live_server.url}/", allow_redirects=False, timeout=30).status_code == 200

        make_renewal_due(http)
        renewal = http.get(f"{live_server.url}/", timeout=30)
        # console -> IdP (prompt=none) -> console's callback with error=login_required -> signed out
        assert [r.status_code for r in renewal.history] == [302, 302, 302], [r.url for r in renewal.history]
        assert "prompt=none" in renewal.history[0].headers["Location"]
        assert "error=login_required" in renewal.history[1].headers["Location"]
        assert renewal.url == f"{live_server.url}/accounts/login/?sso=failed"

        again = http.get(f"{live_server.url}/", allow_redirects=False, timeout=30)
        assert again.status_code == 302 and again.headers["Location"].startswith("/accounts/login/")
    logout = AuditEvent.objects.get(action="user.logout")
    assert logout.actor_username == "riley"
    assert logout.comment == "the identity provider refused to renew the session (login_required)"


@pytest.mark.django_db(transaction=True)
def test_a_group_changed_at_the_provider_changes_the_role_at_the_next_renewal(live_server, oidc_provider):
    ensure_role_permissions()
    User = get_user_model()
    with override_settings(**oidc_provider["settings"]):
        http = signed_in(live_server, "gale", "idp-pass-6")
        assert user_roles(User.objects.get(username="gale")) == ["ml_engineer"]
        at_provider(oidc_provider, "DELETE FROM auth_user_groups WHERE user_id = "
                    "(SELECT id FROM auth_user WHERE username = ?)", "gale")
        at_provider(oidc_provider, "INSERT OR IGNORE INTO auth_group (name) VALUES ('idp-scientists')")
        at_provider(oidc_provider, "INSERT INTO auth_user_groups (user_id, group_id) SELECT u.id, g.id "
                    "FROM auth_user u, auth_group g WHERE u.username = ? AND g.name = 'idp-scientists'", "gale")

        make_renewal_due(http)
        renewed = http.get(f"{live_server.url}/?page=after-renewal", timeout=30)
        # silent: the user lands on the page asked for, still signed in, the renewal pushed forward
        assert renewed.status_code == 200 and renewed.url == f"{live_server.url}/?page=after-renewal"
        assert len(renewed.history) == 3 and "gale" in renewed.text
        store = SessionStore(session_key=http.cookies[settings.SESSION_COOKIE_NAME])
        assert store["oidc_id_token_expiration"] > time.time() + 60

        # deactivated in the console (by an admin here): the session ends at once, no renewal needed
        User.objects.filter(username="gale").update(is_active=False)
        after = http.get(f"{live_server.url}/", allow_redirects=False, timeout=30)
        assert after.status_code == 302 and after.headers["Location"].startswith("/accounts/login/")
    assert user_roles(User.objects.get(username="gale")) == ["data_scientist"]
    changes = [(e.actor_username, e.action, (e.after or e.before)["group"])
               for e in AuditEvent.objects.filter(action__startswith="group.member_").order_by("seq")]
    assert changes == [("system:oidc", "group.member_added", "ml_engineer"),
                       ("system:oidc", "group.member_added", "data_scientist"),
                       ("system:oidc", "group.member_removed", "ml_engineer")]
    # a renewal is not a new sign-in, and signs nobody out
    assert AuditEvent.objects.filter(action="user.login").count() == 1
    assert not AuditEvent.objects.filter(action="user.logout").exists()


@pytest.mark.django_db(transaction=True)
def test_api_probes_htmx_and_local_sessions_are_never_sent_to_the_provider(live_server, oidc_provider):
    ensure_role_permissions()
    User = get_user_model()
    with override_settings(**oidc_provider["settings"]):
        http = signed_in(live_server, "erin", "idp-pass-1")
        _token, secret = api_token_create(actor=User.objects.get(username="erin"), name="ci", scope="read")
        make_renewal_due(http)
        url = live_server.url
        # the API (token, and the browser's session cookie alongside), probes, static files, a fragment poll
        for path, headers in [("/api/v1/models/", {"Authorization": f"Token {secret}"}),
                              ("/api/v1/models/", {}), ("/healthz", {}), ("/favicon.ico", {}),
                              ("/", {"HX-Request": "true"})]:
            response = http.get(url + path, headers=headers, allow_redirects=False, timeout=30)
            assert response.status_code == 200, (path, headers, response.status_code, response.headers)
        # the token alone, no session at all
        bare = requests.get(f"{url}/api/v1/models/", headers={"Authorization": f"Token {secret}"},
                            allow_redirects=False, timeout=30)
        assert bare.status_code == 200
        # the page GET after them is the one that renews
        page = http.get(f"{url}/", allow_redirects=False, timeout=30)
        assert page.status_code == 302 and page.headers["Location"].startswith(f"{oidc_provider['base']}/o/authorize/")

        # a local account (demo user, break-glass admin) signed in with its password: never renewed
        User.objects.create_user("local-admin", password="local-password-1")
        local = requests.Session()
        form = local.get(f"{url}/accounts/login/", timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        signed = local.post(f"{url}/accounts/login/", data={"csrfmiddlewaretoken": csrf, "username": "local-admin",
                                                            "password": "local-password-1"},
                            headers={"Referer": form.url}, timeout=30)
        assert signed.url == f"{url}/", signed.url
        store = SessionStore(session_key=local.cookies[settings.SESSION_COOKIE_NAME])
        assert "oidc_id_token_expiration" not in store  # due, were it looked at
        assert local.get(f"{url}/", allow_redirects=False, timeout=30).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_write_while_the_renewal_is_due_is_refused_until_a_page_load_renews(live_server, oidc_provider):
    """A form opened before the person was removed at the IdP must not be able to change anything after
    the renewal fell due: the POST is refused (nothing changed), the page load renews, then it goes."""
    from governance.tokens.models import ApiToken

    ensure_role_permissions()
    with override_settings(**oidc_provider["settings"]):
        http = signed_in(live_server, "erin", "idp-pass-1")
        form_url, post_url = f"{live_server.url}/account/tokens/", f"{live_server.url}/account/tokens/new/"
        form = http.get(form_url, timeout=30)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        data = {"csrfmiddlewaretoken": csrf, "name": "ci-nightly", "scope": "read", "ttl_days": "30"}

        make_renewal_due(http)
        refused = http.post(post_url, data=data, headers={"Referer": form_url}, allow_redirects=False, timeout=30)
        assert refused.status_code == 403 and "Nothing was changed" in refused.text
        assert f'href="{form_url}"' in refused.text  # the way back renews the session
        api = http.post(f"{live_server.url}/api/v1/requests/", json={}, allow_redirects=False, timeout=30,
                        headers={"X-CSRFToken": csrf, "Referer": form_url})
        assert api.status_code == 403 and api.json()["code"] == "sso_renewal_required"
        assert not ApiToken.objects.exists()

        renewed = http.get(form_url, timeout=30)
        assert renewed.status_code == 200 and len(renewed.history) == 3  # console -> IdP -> callback -> form
        created = http.post(post_url, data=data, headers={"Referer": form_url}, timeout=30)
        assert created.status_code == 201 and ApiToken.objects.filter(name="ci-nightly").count() == 1
