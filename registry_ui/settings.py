"""Settings for the Model Governance Console.

Everything that differs between a laptop and production comes from the environment (see README,
"Configuration"). Nothing secret lives in this file.
"""

import json
import os
import re
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
# How many nodes (web, worker, scheduler machines) share this deployment's database. Above 1 nothing
# may be node-local: a secret key generated into one node's var/ would make every other node refuse
# its sessions and signatures, so a configured DJANGO_SECRET_KEY is required.
CONSOLE_NODES = int(os.environ.get("CONSOLE_NODES", "1") or "1")


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        return key
    if HTTPS:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_HTTPS is on (production).")
    if CONSOLE_NODES > 1:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY must be set when CONSOLE_NODES is {CONSOLE_NODES}: every node needs the same key "
            "(a key generated into one node's var/ makes the others refuse its sessions and signatures).")
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
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
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
    # This web process's heartbeat (at most once per WEB_HEARTBEAT_INTERVAL s, after the response).
    "registry_ui.scheduler.heartbeat.WebHeartbeatMiddleware",
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
                "governance.workflow.inbox.awaiting_context",
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

# A read replica (PostgreSQL streaming replication) for pages and reports: with DATABASE_REPLICA_URL set,
# GET/HEAD requests read the mirror of MLflow and the audit events from it (registry_ui/replica.py);
# writes, anything inside a transaction, the workflow, the audit chain's own walk, sessions, users and
# leases always use the primary, and a browser that just wrote reads the primary for
# DATABASE_REPLICA_PIN_SECONDS (replication lag never hides its own change from it).
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
DATABASE_REPLICA_PIN_SECONDS = int(os.environ.get("DATABASE_REPLICA_PIN_SECONDS", "10"))
DATABASE_ROUTERS: list[str] = []
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(
        DATABASE_REPLICA_URL, conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")))
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}  # tests read the primary through this alias
    DATABASE_ROUTERS = ["registry_ui.replica.ReplicaRouter"]
    MIDDLEWARE.insert(1, "registry_ui.replica.ReplicaReadsMiddleware")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------------
# Per process by default (the demo, one node). With several web nodes set CACHE_URL (or REDIS_URL,
# which it defaults to) to a Redis every node reaches: Django's RedisCache then holds the API's throttle
# counters and anything cached, shared by all nodes. Sessions stay in the database (shared by
# construction) and so do login-lockout counts (django-axes' database handler).
REDIS_URL = os.environ.get("REDIS_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "") or REDIS_URL
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
        # Several deployments (or test runs) may share one Redis: each keeps to its own prefix.
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "mgc"),
        "TIMEOUT": int(os.environ.get("CACHE_TIMEOUT", "300")),
    }}
elif CACHE_URL:
    raise ImproperlyConfigured(f"CACHE_URL must be a redis://, rediss:// or unix:// URL, not {CACHE_URL!r}.")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mgc"}}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

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

# --- Single sign-on (OpenID Connect, mozilla-django-oidc) -----------------------------------------
# On when OIDC_RP_CLIENT_ID is set. Local accounts keep working (the demo, break-glass admins); an IdP
# identity never signs in to a local account of the same name.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
OIDC_USERNAME_CLAIM = os.environ.get("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = os.environ.get("OIDC_GROUPS_CLAIM", "groups")
# The IdP's group -> our role, JSON: {"ml-approvers": "ml_engineer", "data-science": "data_scientist"}.
OIDC_GROUP_ROLE_MAP = json.loads(os.environ.get("OIDC_GROUP_ROLE_MAP", "{}"))
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"  # a path: mozilla-django-oidc does not reverse it
# Re-ask the IdP (silently, prompt=none) on the first page GET this many seconds after a sign-in or the
# last renewal: a person deactivated there is signed out, a changed group changes the role.
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = int(os.environ.get("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", "900"))
# Never renewed by a redirect: what a script or a probe calls (token auth or none), what MLflow posts,
# static files (STATIC_URL; WhiteNoise answers them before any session is read anyway). Sessions of local
# accounts and htmx requests are skipped by governance.sso.SessionRenewal.
OIDC_EXEMPT_URLS = ["healthz", "readyz", "favicon", re.compile(r"^/(api|hooks|static)/")]
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS.append("governance.sso.RoleMappingOIDCBackend")
    MIDDLEWARE.insert(MIDDLEWARE.index("axes.middleware.AxesMiddleware"), "governance.sso.SessionRenewal")

# django-axes: lock a username+IP pair out after repeated failures; counted in the database, so the
# failures of every web node add up (never move this to a per-node cache).
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
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
        # ReDoc (the API reference at /api/v1/redoc/) renders in a web worker it builds from a blob.
        "worker-src": [SELF, "blob:"],
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
    # Probes of load balancers often speak plain HTTP to the node itself.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
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
    # Signed audit checkpoints (governance/audit/storage.py): the folder AUDIT_CHECKPOINT_DIR by
    # default; with several nodes, one store all of them share (e.g. S3 through django-storages).
    "audit_checkpoints": {"BACKEND": "governance.audit.storage.CheckpointFileStorage"},
}
# With several nodes, the checkpoints go to S3-compatible object storage under Object Lock
# (governance/audit/s3.py; `pip install .[s3]`): every node signs to and verifies from one bucket, and
# nobody (the database's owner, the console's own credentials) can rewrite or delete a checkpoint before
# its retention ends. The bucket must exist with Object Lock enabled. Credentials come from boto3's
# usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an instance or pod role), never from here.
AUDIT_CHECKPOINT_S3_BUCKET = os.environ.get("AUDIT_CHECKPOINT_S3_BUCKET", "")
if AUDIT_CHECKPOINT_S3_BUCKET:
    STORAGES["audit_checkpoints"] = {
        "BACKEND": "governance.audit.s3.CheckpointS3Storage",
        "OPTIONS": {
            "bucket_name": AUDIT_CHECKPOINT_S3_BUCKET,
            "location": os.environ.get("AUDIT_CHECKPOINT_S3_PREFIX", "audit-checkpoints"),
            "endpoint_url": os.environ.get("AUDIT_CHECKPOINT_S3_ENDPOINT_URL") or None,  # MinIO, Ceph, ...
            "region_name": os.environ.get("AUDIT_CHECKPOINT_S3_REGION") or None,
            "lock_mode": os.environ.get("AUDIT_CHECKPOINT_S3_LOCK_MODE", "COMPLIANCE"),
            "lock_days": int(os.environ.get("AUDIT_CHECKPOINT_S3_LOCK_DAYS", "2555")),  # about 7 years
        },
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
    # Session for the browser (and Swagger UI); knox tokens (hashed, expiring, scoped) for pipelines.
    # The token class first: an anonymous call is answered 401 with WWW-Authenticate: Token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.tokens.auth.ScopedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Signed in, and a token only does what its scope allows (the view names the scope a write needs).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "governance.tokens.auth.TokenScopePermission",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # One error shape for every API error: {"detail", "code", "fields"} (governance/errors.py).
    "EXCEPTION_HANDLER": "governance.errors.api_exception_handler",
    # Per token (per user for a session); the counters live in Django's cache: use a shared cache
    # (Redis, memcached) when several web nodes run, or each node counts on its own.
    "DEFAULT_THROTTLE_CLASSES": ["governance.tokens.auth.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": os.environ.get("API_THROTTLE_RATE", "600/min")},
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# knox's own AuthToken is swapped for governance.ApiToken; its migrations would still create an unused
# knox_authtoken table (they do not mark the model swappable), so knox gets none.
MIGRATION_MODULES = {"knox": None}
KNOX_TOKEN_MODEL = "governance.ApiToken"  # noqa: S105 (a model name, not a secret)
# API tokens (django-rest-knox): stored as a SHA-512 digest, shown once, expiring.
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=int(os.environ.get("API_TOKEN_TTL_DAYS", "90"))),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
    # last use is written at most this often (seconds) so a busy pipeline does not write on every call
    "MIN_REFRESH_INTERVAL": 60,
    "TOKEN_LIMIT_PER_USER": int(os.environ.get("API_TOKEN_LIMIT_PER_USER", "20")),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Model Governance Console API",
    "DESCRIPTION": (
        "The registry mirror, promotion requests, policies and the audit trail. Authenticate with "
        "`Authorization: Token <token>` (create one on the Tokens page) or a browser session. Every error "
        "is `{\"detail\": ..., \"code\": ..., \"fields\": {...}}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Swagger UI and ReDoc served from our own static files (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry_ui.mirror.models.Stage",
        "RequestStateEnum": "governance.workflow.models.RequestState",
        "OperationEnum": "governance.workflow.models.Operation",
        "FindingStateEnum": "governance.risk.models.FindingState",
        "TierChangeStateEnum": "governance.risk.models.TierChangeState",
        "SeverityEnum": "governance.risk.models.Severity",
    },
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
REGISTRY_PANEL_PROVIDERS = ["governance.workflow.panels.workflow_panels", "governance.audit.panels.timeline_panels",
                            "governance.notify.panels.watch_panels",
                            "governance.operations.panels.operations_panels",
                            "governance.risk.panels.risk_panels",
                            "governance.cards.panels.card_panels"]
REGISTRY_CATALOGUE_ANNOTATOR = "governance.portfolio.panels.catalogue_annotations"

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
# The sync mirrors the history of every metric a run it reads logged past step 0 (the comparison's
# curves, so no page waits on MLflow), at most this many points a run (MLflow samples longer ones).
REGISTRY_SYNC_HISTORIES = os.environ.get("REGISTRY_SYNC_HISTORIES", "1") != "0"
REGISTRY_HISTORY_MAX_POINTS = min(2500, int(os.environ.get("REGISTRY_HISTORY_MAX_POINTS", "1000")))
# Lease of the full-sync lock: renewed as the sync progresses (each page of models, each deletion
# check), so a sync killed mid-way holds it at most this long and the next scheduled sync takes over.
# Keep it well above the time one page takes (REGISTRY_SYNC_PAGE_SIZE models with their runs).
REGISTRY_SYNC_LOCK_SECONDS = int(os.environ.get("REGISTRY_SYNC_LOCK_SECONDS", "60"))
# The scheduled full sync (the task) spreads a registry of more than this many models over the workers:
# shards of this many models, each a task whichever worker is free takes (registry_ui/mirror/shards.py).
REGISTRY_SYNC_SHARD_SIZE = int(os.environ.get("REGISTRY_SYNC_SHARD_SIZE", "500"))
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
    "validation": None,  # a validation spec (see VALIDATION_DEFAULTS below); None: no validation
}
# Validation before promotion (governance/validation): a policy's `validation` spec names the
# evaluation dataset and the checks; these are the limits of the child process that runs it and the
# defaults of the spec. VALIDATION_MEMORY_MB is an address-space limit (RLIMIT_AS): mlflow, pandas and
# scikit-learn map about 2-3 GB of address space for some 400 MB resident, so keep it well above that.
VALIDATION_TIMEOUT_SECONDS = float(os.environ.get("VALIDATION_TIMEOUT_SECONDS", "300"))
VALIDATION_MEMORY_MB = int(os.environ.get("VALIDATION_MEMORY_MB", "4096"))
# A run queued or running longer than its time limit plus this was abandoned (no worker, or it died):
# it counts as failed and may be run again.
VALIDATION_STALE_GRACE = int(os.environ.get("VALIDATION_STALE_GRACE", "600"))
VALIDATION_DEFAULTS = {
    "target": "label",
    "model_type": "classifier",
    "latency": {"batch_size": int(os.environ.get("VALIDATION_BATCH_SIZE", "32")),
                "warmup": int(os.environ.get("VALIDATION_WARMUP", "5")),
                "repeats": int(os.environ.get("VALIDATION_REPEATS", "50"))},
    "require_signature": True,
    "require_pinned": True,
}
# The alias a deploy gives the previous holder of Production or a protected alias (ModelPolicy overrides).
WORKFLOW_ROLLBACK_ALIAS = os.environ.get("WORKFLOW_ROLLBACK_ALIAS", "rollback")
# Retention: keep the newest N unprotected versions, archive the rest (0: no retention; ModelPolicy overrides).
WORKFLOW_RETENTION_KEEP = int(os.environ.get("WORKFLOW_RETENTION_KEEP", "0"))
# Days after archiving before an archived version may be deleted (ModelPolicy overrides).
WORKFLOW_DELETE_AFTER_DAYS = int(os.environ.get("WORKFLOW_DELETE_AFTER_DAYS", "30"))
# Re-certification: days an approval of a protected holder stays valid (0: approvals never expire).
WORKFLOW_APPROVAL_VALIDITY_DAYS = int(os.environ.get("WORKFLOW_APPROVAL_VALIDITY_DAYS", "0"))
# Model risk (governance.risk): the tiers a registered model may be in (keys, labels, meaning), and the
# policy each tier brings by default. A model without an approved tier follows the global defaults; the
# model's own ModelPolicy still overrides what it sets. quorum: approvals a Production / protected-alias
# move needs; require_validation: such a move needs a validation spec in the policy (and it must pass);
# approval_validity_days: re-certification period (0: never expires).
RISK_TIERS = {
    "tier1": {"label": "Tier 1", "meaning": "High risk: material decisions, regulated use; full validation"},
    "tier2": {"label": "Tier 2", "meaning": "Medium risk: business-relevant, limited exposure"},
    "tier3": {"label": "Tier 3", "meaning": "Low risk: internal or advisory use"},
}
RISK_TIER_POLICY = {
    "tier1": {"quorum": 2, "require_validation": True, "approval_validity_days": 180},
    "tier2": {"quorum": 1, "require_validation": True, "approval_validity_days": 365},
    "tier3": {"quorum": 1, "require_validation": False, "approval_validity_days": 0},
}
# Model cards (governance.cards), per tier: review_edits (an edit waits for an approver other than its
# author; other tiers apply edits at once) and gate_approval (approving a version going up is refused
# while its card lacks a section the tier's template requires). The sections are the template's, which
# an admin edits (built-in default: governance/cards/defaults.py).
MODEL_CARD_TIER_RULES = {"tier1": {"review_edits": True, "gate_approval": True}}
# Seconds between two runs of the overdue-findings reminder.
RISK_FINDINGS_REMIND_INTERVAL = int(os.environ.get("RISK_FINDINGS_REMIND_INTERVAL", "86400"))
# Hours an approver has to close the post-hoc review of a break-glass deploy.
WORKFLOW_EMERGENCY_REVIEW_HOURS = int(os.environ.get("WORKFLOW_EMERGENCY_REVIEW_HOURS", "24"))
# A deploy left "deploying" longer than this (a crashed worker) is resolved by resolve_outbox.
WORKFLOW_OUTBOX_STALE_SECONDS = int(os.environ.get("WORKFLOW_OUTBOX_STALE_SECONDS", "120"))


# --- Audit ----------------------------------------------------------------------------------------
# Sections other packages add to the auditor's reports page: dotted paths of callables
# (user, *, since, until) -> [(template, context)] (a string, so the audit package never imports the
# workflow); since/until: the period the auditor picked (None: open-ended).
AUDIT_REPORT_SECTIONS = ["governance.workflow.panels.audit_report_sections",
                         "governance.risk.panels.audit_report_sections",
                         "governance.portfolio.panels.audit_report_sections"]
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
# TASKS_BACKEND=rq puts the queue in Redis instead (django-tasks-rq; workers: `manage.py rqworker
# --job-class django_tasks_rq.Job`), for installations with many workers.
TASKS_BACKEND = os.environ.get("TASKS_BACKEND", "database").strip().lower()
if TASKS_BACKEND == "database":
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
elif TASKS_BACKEND == "rq":
    REDIS_URL = REDIS_URL or "redis://127.0.0.1:6379/0"
    INSTALLED_APPS += ["django_rq"]
    RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": int(os.environ.get("RQ_JOB_TIMEOUT", "3600"))}}
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
else:
    raise ImproperlyConfigured(f"TASKS_BACKEND must be 'database' or 'rq', not {TASKS_BACKEND!r}.")

# Periodic jobs (`manage.py scheduler` enqueues them; see registry_ui/scheduler/). Dotted paths to
# PeriodicJob objects, imported and checked at start-up: governance adds its own here.
SCHEDULED_JOBS = [
    "registry_ui.mirror.tasks.SYNC_JOB",
    "governance.audit.tasks.CHECKPOINT_JOB",
    "governance.workflow.tasks.OUTBOX_JOB",
    "governance.notify.tasks.SWEEP_JOB",
    "governance.workflow.recertification.RECERTIFICATION_JOB",
    "governance.workflow.tasks.RETENTION_JOB",
    "registry_ui.scheduler.heartbeat.HEARTBEAT_JOB",
    "governance.risk.tasks.FINDINGS_JOB",
]
# Several nodes (docs/operations.md): every scheduler beats each tick and only the holder of the
# "scheduler" lease enqueues; a dead leader's lease runs out after this many seconds and another
# candidate takes over (keep it a few ticks long).
SCHEDULER_LEASE_SECONDS = float(os.environ.get("SCHEDULER_LEASE_SECONDS", "10"))
# Readiness (/readyz, registry_ui/health.py). MLflow is asked with a short timeout; its failure makes
# the node "not ready" only with READY_REQUIRE_MLFLOW on (pages are served from the mirror meanwhile).
# The worker and scheduler-leader heartbeats are required to be younger than these many seconds
# (0: reported, not required).
READY_MLFLOW_TIMEOUT = float(os.environ.get("READY_MLFLOW_TIMEOUT", "2"))
READY_REQUIRE_MLFLOW = env_bool("READY_REQUIRE_MLFLOW", True)
READY_REDIS_TIMEOUT = float(os.environ.get("READY_REDIS_TIMEOUT", "2"))
READY_MAX_WORKER_AGE = float(os.environ.get("READY_MAX_WORKER_AGE", "0"))
READY_MAX_SCHEDULER_AGE = float(os.environ.get("READY_MAX_SCHEDULER_AGE", "0"))
# This node's name in heartbeats (web processes: web:<CONSOLE_NODE_ID>:<pid>); the host name when unset.
CONSOLE_NODE_ID = os.environ.get("CONSOLE_NODE_ID", "")
# Each web process writes its heartbeat at most this often (seconds; 0: never), after a response.
WEB_HEARTBEAT_INTERVAL = int(os.environ.get("WEB_HEARTBEAT_INTERVAL", "30"))
# While a task runs, its worker beats every WORKER_BEAT_SECONDS (a thread); a running task whose worker
# has not beaten for WORKER_LOST_SECONDS is taken as lost (the worker was killed) and the scheduler's
# leader puts it back in the queue for another worker (registry_ui/scheduler/reaper.py).
WORKER_BEAT_SECONDS = float(os.environ.get("WORKER_BEAT_SECONDS", "5"))
WORKER_LOST_SECONDS = float(os.environ.get("WORKER_LOST_SECONDS", "30"))
# Seconds between two runs of the workers' heartbeat job (a no-op task: the worker that starts it beats).
WORKER_HEARTBEAT_INTERVAL = int(os.environ.get("WORKER_HEARTBEAT_INTERVAL", "30"))
# Seconds between two full syncs enqueued by the scheduler (webhooks make single models prompter).
REGISTRY_SYNC_INTERVAL = int(os.environ.get("REGISTRY_SYNC_INTERVAL", "300"))
# Seconds between two runs of the deploy-outbox resolution.
WORKFLOW_OUTBOX_RESOLVE_INTERVAL = int(os.environ.get("WORKFLOW_OUTBOX_RESOLVE_INTERVAL", "60"))
# A run still "queued"/"running" after this long is taken as lost (its worker died): enqueue the next.
SCHEDULER_STUCK_SECONDS = int(os.environ.get("SCHEDULER_STUCK_SECONDS", "3600"))
# Seconds between two re-certification reminders (approvers of overdue protected holders are mailed).
WORKFLOW_RECERTIFICATION_REMIND_INTERVAL = int(os.environ.get("WORKFLOW_RECERTIFICATION_REMIND_INTERVAL", "86400"))
# Seconds between two proposals of retention batches (models whose policy keeps the newest N versions).
WORKFLOW_RETENTION_PROPOSE_INTERVAL = int(os.environ.get("WORKFLOW_RETENTION_PROPOSE_INTERVAL", "86400"))

# --- Notifications: email and outbound webhooks (governance.notify) ---------------------------------
# Mail goes out through Django's email framework, only from tasks. The demo prints it on the worker's
# console; production sets EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and EMAIL_HOST etc.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # the filebased backend's folder
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "model-governance@localhost")
# The console's public URL (e.g. https://governance.example.com): absolute links in mails, webhook bodies,
# and what the console writes into MLflow (the governance.request tag, a model card's link). Unset: links
# are paths relative to wherever the console is served.
CONSOLE_BASE_URL = os.environ.get("CONSOLE_BASE_URL", "").rstrip("/")
# SSRF guard: webhook destinations resolving to loopback/private/link-local/reserved addresses are refused
# (at save and at send) unless this is on.
OUTBOUND_WEBHOOKS_ALLOW_PRIVATE = env_bool("OUTBOUND_WEBHOOKS_ALLOW_PRIVATE", False)
OUTBOUND_WEBHOOK_CONNECT_TIMEOUT = float(os.environ.get("OUTBOUND_WEBHOOK_CONNECT_TIMEOUT", "3"))
OUTBOUND_WEBHOOK_TIMEOUT = float(os.environ.get("OUTBOUND_WEBHOOK_TIMEOUT", "5"))
OUTBOUND_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("OUTBOUND_WEBHOOK_MAX_ATTEMPTS", "8"))
# Retry n waits BACKOFF * 2**(n-1) seconds, at most BACKOFF_MAX (30 s, 1 min, 2 min, ... with the defaults).
OUTBOUND_WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("OUTBOUND_WEBHOOK_BACKOFF_SECONDS", "30"))
OUTBOUND_WEBHOOK_BACKOFF_MAX_SECONDS = float(os.environ.get("OUTBOUND_WEBHOOK_BACKOFF_MAX_SECONDS", "3600"))
# governance.notify.tasks.sweep_outbox re-enqueues outbox rows whose task is this late (seconds).
NOTIFY_SWEEP_GRACE_SECONDS = int(os.environ.get("NOTIFY_SWEEP_GRACE_SECONDS", "120"))
# Seconds between two sweeps (the scheduler's notify.sweep_outbox job).
NOTIFY_SWEEP_INTERVAL = int(os.environ.get("NOTIFY_SWEEP_INTERVAL", "60"))
EVENT_FEED_PAGE_SIZE = int(os.environ.get("EVENT_FEED_PAGE_SIZE", "100"))

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

# --- API: long-poll -------------------------------------------------------------------------------
# GET /api/v1/requests/<id>/?wait=N answers when the request leaves its state or after N seconds, at most
# this many (keep it under the load balancer's and gunicorn's timeouts).
API_WAIT_MAX_SECONDS = int(os.environ.get("API_WAIT_MAX_SECONDS", "30"))
API_WAIT_POLL_SECONDS = float(os.environ.get("API_WAIT_POLL_SECONDS", "1"))
