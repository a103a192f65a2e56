"""Django settings of the floor stack: one app, PostgreSQL `bench_floor`, Celery on Redis database 13.

Nothing from the product: no middleware, no auth, no templates, no logging set-up of its own.
"""

import os

SECRET_KEY = "bench-floor-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["floor_stack"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "floor_stack.urls"
WSGI_APPLICATION = "floor_stack.wsgi.application"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASE_NAME = "bench_floor"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "CONN_MAX_AGE": 600,  # kept across requests and tasks (Celery's Django fixup honours it)
    }
}

CELERY_BROKER_URL = "redis://127.0.0.1:6379/13"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Celery's Django fixup closes the database connection after every task unless this is set (as the product sets it).
CELERY_DB_REUSE_MAX = 1000
# The loopback marketplaces' base URLs, set by bench/floor.py for the worker; market n's queue is floor.m{n}.
MARKET_URLS = [url for url in os.environ.get("FLOOR_MARKET_URLS", "").split(",") if url]
WEBHOOK_QUEUE = "webhooks"
