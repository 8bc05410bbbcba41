"""Settings, read from environment variables (see .env.example and the README)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("GENERATOR_DATA_DIR", BASE_DIR / "data"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be >= {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if value != value or (minimum is not None and value < minimum):
        raise ImproperlyConfigured(f"{name} must be a number >= {minimum}, got {raw!r}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def temp_s3_storage(
    *,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    access_key: str | None,
    secret_key: str | None,
    prefix: str = "generator",
    addressing_style: str = "auto",
) -> dict[str, Any]:
    """The STORAGES entry of the S3 temporary store (GENERATOR_TEMP_STORAGE=s3); the tests build theirs here too."""
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "region_name": region,
            "access_key": access_key,
            "secret_key": secret_key,
            "location": prefix,
            "querystring_expire": 300,
            "file_overwrite": True,
            "default_acl": None,
            # Short timeouts and two attempts: boto3's defaults would hold a worker for minutes.
            "client_config": Config(
                connect_timeout=3,
                read_timeout=10,
                retries={"max_attempts": 2, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": addressing_style},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        },
    }


# Off unless asked for: `make run` turns it on for local use (scripts/run.py).
DEBUG = env_bool("DEBUG", False)

# SECRET_KEY signs sessions and /v/ links and derives the key that encrypts storage and webhook
# secrets (generator/crypto.py), so the built-in key, public in this code, is for DEBUG only
# (one fixed key, because a random key per process would break links between web and worker).
DEV_SECRET_KEY = "django-insecure-development-only-" + "x" * 40
SECRET_KEY = env_str("SECRET_KEY") or DEV_SECRET_KEY
if SECRET_KEY == DEV_SECRET_KEY and not DEBUG:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off (the built-in key is for development only)"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "axes",
    # Before django_q: our `qcluster` command (cluster + ticker) shadows django_q's.
    "generator",
    "django_q",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "generator.middleware.CurrentTeamMiddleware",
    # Last, as django-axes requires: it turns a lockout flagged during the view into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "generator.context_processors.current_team",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or str(DATA_DIR / "db.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock up front so
    # concurrent transactions queue on the busy timeout instead of failing mid-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_PATH") or None}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "generator.User"
AUTHENTICATION_BACKENDS = [
    "generator.lockout.LockoutBackend",  # django-axes: refuses locked-out attempts first
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "generator:home"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or DATA_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise scans STATIC_ROOT at start and warns on every request when it is missing.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or DATA_DIR / "media")
MEDIA_URL = "media/"

GENERATOR_TEMP_STORAGE = env_str("GENERATOR_TEMP_STORAGE", "local")
if GENERATOR_TEMP_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured("GENERATOR_TEMP_STORAGE must be 'local' or 's3'")
if GENERATOR_TEMP_STORAGE == "s3":
    if not env_str("GENERATOR_TEMP_S3_BUCKET"):
        raise ImproperlyConfigured("GENERATOR_TEMP_STORAGE=s3 needs GENERATOR_TEMP_S3_BUCKET")
    _default_storage = temp_s3_storage(
        bucket=env_str("GENERATOR_TEMP_S3_BUCKET"),
        endpoint_url=env_str("GENERATOR_TEMP_S3_ENDPOINT_URL") or None,
        region=env_str("GENERATOR_TEMP_S3_REGION") or None,
        access_key=env_str("GENERATOR_TEMP_S3_ACCESS_KEY") or None,
        secret_key=env_str("GENERATOR_TEMP_S3_SECRET_KEY") or None,
        prefix=env_str("GENERATOR_TEMP_S3_PREFIX", "generator"),
        addressing_style=env_str(
            "GENERATOR_TEMP_S3_ADDRESSING_STYLE", "path" if env_str("GENERATOR_TEMP_S3_ENDPOINT_URL") else "auto"
        ),
    )
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Generator --------------------------------------------------------------------------
GENERATOR_PUBLIC_URL = env_str("GENERATOR_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
GENERATOR_LOCAL_STORAGE_ROOT = Path(env_str("GENERATOR_LOCAL_STORAGE_ROOT") or DATA_DIR / "storages").resolve()
GENERATOR_FETCH_ALLOW_HOSTS = env_list("GENERATOR_FETCH_ALLOW_HOSTS")
GENERATOR_FETCH_PORTS = [int(p) for p in env_list("GENERATOR_FETCH_PORTS", "80,443")]
GENERATOR_FETCH_MAX_BYTES = env_int("GENERATOR_FETCH_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
GENERATOR_MAX_PIXELS = env_int("GENERATOR_MAX_PIXELS", 40_000_000, minimum=90_000)
GENERATOR_STORAGE_ENDPOINT_NETS = env_list("GENERATOR_STORAGE_ENDPOINT_NETS")
GENERATOR_ENCRYPTION_KEYS = env_list("GENERATOR_ENCRYPTION_KEYS")
GENERATOR_LINK_TTL_S = 86_400
GENERATOR_LEASE_S = env_int("GENERATOR_LEASE_S", 60, minimum=1)
GENERATOR_LEASE_RENEW_S = env_int("GENERATOR_LEASE_RENEW_S", 10, minimum=1)
# How often each qcluster's ticker looks for due work (upstream polls, batch dispatch), in seconds.
GENERATOR_TICK_S = env_float("GENERATOR_TICK_S", 1.0, minimum=0.05)
GENERATOR_UPSTREAM_DEADLINE_S = env_int("GENERATOR_UPSTREAM_DEADLINE_S", 1800, minimum=10)
GENERATOR_RESULT_MAX_BYTES = env_int("GENERATOR_RESULT_MAX_BYTES", 200 * 1024 * 1024, minimum=1)
GENERATOR_MAX_ATTEMPTS = env_int("GENERATOR_MAX_ATTEMPTS", 2, minimum=1)
# A queued job with no worker after this long is re-sent (the Redis broker can lose tasks).
GENERATOR_QUEUED_STALE_S = env_int("GENERATOR_QUEUED_STALE_S", 300, minimum=10)
GENERATOR_DEFAULT_PER_SECOND = 1
GENERATOR_DEFAULT_PER_MINUTE = 15

# A batch of 10,000 inputs (POST /v1/video/batches) can be a few megabytes of JSON.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# --- Task queue (django-q2) -------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# Dashboard uploads: kept this many days (the hourly purge), and at most this much per team.
GENERATOR_UPLOAD_RETENTION_DAYS = env_int("GENERATOR_UPLOAD_RETENTION_DAYS", 7, minimum=1)
GENERATOR_UPLOAD_QUOTA_MB = env_int("GENERATOR_UPLOAD_QUOTA_MB", 2048, minimum=1)
# The worker's CPU priority (Unix niceness 0..19, applied by `manage.py qcluster`); 0 leaves it.
GENERATOR_WORKER_NICE = min(env_int("GENERATOR_WORKER_NICE", 10, minimum=0), 19)
Q_CLUSTER: dict[str, Any] = {
    "name": "generator",
    "workers": env_int("GENERATOR_WORKERS", 2, minimum=1),
    "recycle": 50,
    # A render takes well under a minute; timeout < retry so a task is never run twice at once.
    "timeout": env_int("Q_TIMEOUT", 600, minimum=1),
    "retry": env_int("Q_RETRY", 660, minimum=2),
    "max_attempts": 2,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if Q_CLUSTER["timeout"] >= Q_CLUSTER["retry"]:
    raise ImproperlyConfigured("Q_TIMEOUT must be lower than Q_RETRY")

# A file cache is shared by every process on the machine; Redis by every machine.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
    }
}
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Login lockouts (django-axes; generator/lockout.py) ------------------------------------
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=5)
AXES_LOCKOUT_PARAMETERS = ["username", ["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "generator.lockout.login_identity"
AXES_CLIENT_IP_CALLABLE = "generator.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "generator.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True
# Counters must be shared by every web process. Redis increments atomically; without Redis the
# database (row locks) does it, because the file cache's add/incr are read-then-write across
# processes, so parallel attempts would lose counts (axes warns about it: axes.W001).
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler" if REDIS_URL else "axes.handlers.database.AxesDatabaseHandler"

# --- Email ------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "video@localhost")

# --- Security ---------------------------------------------------------------------------
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Error reports (the DEBUG page, error mails) hide *_URL / *_DSN settings and any URL with a password.
DEFAULT_EXCEPTION_REPORTER_FILTER = "generator.reporting.SecretHidingReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs full request URLs at INFO; input URLs may carry signed query strings.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        # django-axes: failures and lockouts are warnings; its start-up banner is not.
        "axes": {"level": "WARNING"},
    },
}
