import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_ENV": "production",
    "DJANGO_SECRET_KEY": "k" * 20 + "-a-long-random-production-secret-value-1234567890",
    "DJANGO_ALLOWED_HOSTS": "shop.example.com",
    "DATABASE_URL": "postgres://backoffice:secret@db.example.com:5432/backoffice",
}


def _production(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**PRODUCTION_ENV, **overrides}.items() if v is not None}
    return _manage(*args, **env)


def test_production_settings_pass_the_deploy_check_with_the_documented_env():
    result = _production("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    result = _production("check", DJANGO_SECRET_KEY=None)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_unknown_environment_name_is_refused_with_the_allowed_values():
    result = _manage("check", DJANGO_ENV="staging")
    assert result.returncode != 0
    assert "DJANGO_ENV must be 'development' or 'production'" in result.stderr


# The refusals of production: config/settings.py (DJANGO_ALLOWED_HOSTS, DATABASE_URL).


def test_production_refuses_to_start_without_allowed_hosts():
    result = _production("check", DJANGO_ALLOWED_HOSTS=None)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS is not set" in result.stderr


def test_production_refuses_to_start_without_a_database_url():
    result = _production("check", DATABASE_URL=None)
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL in production" in result.stderr


def test_production_refuses_a_sqlite_database_url():
    result = _production("check", DATABASE_URL="sqlite:////tmp/backoffice.sqlite3")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL in production" in result.stderr


def test_production_sends_the_security_headers():
    script = (
        "from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
        "s.SECURE_REFERRER_POLICY, s.SECURE_SSL_REDIRECT, s.X_FRAME_OPTIONS)"
    )
    result = _production("shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "True", "True", "same-origin", "True", "DENY"]
