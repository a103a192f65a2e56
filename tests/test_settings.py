import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


PRODUCTION_FIELD_KEY = "GXy6ATXMQUDHYVl8jRDuDqXbwx2sBJIfK0TGLGkbJ5A="


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


SECRET = "k" * 20 + "-a-long-random-production-secret-value-1234567890"
PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "postgres://backoffice@db.example.com:5432/backoffice",
    "REDIS_URL": "redis://redis.example.com:6379/0",
    "FIELD_ENCRYPTION_KEYS": PRODUCTION_FIELD_KEY,
}


def test_production_settings_pass_the_deploy_check_with_the_documented_env():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=SECRET,
        **PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_the_field_encryption_key():
    result = _manage(
        "check",
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="k" * 20 + "-a-long-random-production-secret-value-1234567890",
        DJANGO_ALLOWED_HOSTS="shop.example.com",
        FIELD_ENCRYPTION_KEYS="",
    )
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS is not set" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", DJANGO_ENV="production", **PRODUCTION_ENV)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_unknown_environment_name_is_refused_with_the_allowed_values():
    result = _manage("check", DJANGO_ENV="staging")
    assert result.returncode != 0
    assert "DJANGO_ENV must be 'development' or 'production'" in result.stderr


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS is not set"),
        ("DATABASE_URL", "DATABASE_URL is not set"),
        ("REDIS_URL", "REDIS_URL is not set"),
    ],
)
def test_production_refuses_to_start_without_each_required_variable(missing, message):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", DJANGO_ENV="production", DJANGO_SECRET_KEY=SECRET, **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_sqlite_as_its_database():
    env = {**PRODUCTION_ENV, "DATABASE_URL": "sqlite:////tmp/backoffice.sqlite3"}
    result = _manage("check", DJANGO_ENV="production", DJANGO_SECRET_KEY=SECRET, **env)
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL in production" in result.stderr


def test_production_refuses_the_filesystem_broker():
    env = {**PRODUCTION_ENV, "CELERY_BROKER_URL": "filesystem://"}
    result = _manage("check", DJANGO_ENV="production", DJANGO_SECRET_KEY=SECRET, **env)
    assert result.returncode != 0
    assert "CELERY_BROKER_URL" in result.stderr


def test_production_sends_the_security_headers():
    script = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_REFERRER_POLICY, s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS)"
    )
    result = _manage(
        "shell", "--no-imports", "-c", script, DJANGO_ENV="production", DJANGO_SECRET_KEY=SECRET, **PRODUCTION_ENV
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "True", "True", "same-origin", "True", "DENY"]
