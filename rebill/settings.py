"""Settings, all from the environment (see README). Only development has defaults for secrets."""

import os
import sys
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
REBILL_ENV = env.str("REBILL_ENV", default="development")
if REBILL_ENV not in {"development", "test", "production"}:
    raise environ.ImproperlyConfigured(f"REBILL_ENV must be development, test or production, not {REBILL_ENV!r}")
PRODUCTION = REBILL_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=REBILL_ENV == "development")
if PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-" + "x" * 50)

# The platform lives on BASE_DOMAIN; each agency on <slug>.<BASE_DOMAIN> plus optional custom domains.
REBILL_BASE_DOMAIN = env.str("REBILL_BASE_DOMAIN", default="localhost")
# How links in emails sent outside a request (e.g. a new agency's invitation) reach the site.
REBILL_SITE_SCHEME = env.str("REBILL_SITE_SCHEME", default="https" if PRODUCTION else "http")
REBILL_SITE_PORT = env.str("REBILL_SITE_PORT", default="")
# Agencies bring their own white-label domains at any time, so the host is checked against the Domain
# table instead: django-tenants answers 404 for any host that is not a registered domain.
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])

SHARED_APPS = [
    "django_tenants",
    "agencies",
    "people",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django_htmx",
    "stripe_connect",
    "pricebook",
    "phoneregistry",
    "agency_wallets",
]
TENANT_APPS = [
    "people",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "subaccounts",
    "billing",
    "phone",
    "rebilling",
    "wallets",
    "creditusage",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "agencies.Agency"
TENANT_DOMAIN_MODEL = "agencies.Domain"
PUBLIC_SCHEMA_URLCONF = "rebill.urls_public"
ROOT_URLCONF = "rebill.urls_tenant"
# Left off on purpose: it leaks the search_path after a savepoint rollback.
TENANT_LIMIT_SET_CALLS = False

MIDDLEWARE = [
    "django_tenants.middleware.main.TenantMainMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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
                "people.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "rebill.wsgi.application"

DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        default="postgres://postgres@127.0.0.1:5432/rebill" if not PRODUCTION else environ.Env.NOTSET,
        engine="rebill.db",
    )
}
# Bounded connection lifetime: a connection that has touched many agency schemas grows large.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Test runs may overlap on one machine (CI, developers, helpers): each gets its own test database,
# cache key prefix and Celery queue.
TESTING = "pytest" in Path(sys.argv[0]).parts or Path(sys.argv[0]).name in {"pytest", "py.test"}
TEST_RUN_ID = f"test{os.getpid()}"
if TESTING:
    DATABASES["default"]["TEST"] = {"NAME": f"test_rebill_{os.getpid()}"}
# Test-only fault injection (wallets.crashpoints): a worker kills itself at a named point when a test asks.
WALLET_CRASH_POINTS = TESTING or REBILL_ENV == "test"
# New agency schemas are cloned from a migrated template schema (agencies.schema_template); off replays every
# migration for each new agency, as django-tenants does by itself.
AGENCY_SCHEMA_FROM_TEMPLATE = env.bool("AGENCY_SCHEMA_FROM_TEMPLATE", default=True)
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0" if not PRODUCTION else environ.Env.NOTSET)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "KEY_PREFIX": TEST_RUN_ID if TESTING else env.str("REBILL_CACHE_PREFIX", default="rebill"),
    }
}

AUTH_USER_MODEL = "people.User"
LOGIN_URL = "people:login"
LOGIN_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_LOCKOUT = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
INVITATION_MAX_AGE = timedelta(days=7)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Collected files (production images); development serves straight from the apps through WhiteNoise's finders.
STATIC_ROOT = env.str("STATIC_ROOT", default="") or None
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

_DEFAULT_EMAIL_BACKEND = "smtp" if PRODUCTION else "console"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default=f"django.core.mail.backends.{_DEFAULT_EMAIL_BACKEND}.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Rebill <no-reply@rebill.localhost>")

# Stripe (DESIGN §7). Development and tests talk to localstripe (the dev stack and the test session set
# STRIPE_API_BASE); production has no defaults, and every Stripe call refuses to run with an empty setting.
_STRIPE_DEV_DEFAULT = not PRODUCTION
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="sk_test_rebill_dev" if _STRIPE_DEV_DEFAULT else "")
STRIPE_PUBLISHABLE_KEY = env.str("STRIPE_PUBLISHABLE_KEY", default="pk_test_rebill_dev" if _STRIPE_DEV_DEFAULT else "")
STRIPE_CLIENT_ID = env.str("STRIPE_CLIENT_ID", default="ca_rebill_dev" if _STRIPE_DEV_DEFAULT else "")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="whsec_rebill_dev" if _STRIPE_DEV_DEFAULT else "")
# The platform account's own events (agency wallets) come to their own endpoint, signed with their own secret.
STRIPE_PLATFORM_WEBHOOK_SECRET = env.str("STRIPE_PLATFORM_WEBHOOK_SECRET",
                                         default="whsec_rebill_platform_dev" if _STRIPE_DEV_DEFAULT else "")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_CONNECT_BASE = env.str("STRIPE_CONNECT_BASE", default="https://connect.stripe.com")
# Empty: real Stripe.js for api.stripe.com, else localstripe's fake at <STRIPE_API_BASE>/js.stripe.com/v3/.
STRIPE_JS_URL = env.str("STRIPE_JS_URL", default="")
PAYMENT_LINK_MAX_AGE = timedelta(days=env.int("PAYMENT_LINK_MAX_AGE_DAYS", default=7))
STRIPE_CONNECT_STATE_MAX_AGE = timedelta(minutes=15)

# Phone usage (DESIGN §4). TWILIO_API_BASE points the twilio SDK elsewhere (the fake in `make run` and
# tests); the master account owns the LC Phone subaccounts. PHONE_CREDENTIALS_KEYS (Fernet keys, first one
# encrypts) protect agencies' auth tokens at rest: production has no default, and storing or reading a token
# refuses to run without one. Read at call time, so tests may override any of them.
TWILIO_API_BASE = env.str("TWILIO_API_BASE", default="")
TWILIO_MASTER_ACCOUNT_SID = env.str("TWILIO_MASTER_ACCOUNT_SID", default="")
TWILIO_MASTER_AUTH_TOKEN = env.str("TWILIO_MASTER_AUTH_TOKEN", default="")
TWILIO_TIMEOUT_SECONDS = env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)
TWILIO_RETRY_MAX_ATTEMPTS = env.int("TWILIO_RETRY_MAX_ATTEMPTS", default=5)
TWILIO_RETRY_BACKOFF_SECONDS = env.float("TWILIO_RETRY_BACKOFF_SECONDS", default=0.5)
TWILIO_USAGE_PAGE_SIZE = env.int("TWILIO_USAGE_PAGE_SIZE", default=1000)
_PHONE_DEV_KEY = "cmViaWxsLWRldi1vbmx5LXBob25lLWNyZWRzLWtleSE="  # development and tests only
PHONE_CREDENTIALS_KEYS = env.list("PHONE_CREDENTIALS_KEYS", default=[] if PRODUCTION else [_PHONE_DEV_KEY])
USAGE_PULL_INTERVAL_SECONDS = env.int("USAGE_PULL_INTERVAL_SECONDS", default=300)
# Accounts with no usage for 7 days are pulled this often instead (phone.services.pull_schedule).
USAGE_PULL_IDLE_INTERVAL_SECONDS = env.int("USAGE_PULL_IDLE_INTERVAL_SECONDS", default=3600)

# Security: strict in production, plain HTTP on localhost in development.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if PRODUCTION else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Celery: tenant tasks carry their schema in a message header (tenant-schemas-celery).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_DEFAULT_QUEUE = TEST_RUN_ID if TESTING else env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Recycle worker processes: a connection that visits many schemas keeps growing.
CELERY_WORKER_MAX_TASKS_PER_CHILD = 500
CELERY_BEAT_SCHEDULE = {
    "purge-expired-sessions": {
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": crontab(minute=17, hour=3),
        "args": ["people.tasks.purge_expired_sessions"],
    },
    "pull-phone-usage": {
        "task": "agencies.tasks.usage_pull_dispatch",
        # Every minute: only agencies with a sub-account due are visited, so a tick costs what is due.
        "schedule": timedelta(seconds=min(60, USAGE_PULL_INTERVAL_SECONDS)),
        # A dispatch still queued when the next one is due is dropped: the next covers the same window.
        "options": {"expires": min(60, USAGE_PULL_INTERVAL_SECONDS)},
    },
    "reread-phone-usage": {  # late corrections: the last 35 days, once a day
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": crontab(minute=43, hour=4),
        "args": ["phone.tasks.usage_reread_agency"],
    },
    # Rating also runs after each pull; this catches what a lost message or a paused sub-account left behind.
    "rate-wallets": {
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": timedelta(seconds=USAGE_PULL_INTERVAL_SECONDS),
        "args": ["wallets.tasks.wallet_rate_agency"],
        "options": {"expires": USAGE_PULL_INTERVAL_SECONDS},
    },
    # LC Phone usage into the agencies' wallets with the platform: drains a public queue, visits no agency schema.
    "bill-agency-wallets": {
        "task": "agency_wallets.tasks.agency_wallets_bill_task",
        "schedule": timedelta(seconds=USAGE_PULL_INTERVAL_SECONDS),
        "options": {"expires": USAGE_PULL_INTERVAL_SECONDS},
    },
    "agency-wallet-charges": {  # agency wallets: retries due, charges stuck in STARTED/processing
        "task": "agency_wallets.tasks.agency_wallet_charges_maintain",
        "schedule": timedelta(minutes=15),
        "options": {"expires": 15 * 60},
    },
    "agency-wallet-audit": {
        "task": "agency_wallets.tasks.agency_wallets_audit_task",
        "schedule": crontab(minute=53, hour=5),
        "options": {"expires": 3600},
    },
    "wallet-charges": {  # retries due, charges stuck in STARTED/processing
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": timedelta(minutes=15),
        "args": ["wallets.tasks.wallet_charges_maintain_agency"],
        "options": {"expires": 15 * 60},
    },
    "wallet-audit": {
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": crontab(minute=23, hour=5),
        "args": ["wallets.tasks.wallet_audit_agency"],
    },
    "spend-alerts": {  # reads the rollups only; at most one alert per sub-account and day
        "task": "agencies.tasks.fan_out_to_agencies",
        "schedule": timedelta(minutes=15),
        "args": ["creditusage.tasks.spend_alerts_check_agency"],
        "options": {"expires": 15 * 60},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # The twilio SDK logs every request and its headers at INFO: ten lines per call, every 5 minutes per client.
    "loggers": {"twilio.http_client": {"level": "WARNING"}},
}
