"""Settings for the Model Governance Console.

Everything that differs between a laptop and production comes from the environment (see README,
"Configuration"). Nothing secret lives in this file.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MGC_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)
# Production behind TLS: DJANGO_HTTPS=1 turns on HTTPS-only cookies, HSTS and the SSL redirect, and
# demands a real DJANGO_SECRET_KEY. Off by default so the embedded demo works on http://127.0.0.1.
HTTPS = env_bool("DJANGO_HTTPS", False)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    if HTTPS:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_HTTPS is on (production).")
    # Local use: a random key kept in var/ (git-ignored), so sessions survive a restart.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "guardian",
    "axes",
    "csp",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "registry_ui",
    "governance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # django-axes must come last: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "registry_ui.urls"
WSGI_APPLICATION = "registry_ui.wsgi.application"
ASGI_APPLICATION = "registry_ui.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "registry_ui.context_processors.console",
                "governance.access.roles_context",
            ],
            # Template tag libraries live beside the pages that use them, not in templatetags/ folders.
            "libraries": {
                "registry_pages": "registry_ui.pages.templatetags",
                "audit_tags": "governance.audit.templatetags",
            },
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'console.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue (busy timeout) instead of
    # failing with "database is locked" when a read transaction tries to upgrade to a write.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_console.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# django-axes: lock a username+IP pair out after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Reverse proxies in front of the console that append to X-Forwarded-For (0: trust no header).
# registry_ui.client_ip reads it; audit events and the login lockout both use that one function.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", os.environ.get("AXES_PROXY_COUNT", "0")))
AXES_CLIENT_IP_CALLABLE = "registry_ui.client_ip.client_ip"

# django-guardian: no anonymous user object; object permissions are only for signed-in users.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

# --- Security headers -----------------------------------------------------------------------------
# Strict script policy: scripts only from our own origin, never inline; page data reaches JavaScript
# through json_script (a non-executable <script type="application/json">). plotly injects <style>
# elements, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = int(os.environ.get("DJANGO_SESSION_AGE", str(8 * 3600)))
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("DJANGO_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Static files ---------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names + gzip/brotli copies (registry_ui/staticfiles.py); `manage.py demo` runs collectstatic.
    "staticfiles": {"BACKEND": "registry_ui.staticfiles.ConsoleStaticFilesStorage"},
}
# Serve straight from static/ when no collectstatic has run (tests, first demo start).
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", not (STATIC_ROOT / "staticfiles.json").exists())

# --- Internationalisation -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# --- MLflow ---------------------------------------------------------------------------------------
MLFLOW_TRACKING_URI = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{VAR_DIR / 'mlflow.db'}")
# Artifacts of the embedded store (the demo's trained models) stay under var/ as well.
MLFLOW_ARTIFACT_ROOT = os.environ.get("MLFLOW_ARTIFACT_ROOT", (VAR_DIR / "mlartifacts").as_uri())
# Budgets for talking to MLflow: a web request waits briefly; the background sync may wait longer.
MLFLOW_WEB_TIMEOUT = float(os.environ.get("MLFLOW_WEB_TIMEOUT", "5"))
MLFLOW_WEB_RETRIES = int(os.environ.get("MLFLOW_WEB_RETRIES", "1"))
MLFLOW_SYNC_TIMEOUT = float(os.environ.get("MLFLOW_SYNC_TIMEOUT", "60"))
MLFLOW_SYNC_RETRIES = int(os.environ.get("MLFLOW_SYNC_RETRIES", "3"))
MLFLOW_WEBHOOK_SECRET = os.environ.get("MLFLOW_WEBHOOK_SECRET", "")

# --- Logging --------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}

# --- Wiring governance into the registry pages (see registry_ui/extensions.py) --------------------
REGISTRY_VISIBILITY = "governance.access.visible_models"
REGISTRY_PANEL_PROVIDERS = ["governance.workflow.panels.workflow_panels", "governance.audit.panels.timeline_panels"]
REGISTRY_CATALOGUE_ANNOTATOR = "governance.workflow.panels.catalogue_annotations"

# --- Sync -----------------------------------------------------------------------------------------
# Called with the part of a SyncReport each sync transaction wrote (a page, a deletion batch, a targeted
# model), inside that transaction: governance classifies stage/alias changes as drift there
# (registry_ui never imports governance).
REGISTRY_SYNC_REPORT_HANDLERS = ["governance.workflow.drift.handle_sync_report"]
# Runs the sync re-reads on every targeted sync too, beside those behind a stage or an alias: the
# runs of versions in an open promotion request (the evidence of a pending decision).
REGISTRY_RUNS_TO_REFRESH = "governance.workflow.mirror_hooks.runs_to_refresh"
# A full sync re-reads every run (not only those behind a stage, an alias or an open request) at most
# this often; `sync_registry --all-runs` forces it.
REGISTRY_ALL_RUNS_EVERY = int(os.environ.get("REGISTRY_ALL_RUNS_EVERY", "3600"))
# Called after every pass of `sync_registry --watch` (scheduled work that rides on the watcher).
REGISTRY_WATCH_HOOKS = ["governance.audit.services.audit_scheduled_checkpoint"]
REGISTRY_SYNC_PAGE_SIZE = int(os.environ.get("REGISTRY_SYNC_PAGE_SIZE", "1000"))  # models a page (MLflow max 1000)
REGISTRY_SYNC_LOCK_SECONDS = int(os.environ.get("REGISTRY_SYNC_LOCK_SECONDS", "600"))  # lease of the sync lock
# Webhook deliveries whose X-MLflow-Timestamp is further than this from now are rejected as stale.
MLFLOW_WEBHOOK_TOLERANCE_SECONDS = int(os.environ.get("MLFLOW_WEBHOOK_TOLERANCE_SECONDS", "300"))

# --- Workflow -------------------------------------------------------------------------------------
# Aliases treated like Production: quorum, required tags, deployer neither requester nor approver.
PROTECTED_ALIASES = env_list("PROTECTED_ALIASES", "champion")
# Distinct approvals a Production / protected-alias request needs (an urgent rollback needs 1).
PRODUCTION_QUORUM = int(os.environ.get("PRODUCTION_QUORUM", "1"))
# Global policy gates; a model's ModelPolicy (admin) overrides each one it sets.
WORKFLOW_DEFAULT_GATES = {
    "required_tags": {"validation_status": "passed"},  # for Production / protected aliases
    "metric_thresholds": {},  # {"accuracy": {"min": 0.8}}
    "compare_metric": os.environ.get("WORKFLOW_COMPARE_METRIC", ""),  # "not worse than the incumbent"
    "higher_is_better": True,
    "require_lineage": env_bool("WORKFLOW_REQUIRE_LINEAGE", False),
}
# A deploy left "deploying" longer than this (a crashed worker) is resolved by resolve_outbox.
WORKFLOW_OUTBOX_STALE_SECONDS = int(os.environ.get("WORKFLOW_OUTBOX_STALE_SECONDS", "120"))


# --- Audit ----------------------------------------------------------------------------------------
# HMAC-SHA256 key of the signed checkpoints: from the environment only, never in the database.
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
# Checkpoint files are appended here: a place the database (and its role) cannot write.
AUDIT_CHECKPOINT_DIR = Path(os.environ.get("AUDIT_CHECKPOINT_DIR", VAR_DIR / "audit-checkpoints"))
AUDIT_PAGE_SIZE = int(os.environ.get("AUDIT_PAGE_SIZE", "50"))
AUDIT_EXPORT_CHUNK = int(os.environ.get("AUDIT_EXPORT_CHUNK", "2000"))
# The sync watcher writes a signed checkpoint at most this often (seconds).
AUDIT_CHECKPOINT_INTERVAL = int(os.environ.get("AUDIT_CHECKPOINT_INTERVAL", "3600"))

# --- Background work -------------------------------------------------------------------------------
# Django's Tasks API (the django-tasks backport). The database backend keeps the queue in the console's
# own database, so one worker (`manage.py db_worker`) is all a small installation runs beside the web.
TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# --- Pages ----------------------------------------------------------------------------------------
# Catalogue rows per page (?per_page= may ask for up to REGISTRY_MAX_PAGE_SIZE).
REGISTRY_CATALOGUE_PAGE_SIZE = int(os.environ.get("REGISTRY_PAGE_SIZE", "50"))
REGISTRY_MAX_PAGE_SIZE = 200
# The alias shown as "champion" in the catalogue, and how many metric columns the versions table has.
REGISTRY_CHAMPION_ALIAS = os.environ.get("REGISTRY_CHAMPION_ALIAS", "champion")
REGISTRY_KEY_METRICS = 4
REGISTRY_COMPARE_MAX_VERSIONS = int(os.environ.get("REGISTRY_COMPARE_MAX_VERSIONS", "50"))
# Where lineage links to MLflow's own UI (runs, experiments); defaults to an http(s) tracking URI.
REGISTRY_MLFLOW_UI_URL = os.environ.get(
    "REGISTRY_MLFLOW_UI_URL", MLFLOW_TRACKING_URI if MLFLOW_TRACKING_URI.startswith(("http://", "https://")) else ""
).rstrip("/")

# --- Benchmark ------------------------------------------------------------------------------------
# `manage.py benchmark` (README, "Benchmark"); the app imports mlflow itself, so it lives outside
# registry_ui/ and governance/.
INSTALLED_APPS += ["benchmarks"]
