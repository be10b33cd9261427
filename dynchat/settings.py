"""DynChat settings.

Everything comes from the environment (see README "Configuration"). With no environment at all
the product runs on embedded defaults: SQLite under var/, Celery tasks executed eagerly in the
web process, a local-memory cache, and emails written to files under var/emails/.
"""

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from dynchat.env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DYNCHAT_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# The fallback key only exists so a fresh checkout runs; deployments must set SECRET_KEY
# (the system check dynchat.W001 says so when DEBUG is off).
SECRET_KEY = env_str("SECRET_KEY", "dynchat-insecure-development-key-change-me")
# Old keys still accepted for signatures (visitor keys, sessions) while rotating SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# The public origin of this installation, used in the install snippet and the demo page.
SITE_ROOT = env_url("SITE_ROOT", "http://127.0.0.1:8000", schemes=("http", "https"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "dynchat",
    "dialogues",
    "widget",
    "calendars",
    "meetings",
    "routing",
    "marketo_sync",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Times on pages in the viewer's zone (the `tz` cookie, else an agent's own zone).
    "dynchat.timezones.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "dynchat.urls"
WSGI_APPLICATION = "dynchat.wsgi.application"

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
                "marketo_sync.context_processors.navigation",
                "calendars.context_processors.navigation",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL names another (postgres://user@host/db).
DATABASE_URL = env_url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'dynchat.sqlite3'}",
    schemes=("sqlite", "postgres", "postgresql"),
)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: the Celery broker and the shared cache (rate limits live there). Without it, tasks run
# eagerly inside the request and the cache is per process, which is right for one dev server only.
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "dynchat")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60, minimum=1)
CELERY_TIMEZONE = "UTC"

# Email: SMTP when EMAIL_HOST is set, otherwise one file per message under var/emails/.
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = VAR_DIR / "emails"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "DynChat <dynchat@localhost>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dialogues:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Compressed, but not hashed: customers embed /static/widget/dynchat.js by a stable name.
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage",
    },
}
# The widget script is fetched by every customer page; let browsers revalidate it hourly.
WHITENOISE_MAX_AGE = env_int("WHITENOISE_MAX_AGE", 3600, minimum=0)

SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# The widget API (widget/): request body cap and per-client rate limits.
WIDGET_MAX_BODY_BYTES = env_int("WIDGET_MAX_BODY_BYTES", 16 * 1024, minimum=1024)
WIDGET_RATE_LIMIT_PER_MINUTE = env_int("WIDGET_RATE_LIMIT_PER_MINUTE", 120, minimum=1)
WIDGET_SESSION_RATE_LIMIT_PER_MINUTE = env_int(
    "WIDGET_SESSION_RATE_LIMIT_PER_MINUTE", 60, minimum=1
)
# Each web process keeps sites and their published dialogues this long before re-reading them,
# so a change made in the UI reaches visitors within this many seconds. 0: always re-read.
WIDGET_CACHE_SECONDS = env_int("WIDGET_CACHE_SECONDS", 10, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO; the Marketo client logs what matters (retries).
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# Marketo (marketo_sync/). The REST endpoint and the LaunchPoint custom service's credentials;
# the sync is off until all three are set. See docs/marketo-sync.md.
MARKETO_BASE_URL = env_url("MARKETO_BASE_URL", schemes=("http", "https")).rstrip("/")
MARKETO_CLIENT_ID = env_str("MARKETO_CLIENT_ID")
MARKETO_CLIENT_SECRET = env_str("MARKETO_CLIENT_SECRET")
# Marketo's limits are per instance and shared with every other integration; these are our share.
MARKETO_RATE_LIMIT_CALLS = env_int("MARKETO_RATE_LIMIT_CALLS", 100, minimum=1)
MARKETO_RATE_LIMIT_SECONDS = env_int("MARKETO_RATE_LIMIT_SECONDS", 20, minimum=1)
MARKETO_MAX_CONCURRENT_CALLS = env_int("MARKETO_MAX_CONCURRENT_CALLS", 10, minimum=1)
MARKETO_DAILY_QUOTA = env_int("MARKETO_DAILY_QUOTA", 50_000, minimum=1)
MARKETO_EXPORT_DAILY_MB = env_int("MARKETO_EXPORT_DAILY_MB", 500, minimum=1)
# Bulk jobs of ours in Marketo's queue at once (Marketo processes 2 and queues 10, for everyone).
MARKETO_BULK_MAX_JOBS = env_int("MARKETO_BULK_MAX_JOBS", 2, minimum=1)
# Export files ingested at once (threads with a database connection each).
MARKETO_INGEST_WORKERS = env_int("MARKETO_INGEST_WORKERS", 2, minimum=1)
# Marketo refreshes a job's status at most once a minute; polling faster only spends calls.
MARKETO_BULK_POLL_SECONDS = env_int("MARKETO_BULK_POLL_SECONDS", 60, minimum=0)
# How long a call keeps being retried (rate limits, outages, 5xx) before the run stops with it.
MARKETO_MAX_RETRY_SECONDS = env_int("MARKETO_MAX_RETRY_SECONDS", 900, minimum=1)
MARKETO_TIMEOUT_SECONDS = env_int("MARKETO_TIMEOUT_SECONDS", 60, minimum=1)
# Activities kept (and fetched by the full sync): the last N days.
MARKETO_ACTIVITY_DAYS = env_int("MARKETO_ACTIVITY_DAYS", 90, minimum=1)
MARKETO_INCREMENTAL_MINUTES = env_int("MARKETO_INCREMENTAL_MINUTES", 5, minimum=1)
# The full sync finds the first lead's creation date itself; set a date (YYYY-MM-DD) to skip that.
MARKETO_LEADS_SINCE = env_str("MARKETO_LEADS_SINCE")
if MARKETO_LEADS_SINCE:
    try:
        date.fromisoformat(MARKETO_LEADS_SINCE)
    except ValueError:
        raise ImproperlyConfigured(
            f"MARKETO_LEADS_SINCE must be a date (YYYY-MM-DD), got {MARKETO_LEADS_SINCE!r}"
        ) from None

# Write-back (marketo_sync/writeback.py, delivery.py): chat engagement sent to Marketo through
# an outbox. Records per call (Marketo takes at most 300), calls in flight at once, how long one
# call keeps retrying before its records go back to the outbox to wait, and the longest wait.
MARKETO_OUTBOX_BATCH = env_int("MARKETO_OUTBOX_BATCH", 300, minimum=1)
MARKETO_OUTBOX_CONCURRENCY = env_int("MARKETO_OUTBOX_CONCURRENCY", 4, minimum=1)
MARKETO_OUTBOX_RETRY_SECONDS = env_int("MARKETO_OUTBOX_RETRY_SECONDS", 30, minimum=1)
MARKETO_OUTBOX_MAX_BACKOFF_SECONDS = env_int("MARKETO_OUTBOX_MAX_BACKOFF_SECONDS", 300, minimum=1)
# One delivery task runs at most this long, then hands over to the next (beat, or its own kick).
MARKETO_OUTBOX_RUN_SECONDS = env_int("MARKETO_OUTBOX_RUN_SECONDS", 240, minimum=1)
# Delivered records are kept this long for the delivery page, then deleted.
MARKETO_OUTBOX_KEEP_DAYS = env_int("MARKETO_OUTBOX_KEEP_DAYS", 7, minimum=1)

# Reporting (reports/). Raw engagement data (events, transcripts, anonymous visitors, Marketo
# activities, outbox records that never got an email) is deleted once older than this; the
# daily report tables and meetings are kept.
RETENTION_DAYS = env_int("RETENTION_DAYS", 90, minimum=1)
# The zone whose calendar days the daily report tables count in. Changing it later does not
# move what was already counted.
REPORTS_TIME_ZONE = env_str("REPORTS_TIME_ZONE", TIME_ZONE)
try:
    ZoneInfo(REPORTS_TIME_ZONE)
except (ValueError, ZoneInfoNotFoundError) as error:
    raise ImproperlyConfigured(
        f"REPORTS_TIME_ZONE={REPORTS_TIME_ZONE!r} is no zone name"
    ) from error
# Events counted into the report tables per transaction.
REPORTS_ROLLUP_BATCH = env_int("REPORTS_ROLLUP_BATCH", 5000, minimum=1)

CELERY_BEAT_SCHEDULE = {
    # Does nothing until Marketo is configured and a full sync has finished.
    "marketo-incremental-sync": {
        "task": "marketo_sync.tasks.incremental_sync",
        "schedule": MARKETO_INCREMENTAL_MINUTES * 60,
    },
    # Sends what the outbox holds (each chat event also starts a delivery, a few seconds later).
    "marketo-deliver-outbox": {
        "task": "marketo_sync.tasks.deliver_outbox",
        "schedule": 60,
    },
    "marketo-purge-outbox": {
        "task": "marketo_sync.tasks.purge_delivered",
        "schedule": 3600,
    },
    # Counts new chat events into the report tables (each chat step also starts one, soon).
    "reports-rollup": {
        "task": "reports.tasks.roll_up",
        "schedule": 60,
    },
    # Deletes raw data older than RETENTION_DAYS, at night (UTC).
    "reports-purge-expired": {
        "task": "reports.tasks.purge_expired",
        "schedule": crontab(hour=3, minute=17),
    },
}

# Calendars (calendars/). Agents connect Google or Microsoft 365 through OAuth; every provider
# address is a setting so tests (and air-gapped installs) can point them elsewhere.
# Fernet keys for the stored OAuth tokens, newest first (see calendars/crypto.py for rotation).
CALENDAR_TOKEN_KEYS = env_list("CALENDAR_TOKEN_KEYS")
GOOGLE_CLIENT_ID = env_str("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env_str("GOOGLE_CLIENT_SECRET")
GOOGLE_AUTH_URI = env_url(
    "GOOGLE_AUTH_URI", "https://accounts.google.com/o/oauth2/auth", schemes=("http", "https")
)
GOOGLE_TOKEN_URI = env_url(
    "GOOGLE_TOKEN_URI", "https://oauth2.googleapis.com/token", schemes=("http", "https")
)
GOOGLE_USERINFO_URI = env_url(
    "GOOGLE_USERINFO_URI",
    "https://openidconnect.googleapis.com/v1/userinfo",
    schemes=("http", "https"),
)
GOOGLE_REVOKE_URI = env_url(
    "GOOGLE_REVOKE_URI", "https://oauth2.googleapis.com/revoke", schemes=("http", "https")
)
# Google's API root; the provider adds calendar/v3/ (what google-api-python-client calls rootUrl).
GOOGLE_CALENDAR_API = env_url(
    "GOOGLE_CALENDAR_API", "https://www.googleapis.com/", schemes=("http", "https")
)
MICROSOFT_CLIENT_ID = env_str("MICROSOFT_CLIENT_ID")
MICROSOFT_CLIENT_SECRET = env_str("MICROSOFT_CLIENT_SECRET")
# "common" takes work and personal accounts; "organizations" only work and school ones.
# MSAL only talks to https:// authorities.
MICROSOFT_AUTHORITY = env_url(
    "MICROSOFT_AUTHORITY", "https://login.microsoftonline.com/common", schemes=("https",)
)
MICROSOFT_GRAPH_API = env_url(
    "MICROSOFT_GRAPH_API", "https://graph.microsoft.com/v1.0", schemes=("http", "https")
).rstrip("/")
# A CA bundle to trust for the Microsoft sign-in (tests run a TLS fake); empty: the system's.
MICROSOFT_CA_BUNDLE = env_str("MICROSOFT_CA_BUNDLE")
CALENDAR_TIMEOUT_SECONDS = env_int("CALENDAR_TIMEOUT_SECONDS", 15, minimum=1)
# Busy times read from a provider are reused this long for the slots shown to visitors; a
# booking always re-reads them live.
CALENDAR_BUSY_CACHE_SECONDS = env_int("CALENDAR_BUSY_CACHE_SECONDS", 120, minimum=0)
# How long the calendar event task keeps retrying a provider before the meeting is marked failed.
CALENDAR_EVENT_MAX_RETRIES = env_int("CALENDAR_EVENT_MAX_RETRIES", 6, minimum=0)
# A past meeting nobody marked counts as having happened once this many hours after its end
# have passed; until then the meetings list shows it as awaiting an outcome.
MEETING_OUTCOME_GRACE_HOURS = env_int("MEETING_OUTCOME_GRACE_HOURS", 48, minimum=0)
