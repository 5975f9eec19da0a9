"""Settings of the test suite: the project's own, with cheap password hashing.

PBKDF2 at full strength costs about a second per user on a busy 2-core machine, and the role
fixtures create several users per test; what those tests check is permissions, not hashing. The
project itself keeps Django's default hashers: `real_password_hashers` (tests/conftest.py) puts them
back for the test that proves a real PBKDF2 hash still signs in.
"""

import os

from django.conf import global_settings

from registry_ui.settings import *  # noqa: F403

# What the project runs with (it does not set PASSWORD_HASHERS, so Django's defaults).
PROJECT_PASSWORD_HASHERS = list(global_settings.PASSWORD_HASHERS)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Single sign-on on, pointed at nothing until tests/test_sso_oidc.py starts a real provider: the OIDC URLs
# exist (the URL matrix covers them) and the backend is installed.
OIDC_RP_CLIENT_ID = "console-test"
OIDC_ENABLED = True
OIDC_RP_CLIENT_SECRET = "test-secret-not-used-in-production"
OIDC_OP_AUTHORIZATION_ENDPOINT = "http://127.0.0.1:9/o/authorize/"
OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/o/token/"
OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/o/userinfo/"
OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/o/.well-known/jwks.json"
OIDC_GROUP_ROLE_MAP = {"idp-approvers": "ml_engineer", "idp-scientists": "data_scientist"}
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "governance.sso.RoleMappingOIDCBackend"]  # noqa: F405
MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405
MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "governance.sso.SessionRenewal")

# Static files straight from static/ (finders), never from a STATIC_ROOT a `make demo` in this
# checkout collected: its manifest would give hashed names the test server's finders do not know.
STATIC_ROOT = VAR_DIR / "test-static"  # noqa: F405 - from the project's settings
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True

# A second alias, "replica", reading the test database (a TEST MIRROR, as with DATABASE_REPLICA_URL set):
# tests/test_replica.py turns the router on over it. Without the router nothing reads through it.
if "replica" not in DATABASES:  # noqa: F405
    DATABASES["replica"] = {**DATABASES["default"], "TEST": {"MIRROR": "default"}}  # noqa: F405
# Web heartbeats would add a query to the first request of a test every 30 s (query-count tests): off
# unless a test, or a child process's environment, turns them on.
WEB_HEARTBEAT_INTERVAL = int(os.environ.get("WEB_HEARTBEAT_INTERVAL", "0"))
