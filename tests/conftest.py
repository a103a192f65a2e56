"""Shared fixtures and the rules for where tests run.

In CI (CI=true) the suite must run on PostgreSQL and Redis: it stops at once, loudly, if
either is missing or unreachable. Locally it runs on SQLite too, and tests that need
PostgreSQL, Redis or Chromium are skipped with the reason printed in the summary.
"""

import os
import shutil

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from accounts.services import account_create, staff_user_create

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = "/usr/bin/chromium"


def _redis_reachable() -> str | None:
    if not settings.REDIS_URL:
        return "REDIS_URL is not set"
    try:
        import redis

        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as error:  # any failure to reach Redis is the same answer here
        return f"Redis at {settings.REDIS_URL} is unreachable: {error}"
    return None


def pytest_configure(config):
    if not IN_CI:
        return
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL in CI (it is not set or not postgres://).")
    else:
        import psycopg

        db = settings.DATABASES["default"]
        try:
            psycopg.connect(
                host=db["HOST"],
                port=db["PORT"] or 5432,
                user=db["USER"],
                password=db["PASSWORD"],
                dbname="postgres",
                connect_timeout=3,
            ).close()
        except Exception as error:
            problems.append(f"PostgreSQL at {db['HOST']}:{db['PORT']} is unreachable: {error}")
    redis_problem = _redis_reachable()
    if redis_problem:
        problems.append(redis_problem)
    if not os.path.exists(CHROMIUM):
        problems.append(f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium).")
    if problems:
        pytest.exit("CI needs real services:\n  - " + "\n  - ".join(problems), returncode=3)


def pytest_collection_modifyitems(config, items):
    is_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    redis_problem = None if IN_CI else _redis_reachable()
    for item in items:
        if "postgres" in item.keywords and not is_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)"))
        if "redis" in item.keywords and redis_problem:
            item.add_marker(pytest.mark.skip(reason=f"needs Redis: {redis_problem} (CI sets REDIS_URL)"))
        if "browser" in item.keywords and not shutil.which(CHROMIUM):
            item.add_marker(pytest.mark.skip(reason=f"needs {CHROMIUM}: apt-get install chromium (make system-deps)"))


@pytest.fixture(autouse=True)
def _isolated_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _unlimited_plan_unless_billing_is_tested(settings):
    """Accounts that never subscribed get the internal unlimited plan here, so suites that are
    not about billing never meet a plan limit; billing tests put accounts on the plan they test
    (tests/test_billing_fixtures.py sets the product default, FREE, back)."""
    settings.BILLING_DEFAULT_PLAN = "admin"


@pytest.fixture
def account(db):
    return account_create(name="Blue Note Guitars", slug="blue-note")


@pytest.fixture
def other_account(db):
    return account_create(name="Rival Music", slug="rival-music")


@pytest.fixture
def staff(account):
    return staff_user_create(account=account, username="alice", password="correct-horse-battery-9")


@pytest.fixture
def other_staff(other_account):
    return staff_user_create(account=other_account, username="mallory", password="correct-horse-battery-9")


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.fixture
def other_api(other_staff):
    client = APIClient()
    client.force_authenticate(other_staff)
    return client


@pytest.fixture
def admin_client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login
