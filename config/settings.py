"""Settings for the back office.

This is the one module that reads the environment (django-environ). Every variable is
documented in README.md and .env.example. The defaults run on a fresh machine with
nothing installed (SQLite, Celery on the filesystem broker); production sets
DJANGO_ENV=production and the variables listed under "Production" in the README.
"""

import base64
import hashlib
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# What the development setup writes: the SQLite database, the filesystem broker's messages, the
# sandboxes' shops, collected static files and uploads (each of the last two can be moved alone).
VAR_DIR = Path(env.str("DJANGO_VAR_DIR", default=str(BASE_DIR / "var")))

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("DJANGO_ENV must be 'development' or 'production'.")
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
        )
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production-0123456789"

# Secrets at rest (accounts/encryption.py): Fernet keys, comma-separated, newest first. Values are
# written with the first and read with any; `manage.py rotate_encryption_key` moves them to the first.
FIELD_ENCRYPTION_KEYS = [key for key in env.list("FIELD_ENCRYPTION_KEYS", default=[]) if key.strip()]
if not FIELD_ENCRYPTION_KEYS:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: it encrypts the marketplace credentials. Generate a key with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
            "and keep it apart from database backups."
        )
    # Development and tests only: a fixed, public key (the SHA-256 of this phrase), so a dev database
    # survives a changed DJANGO_SECRET_KEY. It protects nothing; production refuses to start without its own.
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(
            hashlib.sha256(b"gear back office: development-only field encryption key").digest()
        ).decode()
    ]

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set: give the host names this back office answers on, "
        "comma-separated (e.g. DJANGO_ALLOWED_HOSTS=office.example.com)."
    )
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django.contrib.admin with the back office's site (Items first, the dashboard): config/admin_site.py
    "config.admin_site.BackOfficeAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "axes",
    "accounts",
    "inventory",
    "channels_reverb",
    "channels_ebay",
    "channels_shopify",
    "channels_vr",
    "channels_woocommerce",
    "channels_etsy",
    "channels_amazon",
    "billing",
    "documents",
]

MIDDLEWARE = [
    # /health/live/ and /health/ready/ answer health checks that call by address over plain HTTP
    # (inventory/health.py), before SecurityMiddleware's redirect and the ALLOWED_HOSTS check.
    "inventory.health.HealthCheckMiddleware",
    # Then the one client address that the login lockout, the rate limits and the audit log key on.
    "config.client_address.ClientAddressMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # PostgreSQL row-level security follows the signed-in shop (accounts/rls.py).
    "accounts.rls.AccountScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every answer (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # django-axes: last, as documented (turns a lockout during sign-in into its response).
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from
# one address, that pair is locked for AXES_COOLOFF_TIME, at the admin login and at
# POST /api/v1/auth/token/ alike. Attempts are kept in the database (the default handler).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Proxies in front of the app that append to X-Forwarded-For (nginx, a load balancer): 1 behind
# one proxy. 0 = reached directly; X-Forwarded-For is then ignored (config/client_address.py).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("DJANGO_TRUSTED_PROXY_COUNT is the number of proxies in front of the app: 0 or more.")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

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
                "billing.context_processors.billing_banner",
                "inventory.context_processors.alert_badge",
            ],
        },
    },
]

# Database: SQLite by default; DATABASE_URL=postgres://... for PostgreSQL.
DATABASE_URL = env.str("DATABASE_URL", default="")
if PRODUCTION and not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set: production runs on PostgreSQL "
        "(e.g. DATABASE_URL=postgres://user:password@db.example.com:5432/backoffice)."
    )
if PRODUCTION and not DATABASE_URL.startswith(("postgres://", "postgresql://", "pgsql://")):
    # Production refuses to start on the development fallback (a SQLite file on one machine).
    raise ImproperlyConfigured(
        "DATABASE_URL must point at PostgreSQL in production, e.g. "
        "DATABASE_URL=postgres://user:password@db.example.com:5432/backoffice."
    )
DATABASE_URL = DATABASE_URL or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
if PRODUCTION and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must point at PostgreSQL in production (postgres://...): SQLite is a "
        "single-machine development database."
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: it compiles every query whose cost estimate passes jit_above_cost, and on this
    # app's short queries compiling costs more than it saves (bench/README.md: an admin list
    # page spent 650 ms compiling a 220 ms query).
    _pg_options = DATABASES["default"].setdefault("OPTIONS", {})
    _pg_options["options"] = f"{_pg_options.get('options', '')} -c jit=off".strip()
    # Server-side prepared statements for the SQL the sale path writes once per process
    # (inventory/services/prepared.py, planned_cursor): PostgreSQL parses and plans each once per
    # session instead of on every sale. Only that cursor prepares; the ORM's own cursors bind on
    # the client as before. Off behind a pooler that cannot keep a session's statements
    # (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
    DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
    if DATABASE_PREPARED_STATEMENTS:
        _pg_options.setdefault("prepare_threshold", 0)  # prepared from a statement's first run
else:
    DATABASE_PREPARED_STATEMENTS = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# PostgreSQL row-level security (accounts/rls.py): requests and tasks set the shop's scope. Production
# must then connect as a role that is not a superuser and has no BYPASSRLS (docs/DEPLOYMENT.md).
DATABASE_ROW_LEVEL_SECURITY = env.bool("DATABASE_ROW_LEVEL_SECURITY", default=PRODUCTION)

# Redis: cache and Celery broker when REDIS_URL is set.
# Without it each process keeps its own cache (so each gunicorn worker would count its own API
# rate limit) and Celery uses the filesystem broker: fine on one machine, wrong in production.
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL is not set: production needs Redis for the shared cache (rate limits, locks) "
        "and the Celery broker (e.g. REDIS_URL=redis://redis.example.com:6379/0)."
    )
if REDIS_URL:
    # RedisCache that logs and carries on when Redis is unreachable (config/cache.py).
    CACHES = {"default": {"BACKEND": "config.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "static")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security: strict in production (passes `manage.py check --deploy`).
if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    SECURE_REFERRER_POLICY = "same-origin"
    SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    CSRF_COOKIE_SAMESITE = "Lax"

# Content Security Policy (django-csp), in every environment so development shows what production
# blocks. Scripts only from our own static files or carrying the request's nonce (the inline
# scripts of the item page and ReDoc); Swagger UI loads its init script as a file
# (SpectacularSwaggerSplitView). Inline styles stay allowed: the admin and its templates use
# style attributes, which nonces cannot cover. Photos may come from the channels' CDNs (https:).
# ReDoc renders in a blob: worker and draws with data: images. No form-action: browsers apply it
# to the redirects after a POST too, and billing and Etsy forms redirect to Stripe and Etsy.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:", "https:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Django REST framework and the OpenAPI schema.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "accounts.api.permissions.IsAccountMember",
        "billing.api.permissions.PlanIncludesApi",
    ],
    # Anonymous requests are limited per address (the plan's limit counts signed-in accounts);
    # the token endpoint has its own, tighter scope (accounts/api/views.py).
    "DEFAULT_THROTTLE_CLASSES": [
        "billing.api.throttles.PlanRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_ANON_RATE", default="120/min"),
        "auth_token": env.str("API_TOKEN_LOGIN_RATE", default="10/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "inventory.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "accounts.api.filters.AccountScopedFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "inventory.api.errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Gear back office API",
    "DESCRIPTION": "Central catalogue, stock and orders for music-gear dealers selling on several channels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every 4xx documented with its body (Error / ValidationError): config/openapi.py.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.add_error_responses"],
    "ENUM_NAME_OVERRIDES": {
        "ItemStateEnum": "inventory.states.ItemState",
        "OrderStatusEnum": "inventory.models.OrderStatus",
        "ConditionEnum": "inventory.models.Condition",
        "EditStrategyEnum": "inventory.models.channels.EditStrategy",
    },
}

# django-import-export: escape cells that would start a spreadsheet formula in anything it exports
# (our own CSV export does the same: inventory/resources.py).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True

# Celery: Redis when REDIS_URL is set, else the filesystem broker (a real worker, no Redis).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
if PRODUCTION and CELERY_BROKER_URL.startswith("filesystem://"):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL is the filesystem broker, which only works on one machine: "
        "unset it to use REDIS_URL, or point it at Redis."
    )
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, reusing its redis.Redis client (config/broker.py).
    CELERY_BROKER_TRANSPORT = "config.broker:Transport"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR),
        "data_folder_out": str(CELERY_BROKER_DIR),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # The default 1 s poll makes every task wait ~1 s (see DESIGN.md calibration notes).
        "polling_interval": 0.1,
    }
    # The transport needs its folders before a producer or a worker starts.
    for _folder in ("processed", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 120
# Full listing scans (a channel that cannot filter its listings by change date: Reverb) may take
# at most this share of the channel workers' time; when the last scans of every connection add
# up to more, each connection's scan interval grows to fit (channels_reverb.sync). The workers
# are the Procfile's WORKER_CONCURRENCY unless set (e.g. several worker hosts).
LISTING_SCAN_WORKERS = env.int("LISTING_SCAN_WORKERS", default=env.int("WORKER_CONCURRENCY", default=2))
LISTING_SCAN_SHARE = env.float("LISTING_SCAN_SHARE", default=0.5)
# Reuse DB connections across tasks instead of reconnecting for each (see DESIGN.md calibration).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_TIME_LIMIT = 180

# Analytics figures older than this (seconds) are recomputed when shown; beat refreshes the
# ones read lately every 5 minutes (inventory/services/analytics/summary.py). 0: always live.
ANALYTICS_SUMMARY_MAX_AGE = env.int("ANALYTICS_SUMMARY_MAX_AGE", default=900)

# Channels: registry name -> the channel app's sync module (see inventory/channels.py).
CHANNELS = {
    "shopify": "channels_shopify.sync",
    "reverb": "channels_reverb.sync",
    "woocommerce": "channels_woocommerce.sync",
    "vr": "channels_vr.sync",
    "ebay": "channels_ebay.sync",
    "etsy": "channels_etsy.sync",
    "amazon": "channels_amazon.sync",
}
# Alerts: a listing still for sale this long after its item sold elsewhere is critical; a
# connection that sends webhooks and went quiet this long while its pulls find orders is flagged.
ALERT_NOT_ENDED_MINUTES = env.int("ALERT_NOT_ENDED_MINUTES", default=5)
ALERT_WEBHOOKS_QUIET_HOURS = env.int("ALERT_WEBHOOKS_QUIET_HOURS", default=6)
# The admin header's urgent-alert badge is counted at most this often per account (raising or
# resolving an alert recounts sooner).
ALERT_BADGE_SECONDS = env.int("ALERT_BADGE_SECONDS", default=30)
# Readiness (/health/ready/): a queue whose worker has not answered the heartbeat for this long, or
# beat not having sent anything for this long, makes the answer "degraded".
HEALTH_WORKER_MAX_AGE_SECONDS = env.int("HEALTH_WORKER_MAX_AGE_SECONDS", default=180)
HEALTH_BEAT_MAX_AGE_SECONDS = env.int("HEALTH_BEAT_MAX_AGE_SECONDS", default=180)
# Circuit breaker per connection (inventory/services/circuit.py): this many failed pushes in a row
# pause its pushes (sales are still read); one probe push is let through this often until one works.
CIRCUIT_BREAKER_FAILURES = env.int("CIRCUIT_BREAKER_FAILURES", default=5)
CIRCUIT_BREAKER_PROBE_SECONDS = env.int("CIRCUIT_BREAKER_PROBE_SECONDS", default=60)
# Retention: finished sync runs and processed webhook deliveries older than this are pruned nightly
# (never what an open alert or conflict points to: inventory/services/retention.py).
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)
# Webhook endpoints (/hooks/<channel>/<token>/): largest body accepted (bytes; 413 above), and
# deliveries per connection per minute (429 above, the channels retry later; 0: no limit).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=512 * 1024)
WEBHOOK_RATE_PER_MINUTE = env.int("WEBHOOK_RATE_PER_MINUTE", default=600)
# Hard time limit of one listing's converge task (publish, revise, end); its soft limit is 30 s
# less. A listing's lease is this plus 30 s, so a killed worker's listings are resumed that soon.
SYNC_CONVERGE_TIME_LIMIT_SECONDS = env.int("SYNC_CONVERGE_TIME_LIMIT_SECONDS", default=90)
if SYNC_CONVERGE_TIME_LIMIT_SECONDS < 60:
    raise ImproperlyConfigured("SYNC_CONVERGE_TIME_LIMIT_SECONDS must be at least 60.")
# Retries of transient channel errors: exponential backoff with jitter, capped.
SYNC_RETRY_BACKOFF_BASE = env.float("SYNC_RETRY_BACKOFF_BASE", default=2.0)
SYNC_RETRY_BACKOFF_MAX = env.float("SYNC_RETRY_BACKOFF_MAX", default=300.0)
# Queues a worker consumes: the default, webhooks, and one per channel.
CELERY_WORKER_QUEUES = ["celery", "webhooks", *(f"sync.{name}" for name in CHANNELS)]
CELERY_TASK_QUEUES = tuple(Queue(name) for name in CELERY_WORKER_QUEUES)

# Product settings.
# Order of the brand and category filter options in the admin: "count" or "alpha".
INVENTORY_FILTER_OPTION_ORDER = env.str("INVENTORY_FILTER_OPTION_ORDER", default="count")
if INVENTORY_FILTER_OPTION_ORDER not in {"count", "alpha"}:
    raise ImproperlyConfigured("INVENTORY_FILTER_OPTION_ORDER must be 'count' or 'alpha'.")
# Above this many rows a list page shows the planner's estimate instead of an exact count.
INVENTORY_EXACT_COUNT_LIMIT = env.int("INVENTORY_EXACT_COUNT_LIMIT", default=10_000)
# Public address of this back office (scheme and host, no trailing slash), e.g.
# https://backoffice.example.com. Printed labels carry a QR code linking to the item's admin
# page there; a shop can override it in its document settings.
SITE_URL = env.str("SITE_URL", default="" if PRODUCTION else "http://127.0.0.1:8000").rstrip("/")

# Billing (billing app) and Stripe. Without STRIPE_SECRET_KEY every account stays on its plan
# and the upgrade buttons answer "Stripe is not configured"; limits and gates still apply.
# E-mail (alerts): any Django backend by URL, e.g. smtp+tls://user:password@smtp.example.com:587;
# the console in development (mails are printed by the process that sends them).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Gear back office <alerts@localhost>")

STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Where the Stripe API is: tests and the demo point it at the loopback sandbox (billing/sandbox/).
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com").rstrip("/")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Webhook deliveries signed longer ago than this are refused (Stripe's own default).
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Days a past_due account keeps its paid plan's limits before the FREE plan's apply.
BILLING_PAST_DUE_GRACE_DAYS = env.int("BILLING_PAST_DUE_GRACE_DAYS", default=7)
# The plan of an account that has never subscribed ("free"; a single-shop install may use "admin").
BILLING_DEFAULT_PLAN = env.str("BILLING_DEFAULT_PLAN", default="free")

# Log lines: plain text for a developer's terminal, one JSON object per line for a log shipper
# (LOG_FORMAT=json, the default in production). Each line carries the request's id (X-Request-ID)
# and the Celery task's id and name (config/log_context.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s task=%(task_id)s] %(message)s"},
        "json": {"()": "config.log_context.json_formatter"},
    },
    # Every handler redacts secrets (config/log_redaction.py): a filter on a handler sees every record.
    # log_context first: it only adds the ids, which the redaction then cannot disturb.
    "filters": {
        "log_context": {"()": "config.log_context.LogContextFilter"},
        "redact_secrets": {"()": "config.log_redaction.SecretRedactionFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["log_context", "redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        # WeasyPrint reports every layout step at INFO; only its warnings are worth a log line.
        "weasyprint.progress": {"level": "WARNING"},
        # One access line per request with its id, status and duration (LOG_REQUESTS=false to mute).
        "backoffice.request": {"level": "INFO" if env.bool("LOG_REQUESTS", default=True) else "WARNING"},
    },
}
# Request ids before anything else, so every later middleware's lines carry them.
MIDDLEWARE.insert(0, "config.log_context.RequestIdMiddleware")

# Optional error reporting to Sentry: only when SENTRY_DSN is set (config/sentry.py).
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(
        SENTRY_DSN,
        environment=env.str("SENTRY_ENVIRONMENT", default=DJANGO_ENV),
        release=env.str("SENTRY_RELEASE", default="") or None,
        traces_sample_rate=env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0),
    )

# --- Accounts, people and roles (accounts branch) -------------------------------------------
# Sign-up, e-mail confirmation, password reset and invitations: django-allauth. Roles: accounts/roles.py.
# API tokens: hashed, per person (accounts.ApiToken). Audit log: django-auditlog into accounts.AuditEntry.
INSTALLED_APPS.insert(INSTALLED_APPS.index("accounts"), "auditlog")  # before accounts: its admin is replaced there
INSTALLED_APPS += ["allauth", "allauth.account"]
MIDDLEWARE += [
    "allauth.account.middleware.AccountMiddleware",
    # The audit log's actor: the signed-in person, also when the API authenticated them by token.
    "accounts.middleware.AuditActorMiddleware",
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first, as django-axes documents (see the login throttling above)
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "accounts.api.authentication.ApiTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] = [
    *REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"],
    "accounts.api.permissions.RoleAllowsAction",
]
# Self-service sign-up of new shops; a single-shop install turns it off (invitations still work).
ACCOUNTS_SIGNUP_OPEN = env.bool("ACCOUNTS_SIGNUP_OPEN", default=True)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("accounts.context_processors.signup")
ACCOUNT_ADAPTER = "accounts.signup.ShopAccountAdapter"
ACCOUNT_FORMS = {"signup": "accounts.signup.ShopSignupForm"}
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Gear back office] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if PRODUCTION else "http"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/admin/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"
# Days an invitation link (a set-your-password link) stays valid.
ACCOUNTS_INVITATION_DAYS = env.int("ACCOUNTS_INVITATION_DAYS", default=3)
PASSWORD_RESET_TIMEOUT = ACCOUNTS_INVITATION_DAYS * 24 * 3600
AUDITLOG_LOGENTRY_MODEL = "accounts.AuditEntry"
# auditlog's own migrations create its LogEntry table even when the model is swapped out (and its
# foreign keys then block test flushes): the app is left unmigrated, so only accounts.AuditEntry exists.
MIGRATION_MODULES = {"auditlog": None}
AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_DISABLE_REMOTE_ADDR = False
AUDITLOG_MASK_CALLABLE = "accounts.audit.mask_secret"
# What is audited (accounts/audit.py adds every marketplace connection, its secrets masked).
AUDITLOG_INCLUDE_TRACKING_MODELS = [
    {
        "model": "inventory.Item",
        "exclude_fields": ["updated_at", "quantity_locked", "state_changed_at", "sold_recorded_at", "needs_review"],
    },
    {
        "model": "inventory.ChannelListing",
        "include_fields": ["desired_state", "end_reason", "price_override", "title_override"],
    },
    {"model": "billing.Subscription", "include_fields": ["plan", "status", "cancel_at_period_end"]},
    {
        "model": "accounts.User",
        "include_fields": ["role", "is_active", "is_staff", "email", "account", "first_name", "last_name"],
    },
    {"model": "accounts.ApiToken", "include_fields": ["name", "scope", "revoked_at"]},
    {"model": "accounts.Account", "exclude_fields": ["created_at"]},
]
# --- end of accounts block -------------------------------------------------------------------
