"""Behind a proxy (issue 15: login throttling, audit log): the login lockout, the API's
per-address limit and the audit log all key on the client's real address, which a caller cannot
forge with X-Forwarded-For, and one attacker's wrong passwords do not lock out the shop's staff."""

import pytest
from axes.utils import reset as axes_reset
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from config.client_address import client_address
from tests.factories import make_item

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # tests/conftest.py's staff
PROXY = "10.0.0.5"


@pytest.fixture(autouse=True)
def _no_lockouts_between_tests():
    axes_reset()
    yield
    axes_reset()


def admin_login(client, password, **meta):
    return client.post(reverse("admin:login"), {"username": "alice", "password": password, "next": "/admin/"}, **meta)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", PROXY),  # reached directly: the header is the caller's invention
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the forged left part is dropped
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.9", "203.0.113.7"),
        (2, "203.0.113.7", "203.0.113.7"),  # came through one of the two proxies only
        (1, "203.0.113.7:51234", "203.0.113.7"),
        (1, "[2001:db8::1]:443", "2001:db8::1"),
        (1, "", PROXY),  # straight to the host (a health check)
        (1, "not-an-address", PROXY),
    ],
)
def test_the_client_is_the_last_address_a_trusted_proxy_wrote(proxies, forwarded, expected):
    meta = {"REMOTE_ADDR": PROXY}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_address(meta, proxies) == expected


def test_behind_a_proxy_one_attackers_wrong_passwords_do_not_lock_out_a_colleague(client, staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.66"}
    colleague = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}

    answers = [admin_login(client, "wrong", **attacker).status_code for _ in range(5)]
    assert answers[-1] == 429
    # The colleague comes through the same proxy: the lockout is the attacker's address only
    assert admin_login(client, PASSWORD, **colleague).status_code == 302


def test_forging_x_forwarded_for_does_not_escape_the_lockout(client, staff, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    answers = [
        admin_login(client, "wrong", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.66").status_code
        for n in range(6)
    ]
    assert answers[4:] == [429, 429]


def test_reached_directly_a_forged_header_neither_escapes_the_lockout_nor_lands_in_the_audit_log(
    client, staff, api, settings
):
    settings.TRUSTED_PROXY_COUNT = 0
    answers = [
        admin_login(client, "wrong", REMOTE_ADDR="198.51.100.66", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code
        for n in range(5)
    ]
    assert answers[-1] == 429

    item = make_item(account=staff.account, sku="AUD-1", price="100.00")
    response = api.patch(
        f"/api/v1/items/{item.pk}/", {"price": "120.00"}, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="1.2.3.4"
    )
    assert response.status_code == 200
    entry = AuditEntry.objects.filter(object_pk=str(item.pk)).latest("timestamp")
    assert entry.remote_addr == "198.51.100.7"


def test_the_api_rate_limit_counts_the_client_behind_the_proxy_not_the_forged_part(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    client = APIClient()

    def token(n, forwarded):  # another username each time: the login lockout stays out of it
        return client.post(
            "/api/v1/auth/token/",
            {"username": f"nobody{n}", "password": "x"},
            format="json",
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
        ).status_code

    rotated = [token(n, f"192.0.2.{n}, 198.51.100.66") for n in range(11)]  # API_TOKEN_LOGIN_RATE 10/min
    assert rotated[:10] == [400] * 10 and rotated[10] == 429  # forging the left part makes no new caller
    assert token(99, "203.0.113.7") == 400  # another client behind the same proxy is not limited
