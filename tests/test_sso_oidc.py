"""Single sign-on against a REAL OpenID Connect provider: tests/oidc_provider/ (django-oauth-toolkit) runs
as a second process with an RS256 key generated here; a requests session signs in through it (PKCE,
authorization code, ID token checked against the provider's JWKS, userinfo) and lands in the console
with the role its IdP group maps to (OIDC_GROUP_ROLE_MAP)."""

import os
import re
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.test import override_settings

from governance.access import ensure_role_permissions, user_roles
from governance.audit.models import AuditEvent
from tests.fixtures_tasks import wait_until

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID, CLIENT_SECRET = "console", secrets.token_urlsafe(24)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def oidc_provider(live_server, tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    port = _free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
           "IDP_SECRET_KEY": secrets.token_urlsafe(32), "IDP_RSA_PRIVATE_KEY": key,
           "IDP_DB": str(tmp_path_factory.mktemp("idp") / "idp.sqlite3"), "IDP_PORT": str(port),
           "IDP_CLIENT_ID": CLIENT_ID, "IDP_CLIENT_SECRET": CLIENT_SECRET,
           "IDP_REDIRECT_URI": f"{live_server.url}/oidc/callback/",
           "IDP_USERS": "erin:idp-pass-1:idp-approvers|unrelated,sam:idp-pass-2:idp-scientists,"
                        "nobody:idp-pass-3:,breakglass:idp-pass-4:idp-approvers"}
    proc = subprocess.Popen([sys.executable, "tests/oidc_provider/serve.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", line + (proc.stdout.read() if proc.poll() is not None else "")
        base = f"http://127.0.0.1:{port}"
        yield {"base": base, "settings": {
            "OIDC_RP_CLIENT_ID": CLIENT_ID, "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{base}/o/authorize/", "OIDC_OP_TOKEN_ENDPOINT": f"{base}/o/token/",
            "OIDC_OP_USER_ENDPOINT": f"{base}/o/userinfo/", "OIDC_OP_JWKS_ENDPOINT": f"{base}/o/.well-known/jwks.json",
        }}
    finally:
        proc.kill()
        proc.wait(timeout=10)


def sign_in(live_server, username: str, password: str) -> requests.Response:
    """The browser's walk: console -> IdP login page -> IdP authorize -> console callback -> home."""
    session = requests.Session()
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
