"""Settings for orchestratord: one module, every value from the environment.

With nothing set, the platform runs embedded: a SQLite file, an in-process
channel layer and event log, and a Celery transport on the local filesystem.
`DATABASE_URL` (PostgreSQL) and `REDIS_URL` switch to shared services so any
number of web and worker processes can run side by side. Every variable read
here is listed with its default in the README's configuration table.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import dj_database_url
import django_stubs_ext
from dotenv import load_dotenv

from orchestrator.db import sqlite_init_command
from orchestrator.env import (
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_optional_decimal,
    env_optional_int,
    env_optional_str,
    env_str,
)

# Generic admin/queryset classes (ModelAdmin[Model]) need this at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)

# --- Where embedded state lives ----------------------------------------------
DATA_DIR = Path(env_str("ORCHD_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """A configured key, or one generated once and kept in the data dir.

    Persisting it means admin logins survive restarts without anyone having to
    invent a secret for a local install.
    """
    configured = env_optional_str("ORCHD_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("ORCHD_DEBUG", False)
ALLOWED_HOSTS = env_list("ORCHD_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("ORCHD_CSRF_TRUSTED_ORIGINS")

# --- Network ------------------------------------------------------------------
ORCHD_HOST = env_str("ORCHD_HOST", "127.0.0.1")
ORCHD_PORT = env_int("ORCHD_PORT", 8080, minimum=1)

# --- Applications -------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    # django.contrib.admin, with the console's site (the fleet dashboard as its index).
    "orchestrator.console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "django_prometheus",
    "orchestrator.apps.OrchestratorConfig",
    "orchestrator.auth.apps.AuthConfig",
    "orchestrator.sessions.apps.SessionsConfig",
    "orchestrator.artifacts.apps.ArtifactsConfig",
    "orchestrator.tasks.apps.TasksConfig",
    "catalog.apps.CatalogConfig",
    "nodes.apps.NodesConfig",
    "pools.apps.PoolsConfig",
    "orchestrator.audit.apps.AuditConfig",
    "orchestrator.console.apps.ConsoleConfig",
]

MIDDLEWARE = [
    # Outermost, so every response — errors, 401s, streams — carries the id.
    "orchestrator.middleware.CorrelationIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "orchestrator.middleware.ApiExceptionMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "orchestrator.urls"
ASGI_APPLICATION = "orchestrator.asgi.application"
WSGI_APPLICATION = "orchestrator.wsgi.application"

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
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'orchestrator.sqlite3'}")


def _database(url: str) -> dict[str, object]:
    config: dict[str, object] = dict(dj_database_url.parse(url))
    engine = str(config["ENGINE"])
    options: dict[str, object] = dict(config.get("OPTIONS") or {})  # type: ignore[call-overload]
    if engine.endswith("sqlite3"):
        config["ENGINE"] = "orchestrator.db.sqlite3"  # django-prometheus's, statements tallied
        # WAL, recursive triggers (orchestrator/db). IMMEDIATE transactions take the write
        # lock up front so two writers queue on the busy timeout instead of one failing
        # with "database is locked" on upgrade.
        options.setdefault("init_command", sqlite_init_command())
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        config["TEST"] = {"NAME": str(DATA_DIR / "test_orchestrator.sqlite3")}
    elif "postgresql" in engine or "postgis" in engine:
        config["ENGINE"] = "orchestrator.db.postgresql"  # django-prometheus's, safe with the pool, tallied
        pool_size = env_int("ORCHD_DB_POOL_SIZE", 0, minimum=0)
        if pool_size:
            # psycopg's pool, shared by the process's threads (requests keep their own threads here).
            options.setdefault("pool", {"min_size": 1, "max_size": pool_size, "timeout": 30})
    config["OPTIONS"] = options
    max_age = env_optional_int("ORCHD_DB_CONN_MAX_AGE")
    # A SQLite connection is a file handle in this process: keep it (None = no limit) rather than
    # open one, and run the PRAGMAs again, for every request. PostgreSQL's are closed after each.
    config["CONN_MAX_AGE"] = max_age if max_age is not None else (None if engine.endswith("sqlite3") else 0)
    return config


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Shared services ----------------------------------------------------------
REDIS_URL = env_optional_str("REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("ORCHD_REDIS_PREFIX", "orchd") + ":ch"},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("ORCHD_REDIS_PREFIX", "orchd"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

ORCHD_REDIS_PREFIX = env_str("ORCHD_REDIS_PREFIX", "orchd")

# --- Celery -------------------------------------------------------------------
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    (BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    (BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)
    # Producer and consumer share one folder: the filesystem transport needs no
    # server, so the embedded install runs a real, separate worker process.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcast (remote control) exchanges; kombu's default is a folder in the cwd.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("ORCHD_CELERY_QUEUE", "orchd")
CELERY_TASK_ALWAYS_EAGER = env_bool("ORCHD_CELERY_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through Django's LOGGING (JSON lines), not Celery's own plain-text format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# Jobs that run on a schedule; each app's jobs.py owns the function.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "purge-expired-sessions": {
        "task": "orchestrator.sessions.jobs.purge_expired_sessions",
        "schedule": float(env_int("ORCHD_SESSION_PURGE_INTERVAL_S", 60, minimum=1)),
    },
    # SPEC §8: node liveness is checked every 5 s.
    "expire-stale-nodes": {"task": "nodes.jobs.expire_stale_nodes", "schedule": 5.0},
    "enforce-drains": {"task": "pools.jobs.enforce_drains", "schedule": 5.0},
    "probe-static-pools": {"task": "pools.jobs.probe_static_pools", "schedule": 10.0},
    "expire-queued-tasks": {"task": "orchestrator.tasks.jobs.expire_queued_tasks", "schedule": 5.0},
    "fold-queue-tally": {"task": "orchestrator.tasks.jobs.fold_queue_tally", "schedule": 5.0},
}

# --- Internationalisation and static files ------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve from the apps' static folders directly, so no collectstatic step is
# needed for a local install; production may still collect.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Storage ------------------------------------------------------------------
ORCHD_ARTIFACTS_DIR = Path(env_str("ORCHD_ARTIFACTS_DIR", str(DATA_DIR / "artifacts"))).resolve()
ORCHD_MODELS_DIR = Path(env_str("ORCHD_MODELS_DIR", str(DATA_DIR / "models"))).resolve()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "artifacts": {
        "BACKEND": env_str("ORCHD_ARTIFACTS_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": {"location": str(ORCHD_ARTIFACTS_DIR)},
    },
}
# Artifact contents above this size go to the artifacts storage, not the DB.
ORCHD_ARTIFACT_INLINE_MAX_BYTES = 1024 * 1024
# Largest request body any API endpoint reads (413 PAYLOAD_TOO_LARGE above).
ORCHD_MAX_REQUEST_BYTES = env_int("ORCHD_MAX_REQUEST_BYTES", 32 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = ORCHD_MAX_REQUEST_BYTES

# --- API ----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["orchestrator.auth.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["orchestrator.auth.permissions.IsClient"],
    "DEFAULT_PARSER_CLASSES": ["orchestrator.api.parsers.LimitedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "orchestrator.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "orchestrator.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "orchestratord API",
    "DESCRIPTION": "Control plane for LLM inference on a fleet of GPU machines (v2 API).",
    "VERSION": "2.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and docs pages are public (SPEC §2), even when a bad token is sent.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
}

# --- Auth ---------------------------------------------------------------------
ORCHD_API_TOKEN = env_optional_str("ORCHD_API_TOKEN")
ORCHD_METRICS_TOKEN_REQUIRED = env_bool("ORCHD_METRICS_TOKEN_REQUIRED", False)

# --- Data plane -----------------------------------------------------------------
ORCHD_CTX_MAX = env_int("ORCHD_CTX_MAX", 32768, minimum=1)
ORCHD_MAX_TOKENS_MAX = env_int("ORCHD_MAX_TOKENS_MAX", 50000, minimum=1)
ORCHD_ADMISSION_CAPACITY = env_int("ORCHD_ADMISSION_CAPACITY", 256, minimum=1)
ORCHD_ADMISSION_POLICY = env_choice("ORCHD_ADMISSION_POLICY", "reject", ["reject", "drop-lru"])
ORCHD_DISPATCH_RETRIES = env_int("ORCHD_DISPATCH_RETRIES", 2, minimum=0)
ORCHD_ATTACH_TIMEOUT_S = env_int("ORCHD_ATTACH_TIMEOUT_S", 60, minimum=0)
ORCHD_DETACH_GRACE_S = env_int("ORCHD_DETACH_GRACE_S", 10, minimum=0)
ORCHD_PLACEMENT_STRATEGY = env_choice(
    "ORCHD_PLACEMENT_STRATEGY", "least-loaded", ["least-loaded", "round-robin", "random"]
)
ORCHD_EVENTS_RETENTION_S = env_int("ORCHD_EVENTS_RETENTION_S", 3600, minimum=1)
# SPEC §3.4: a `: keep-alive` comment after this long without a frame.
ORCHD_SSE_KEEPALIVE_S = env_int("ORCHD_SSE_KEEPALIVE_S", 15, minimum=1)
ORCHD_STORE_PROMPTS = env_bool("ORCHD_STORE_PROMPTS", False)
ORCHD_FIRST_TOKEN_TIMEOUT_S = env_int("ORCHD_FIRST_TOKEN_TIMEOUT_S", 120, minimum=1)
ORCHD_IDLE_TIMEOUT_S = env_int("ORCHD_IDLE_TIMEOUT_S", 30, minimum=1)

# --- Sessions -------------------------------------------------------------------
ORCHD_SESSION_TTL_MS = env_int("ORCHD_SESSION_TTL_MS", 600_000, minimum=1)
ORCHD_SESSION_MAX_TURNS = env_int("ORCHD_SESSION_MAX_TURNS", 0, minimum=0)
ORCHD_SESSION_TOKENS_BUDGET = env_optional_int("ORCHD_SESSION_TOKENS_BUDGET")
ORCHD_SESSION_TIME_BUDGET_MS = env_optional_int("ORCHD_SESSION_TIME_BUDGET_MS")
ORCHD_SESSION_COST_BUDGET = env_optional_decimal("ORCHD_SESSION_COST_BUDGET")

# --- Nodes ----------------------------------------------------------------------
ORCHD_HEARTBEAT_INTERVAL_MS = env_int("ORCHD_HEARTBEAT_INTERVAL_MS", 10_000, minimum=100)
ORCHD_NODE_TIMEOUT_MS = env_int("ORCHD_NODE_TIMEOUT_MS", 30_000, minimum=100)

# --- Build information (set by the packaging pipeline) ---------------------------
ORCHD_VERSION = "0.1.0"
# The `replica_id` label of the task metrics: which web process did the work.
ORCHD_REPLICA_ID = env_str("ORCHD_REPLICA_ID", socket.gethostname())
ORCHD_BUILD_COMMIT = env_str("ORCHD_BUILD_COMMIT", "unknown")
ORCHD_BUILD_TIME = env_str("ORCHD_BUILD_TIME", "unknown")

# --- Metrics --------------------------------------------------------------------
# Counters written by the web processes and the Celery worker are merged through
# prometheus_client's multiprocess mode when ORCHD_METRICS_DIR names a folder.
# `manage.py run` sets it (after wiping files of dead processes); the variable
# must be set before prometheus_client is first imported, and settings always
# load before any app does.
ORCHD_METRICS_DIR = env_optional_str("ORCHD_METRICS_DIR")
if ORCHD_METRICS_DIR:
    Path(ORCHD_METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = ORCHD_METRICS_DIR
PROMETHEUS_EXPORT_MIGRATIONS = False

# --- Logging ----------------------------------------------------------------------
ORCHD_LOG_LEVEL = env_choice("ORCHD_LOG_LEVEL", "INFO", ["DEBUG", "INFO", "WARNING", "ERROR"])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "orchestrator.logs.ContextFilter"}},
    "formatters": {"json": {"()": "orchestrator.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]},
    },
    "root": {"handlers": ["stdout"], "level": ORCHD_LOG_LEVEL},
    "loggers": {
        # Request lines are covered by our own access log with correlation ids.
        "django.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        # One line per engine/heartbeat request would drown the log.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
