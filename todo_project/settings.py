"""Tideline settings: every value comes from the environment (see the README's table).

Defaults are the *embedded* mode: SQLite under ``var/``, events delivered in-process,
e-mail to the console. ``make run`` exports ``DEBUG=true``; production sets ``SECRET_KEY``.
"""

import warnings
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("TIDELINE_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    """A production secret must be given; development gets one generated once under var/."""
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a proxy that ends TLS (an ingress controller), its X-Forwarded-Proto says whether the
# request came over HTTPS (CSRF origin checks, absolute URLs). Only where nothing but the proxy
# reaches the app (k8s/: a NetworkPolicy). X-Forwarded-Host is not read: the proxy keeps Host.
TIDELINE_BEHIND_TLS_PROXY = env.bool("TIDELINE_BEHIND_TLS_PROXY", default=False)
if TIDELINE_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Browsers reach the app over HTTPS behind that proxy: its cookies are never sent in clear.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = TIDELINE_BEHIND_TLS_PROXY
# Redirect plain HTTP to HTTPS. daprd and the kubelet call the internal routes over plain HTTP
# inside the pod (todo_project/hosts.py's INTERNAL_ROUTES): those are never redirected.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|dapr/subscribe)$", r"^(events|job)/"]
# HSTS is sticky (browsers refuse plain HTTP to the host for that long, whatever the server
# says later), so it is off until set: see the README's Production section.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "axes",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "tasks",
    "events",
    "notifications",
    "recurrence",
    "webhooks",
]

MIDDLEWARE = [
    # First, before anything asks for the Host: daprd and the kubelet call by address.
    "todo_project.hosts.InternalHostsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A view that cannot reach the database: a 503 with Retry-After, not a 500.
    "todo_project.outage.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a login refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "todo_project.urls"

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
                "tasks.context_processors.sidebar",
            ],
        },
    },
]

WSGI_APPLICATION = "todo_project.wsgi.application"

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tideline.sqlite3'}")
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] != ":memory:":
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Concurrent use by requests and the background worker: WAL, a busy timeout, and
    # BEGIN IMMEDIATE so writers queue for the lock instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        **DATABASES["default"].get("OPTIONS", {}),
    }
else:
    # No "SELECT 1" before each request's first query: a connection the server dropped while
    # idle fails that query instead, which is answered 503 with Retry-After like any lost
    # database (todo_project/outage.py), and Django discards it when the request ends.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# Connections are reused across requests (SQLite too: opening one runs the PRAGMAs above and
# registers todo_project/sqlite.py's functions, a good part of a short request).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# Under the ASGI server each request runs its synchronous code in a thread of its own, so a
# thread's persistent connection is never reused: the production server (gunicorn.conf.py)
# sets CONN_MAX_AGE=0. DATABASE_POOL instead keeps Django's pool of PostgreSQL connections,
# shared by the threads of a process (while the database is lost, a request waits up to
# DATABASE_POOL_TIMEOUT for a connection before its 503).
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
if DATABASE_POOL and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=5),
        # A request waits this long for a free connection, then answers 503 (outage.py).
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=5.0),
    }

# The compiled reads (todo_project/compiled_reads.py: every request's token, a task by id, a
# page's tags) are statements PostgreSQL prepares once a connection has run one five times
# (psycopg's prepare_threshold), saving their planning; the ORM's other queries bind on the
# client and are never prepared (Django's default). Off for a pooler that cannot keep
# prepared statements (PgBouncer in transaction mode before 1.21).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        5 if DATABASE_PREPARED_STATEMENTS else None
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Under ASGI, Django streams WhiteNoise's file responses (synchronous iterators) through a
# thread and warns about it on every file; that is the documented fallback, and fine here.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)
# WhiteNoise serves static files in every mode (runserver, gunicorn, DEBUG on or off). With
# STATIC_MANIFEST on, run `manage.py collectstatic` first (into STATIC_ROOT): files get
# hashed names and are cached forever; off, they are served straight from the apps' static/.
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=False)
STATIC_ROOT = env.str("STATIC_ROOT", default="") or (
    str(VAR_DIR / "static") if STATIC_MANIFEST else None
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if STATIC_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

# The cache holds the API's throttle counts. The default is per process (each gunicorn
# worker counts alone); production shares one: CACHE_URL=redis://... or dbcache://tideline_cache
# (after `manage.py createcachetable`).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- Brute force -------------------------------------------------------------------------
# django-axes refuses a login on every path (web, admin, /api-auth/, /api/auth/token/) after
# AXES_FAILURE_LIMIT failures for one username from one address, for AXES_COOLOFF_MINUTES;
# `manage.py axes_reset` lifts every lockout. The address is the throttles' (NUM_PROXIES).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "tasks.api.throttling.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- E-mail ----------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
# Where django.core.mail.backends.filebased.EmailBackend writes, one file per message.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "emails"))
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tideline <tideline@localhost>")

# --- Background work -------------------------------------------------------------------
# Unset: background work runs on one worker thread inside the server process.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE

# --- REST API --------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tasks.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # orjson, byte for byte what DRF's JSONRenderer writes (tasks/api/renderers.py).
    "DEFAULT_RENDERER_CLASSES": [
        "tasks.api.renderers.FastJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "tasks.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "tasks.api.pagination.PageNumberPagination",
    "DEFAULT_THROTTLE_CLASSES": [
        "tasks.api.throttling.AnonRateThrottle",
        "tasks.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="60/min"),
        "user": env.str("THROTTLE_USER", default="600/min"),
        # Per address, shared by /api/auth/token/ and /api/auth/register/.
        "auth": env.str("THROTTLE_AUTH", default="10/min"),
        # Per user: webhook test events and redeliveries.
        "webhooks": env.str("THROTTLE_WEBHOOKS", default="30/min"),
    },
    # The client's address: X-Forwarded-For's right-most entry behind the TLS proxy (the one
    # the proxy appended), else the peer address; a client's own header is never believed.
    "NUM_PROXIES": env.int("TIDELINE_PROXY_COUNT", default=1 if TIDELINE_BEHIND_TLS_PROXY else 0),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tasks.api.exceptions.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
#: Days until a token from POST /api/auth/token/ (or /api/tokens/ without an expiry) expires;
#: 0: never. At most 365, like a token's own expiry.
API_TOKEN_DEFAULT_EXPIRY_DAYS = env.int("API_TOKEN_DEFAULT_EXPIRY_DAYS", default=90)
if not 0 <= API_TOKEN_DEFAULT_EXPIRY_DAYS <= 365:
    raise ImproperlyConfigured("API_TOKEN_DEFAULT_EXPIRY_DAYS must be between 0 and 365.")
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=200)
#: How long a POST's Idempotency-Key is remembered (tasks.api.idempotency); later, it is new.
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
if IDEMPOTENCY_KEY_TTL_HOURS < 1:
    raise ImproperlyConfigured("IDEMPOTENCY_KEY_TTL_HOURS must be at least 1.")
IDEMPOTENCY_KEY_TTL = timedelta(hours=IDEMPOTENCY_KEY_TTL_HOURS)
#: Retry-After of the 503 answered while the database is unreachable (todo_project.outage).
DATABASE_RETRY_AFTER_SECONDS = env.int("DATABASE_RETRY_AFTER_SECONDS", default=5)
#: Tasks per page (and per "load more") in the web app.
WEB_PAGE_SIZE = env.int("WEB_PAGE_SIZE", default=50)


def _time(name: str, default: str):
    import datetime

    try:
        return datetime.time.fromisoformat(env.str(name, default=default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a time such as 09:00.") from exc


#: The time of a due date given without one (quick add, the task form, the list's day picker).
DEFAULT_DUE_TIME = _time("DEFAULT_DUE_TIME", "09:00")

SPECTACULAR_SETTINGS = {
    "TITLE": "Tideline API",
    "DESCRIPTION": "Tasks, categories and tags, with search, filters, sorting, "
    "recurrence and reminders.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc come from drf-spectacular-sidecar: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Bodies are documented as JSON, the API's format (forms are the browsable API's).
    "PARSER_WHITELIST": ["tasks.api.parsers.JSONParser"],
    # Error answers (400/401/404/413/429) with their bodies, on every operation they apply to.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tasks.api.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PriorityEnum": "tasks.models.Priority",
        "RecurrenceModeEnum": "tasks.models.RecurrenceMode",
        "RecurrenceTypeEnum": "tasks.models.RecurrenceType",
    },
}

# --- Logging ---------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        name: {"level": LOG_LEVEL}
        for name in ("tasks", "events", "notifications", "recurrence", "todo_project")
    },
}

# --- Events and Dapr ---------------------------------------------------------------------
# Off (the embedded default): events are handed in-process to the same subscription handlers.
DAPR_ENABLED = env.bool("DAPR_ENABLED", default=False)
DAPR_HTTP_HOST = env.str("DAPR_HTTP_HOST", default="127.0.0.1")
DAPR_HTTP_PORT = env.int("DAPR_HTTP_PORT", default=3500)
DAPR_API_TOKEN = env.str("DAPR_API_TOKEN", default="")  # app -> sidecar
APP_API_TOKEN = env.str("APP_API_TOKEN", default="")  # sidecar -> app
DAPR_APP_ID = env.str("DAPR_APP_ID", default="tideline-web")
DAPR_PUBSUB_NAME = env.str("DAPR_PUBSUB_NAME", default="pubsub-kafka")
DAPR_STATESTORE_NAME = env.str("DAPR_STATESTORE_NAME", default="statestore-postgres")
DAPR_TIMEOUT_SECONDS = env.float("DAPR_TIMEOUT_SECONDS", default=5.0)
DAPR_BULK_PUBLISH = env.bool("DAPR_BULK_PUBLISH", default=True)
# Empty: the Jobs API prefix follows the sidecar's runtimeVersion (v1.0-alpha1 before 1.18).
DAPR_JOBS_API_PREFIX = env.str("DAPR_JOBS_API_PREFIX", default="")

# The roles this process serves (events/routing.py): "all", "none", or a comma list such as
# "notifications,recurrence". An unknown role fails `manage.py check`.
EVENT_CONSUMERS = env.list("EVENT_CONSUMERS", default=["all"])
EVENT_TOPICS = {
    "task_events": env.str("TOPIC_TASK_EVENTS", default="task-events"),
    "task_updates": env.str("TOPIC_TASK_UPDATES", default="task-updates"),
    "task_recurrence": env.str("TOPIC_TASK_RECURRENCE", default="task-recurrence"),
    "task_reminders": env.str("TOPIC_TASK_REMINDERS", default="task-reminders"),
}
EVENT_DEAD_LETTER_TOPIC = env.str("EVENT_DEAD_LETTER_TOPIC", default="tideline-dead-letter")
# The failure policy (events/failures.py): a consumer's attempts at one event before it is
# dead-lettered, and the backoff between the app's own retries of it (every mode): 15 s
# doubling to 15 min, so 10 attempts take about an hour. The delivery is acknowledged at once.
EVENT_MAX_ATTEMPTS = env.int("EVENT_MAX_ATTEMPTS", default=10)
EVENT_RETRY_BASE_SECONDS = env.float("EVENT_RETRY_BASE_SECONDS", default=15.0)
EVENT_RETRY_MAX_SECONDS = env.float("EVENT_RETRY_MAX_SECONDS", default=900.0)

OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", default=500)
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=30)
OUTBOX_BACKOFF_BASE_SECONDS = env.float("OUTBOX_BACKOFF_BASE_SECONDS", default=1.0)
OUTBOX_BACKOFF_MAX_SECONDS = env.float("OUTBOX_BACKOFF_MAX_SECONDS", default=60.0)
OUTBOX_RETENTION_HOURS = env.int("OUTBOX_RETENTION_HOURS", default=72)
RELAY_SWEEP_SECONDS = env.float("RELAY_SWEEP_SECONDS", default=5.0)
# Live updates of open pages (events/live.py, tasks/web/live.py): a comment every heartbeat
# (which also re-reads the log), a stream's lifetime before the browser reconnects, open
# streams per user in one process, and how long a reconnect can resume from its last event.
LIVE_HEARTBEAT_SECONDS = env.float("LIVE_HEARTBEAT_SECONDS", default=15.0)
LIVE_STREAM_MAX_SECONDS = env.float("LIVE_STREAM_MAX_SECONDS", default=300.0)
LIVE_MAX_STREAMS_PER_USER = env.int("LIVE_MAX_STREAMS_PER_USER", default=20)
LIVE_UPDATES_RETENTION_HOURS = env.int("LIVE_UPDATES_RETENTION_HOURS", default=24)
# SQLite has no NOTIFY: each process with open streams polls the users' positions this often.
LIVE_POLL_SECONDS = env.float("LIVE_POLL_SECONDS", default=0.5)
# Start the background worker thread and scheduler in the server process (never in tests).
TIDELINE_BACKGROUND = env.bool("TIDELINE_BACKGROUND", default=True)
# Periodic work (celery beat and the embedded scheduler alike): events/runtime.py's SCHEDULE.

# --- Reminders ---------------------------------------------------------------------------
REMINDER_SWEEP_SCHEDULE = env.str("REMINDER_SWEEP_SCHEDULE", default="@every 1m")
REMINDER_MISSED_AFTER_MINUTES = env.int("REMINDER_MISSED_AFTER_MINUTES", default=60)
REMINDER_MAX_ATTEMPTS = env.int("REMINDER_MAX_ATTEMPTS", default=5)
REMINDER_RETRY_BASE_SECONDS = env.float("REMINDER_RETRY_BASE_SECONDS", default=30.0)
REMINDER_SENDING_LEASE_SECONDS = env.int("REMINDER_SENDING_LEASE_SECONDS", default=600)
REMINDER_STATE_TTL_SECONDS = env.int("REMINDER_STATE_TTL_SECONDS", default=86400)

# --- Webhooks (docs/webhooks.md) -----------------------------------------------------------
# Plain http:// endpoints: only under DEBUG unless said otherwise (production: https:// only).
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=DEBUG)
# CIDRs an operator admits although private/loopback/link-local (e.g. "10.0.5.0/24").
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
# A CA bundle (PEM file) for receivers with an internal CA; empty: the public CAs (certifi).
WEBHOOK_CA_BUNDLE = env.str("WEBHOOK_CA_BUNDLE", default="")
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_RESPONSE_MAX_BYTES = env.int("WEBHOOK_RESPONSE_MAX_BYTES", default=2048)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=5)
WEBHOOK_SWEEP_SECONDS = env.float("WEBHOOK_SWEEP_SECONDS", default=5.0)
WEBHOOK_SENDING_LEASE_SECONDS = env.int("WEBHOOK_SENDING_LEASE_SECONDS", default=300)
WEBHOOK_MAX_ENDPOINTS = env.int("WEBHOOK_MAX_ENDPOINTS", default=10)
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=30)
