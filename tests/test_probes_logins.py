"""Login throttling (issue 15): wrong passwords at the admin login and at POST /api/v1/auth/token/
lock the username from that address (django-axes) with a message that says what to do, and the
token endpoint is rate-limited per address for anonymous callers too."""

import pytest
from axes.utils import reset as axes_reset
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # tests/conftest.py's staff


@pytest.fixture(autouse=True)
def _no_lockouts_between_tests():
    axes_reset()
    yield
    axes_reset()


def admin_login(client, username, password):
    return client.post(reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"})


def token_login(client, username, password):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json")


def test_the_admin_login_locks_a_username_after_five_wrong_passwords(client, staff, settings):
    answers = [admin_login(client, "alice", "wrong").status_code for _ in range(5)]
    locked = admin_login(client, "alice", PASSWORD)  # even the right password now

    assert answers == [200] * 4 + [429]  # the form again 4 times, then the lockout
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many wrong passwords" in text
    assert "15 minutes" in text and "reset your password" in text
    assert locked["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_a_right_password_before_the_limit_signs_in_and_forgets_the_failures(client, staff):
    for _ in range(4):
        admin_login(client, "alice", "wrong")
    assert admin_login(client, "alice", PASSWORD).status_code == 302
    client.logout()
    answers = [admin_login(client, "alice", "wrong").status_code for _ in range(4)]
    assert answers == [200] * 4  # counting started again


def test_the_token_endpoint_locks_a_username_after_five_wrong_passwords(staff):
    client = APIClient()
    answers = [token_login(client, "alice", "wrong").status_code for _ in range(5)]
    locked = token_login(client, "alice", PASSWORD)

    assert answers[:4] == [400] * 4
    assert answers[4] == 429
    assert locked.status_code == 429
    assert locked.json()["code"] == "login_locked"
    assert "Wait and try again" in locked.json()["detail"]
    assert "token" not in locked.json()


def test_a_lockout_is_per_username_and_address(client, staff, other_staff):
    for _ in range(5):
        admin_login(client, "alice", "wrong")

    assert admin_login(client, "mallory", PASSWORD).status_code == 302  # another user is not locked
    assert admin_login(Client(REMOTE_ADDR="10.0.0.9"), "alice", PASSWORD).status_code == 302  # elsewhere


def test_the_token_endpoint_limits_anonymous_attempts_per_address(db):
    client = APIClient()
    # A different username each time: axes' per-username lock never triggers, the rate does
    # (auth_token: 10/min by default, settings.REST_FRAMEWORK).
    answers = [token_login(client, f"guess{n}", "wrong").status_code for n in range(12)]

    assert answers == [400] * 10 + [429, 429]
    elsewhere = APIClient(REMOTE_ADDR="10.0.0.9")
    assert token_login(elsewhere, "guess99", "wrong").status_code == 400  # per address
