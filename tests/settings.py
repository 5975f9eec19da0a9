"""Settings of the test suite: the project's own, with cheap password hashing.

PBKDF2 at full strength costs about a second per user on a busy 2-core machine, and the role
fixtures create several users per test; what those tests check is permissions, not hashing. The
project itself keeps Django's default hashers: `real_password_hashers` (tests/conftest.py) puts them
back for the test that proves a real PBKDF2 hash still signs in.
"""

from django.conf import global_settings

from registry_ui.settings import *  # noqa: F403

# What the project runs with (it does not set PASSWORD_HASHERS, so Django's defaults).
PROJECT_PASSWORD_HASHERS = list(global_settings.PASSWORD_HASHERS)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Static files straight from static/ (finders), never from a STATIC_ROOT a `make demo` in this
# checkout collected: its manifest would give hashed names the test server's finders do not know.
STATIC_ROOT = VAR_DIR / "test-static"  # noqa: F405 - from the project's settings
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
