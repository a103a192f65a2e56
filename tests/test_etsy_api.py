"""An Etsy connection over the generic connections API and in the admin: secrets write-only and
hinted, tokens never writable nor shown, the default priority, the check and the webhook setup."""

from __future__ import annotations

import pytest

from channels_etsy.models import EtsyConnection
from channels_etsy.sandbox import DEFAULT_KEYSTRING, DEFAULT_SHARED_SECRET, EtsySandbox
from tests.etsy_market import connect

pytestmark = pytest.mark.django_db


def test_an_etsy_connection_is_created_over_the_api_with_its_secrets_write_only(api):
    response = api.post(
        "/api/v1/connections/",
        {
            "channel": "etsy",
            "name": "Etsy vintage",
            "keystring": "abc123key",
            "shared_secret": "s3cret-shared-0001",
            "webhook_secret": "whsec_c2lnbmluZy1zZWNyZXQ=",
            "access_token": "77.should-not-be-writable",
            "taxonomy_ids": {"Electric Guitars": 1234},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    text = response.content.decode()
    data = response.json()
    assert "s3cret-shared-0001" not in text and "signing-secret" not in text and "c2lnbmluZy1zZWNyZXQ" not in text
    assert data["secrets"]["shared_secret"].startswith("set") and data["secrets"]["webhook_secret"].startswith("set")
    assert (data["channel"], data["priority"], data["connected"]) == ("etsy", 50, False)
    connection = EtsyConnection.objects.get()
    assert connection.access_token == ""  # tokens come from Connect Etsy only
    assert connection.shared_secret == "s3cret-shared-0001"
    # a blank secret on an edit keeps the stored one
    edit = api.patch(f"/api/v1/connections/{connection.pk}/", {"shared_secret": "", "name": "Etsy"}, format="json")
    assert edit.status_code == 200, edit.content
    connection.refresh_from_db()
    assert (connection.name, connection.shared_secret) == ("Etsy", "s3cret-shared-0001")


def test_the_check_and_the_webhook_setup_over_the_api(api, account):
    with EtsySandbox() as etsy:
        connection = connect(account, etsy)
        check = api.post(f"/api/v1/connections/{connection.pk}/check/")
        assert check.status_code == 200 and check.json()["ok"], check.json()
        setup = api.get(f"/api/v1/connections/{connection.pk}/webhooks/").json()
        assert setup["url"].endswith(connection.webhook_path)
        assert not setup["by_api"] and "developer portal" in setup["instructions"]


def test_the_admin_add_form_takes_the_app_key_and_never_shows_secrets(account, staff, admin_client_for):
    client = admin_client_for(staff)
    page = client.get("/admin/channels_etsy/etsyconnection/add/").content.decode()
    assert 'name="shared_secret"' in page and 'type="password"' in page
    assert 'name="access_token"' not in page and 'name="refresh_token"' not in page
    answer = client.post(
        "/admin/channels_etsy/etsyconnection/add/",
        {
            "name": "Etsy shop",
            "enabled": "on",
            "priority": 50,
            "keystring": DEFAULT_KEYSTRING,
            "shared_secret": DEFAULT_SHARED_SECRET,
            "scopes": "listings_r listings_w",
            "taxonomy_ids": "{}",
            "api_base_url": "https://openapi.etsy.com",
            "authorize_url": "https://www.etsy.com/oauth/connect",
            "token_url": "https://openapi.etsy.com/v3/public/oauth/token",
            "timeout_seconds": 10,
            "daily_reserve": 500,
            "pull_interval_seconds": 60,
            "pull_offset_seconds": 0,
            "listing_scan_interval_seconds": 900,
            "stock_buffer_percent": 0,
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:3000]
    connection = EtsyConnection.objects.get()
    change = client.get(f"/admin/channels_etsy/etsyconnection/{connection.pk}/change/").content.decode()
    assert DEFAULT_SHARED_SECRET not in change and "Connect Etsy" in change
    assert f"/etsy/connections/{connection.pk}/connect/" in change
