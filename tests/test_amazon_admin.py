"""The Amazon connection in the admin and over the connections API: secrets typed in, never shown back."""

from __future__ import annotations

import pytest

from channels_amazon import sync
from channels_amazon.models import AmazonConnection
from inventory.channels import channel

pytestmark = pytest.mark.django_db

SECRET = "amzn-client-secret-0123456789"
REFRESH = "Atzr|refresh-token-abcdefghijkl"
ADD_URL = "/admin/channels_amazon/amazonconnection/add/"


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()


@pytest.fixture(autouse=True)
def _commit_callbacks_run(monkeypatch):
    from django.db import transaction

    monkeypatch.setattr("inventory.tasks.enqueue_converge", lambda *a, **k: None)
    monkeypatch.setattr("inventory.tasks.enqueue_sync_request", lambda *a, **k: None)
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


def form_data(**changes) -> dict:
    data = {
        "name": "Amazon US",
        "enabled": "on",
        "priority": "70",
        "seller_id": "A2SELLER",
        "region": "na",
        "marketplace_ids": '["ATVPDKIKX0DER"]',
        "lwa_client_id": "amzn1.application-oa2-client.x",
        "lwa_client_secret": SECRET,
        "refresh_token": REFRESH,
        "api_base_url": "",
        "token_url": "https://api.amazon.com/auth/o2/token",
        "timeout_seconds": "10",
        "fulfillment_channel_code": "DEFAULT",
        "condition_types": "{}",
        "default_product_type": "GUITARS",
        "pull_interval_seconds": "300",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "3600",
        "stock_buffer_percent": "0",
        "sqs_queue_url": "",
        "sqs_region": "",
        "sqs_endpoint_url": "",
        "aws_access_key_id": "",
        "aws_secret_access_key": "",
    }
    data.update(changes)
    return data


def test_staff_add_an_amazon_connection_and_the_secrets_are_never_shown_back(admin_client_for, staff, account):
    client = admin_client_for(staff)
    response = client.post(ADD_URL, form_data())
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connection = AmazonConnection.objects.get()
    assert (connection.account, connection.channel, connection.refresh_token) == (account, "amazon", REFRESH)
    assert connection.api_host == "https://sellingpartnerapi-na.amazon.com"

    page = client.get(f"/admin/channels_amazon/amazonconnection/{connection.pk}/change/").content.decode()
    assert SECRET not in page and REFRESH not in page
    assert "Polling only" in page

    # Saving with the secrets left blank keeps them
    response = client.post(
        f"/admin/channels_amazon/amazonconnection/{connection.pk}/change/",
        form_data(lwa_client_secret="", refresh_token="", name="Amazon US main"),
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.lwa_client_secret, connection.refresh_token) == (
        "Amazon US main",
        SECRET,
        REFRESH,
    )


def test_the_connections_api_takes_amazon_with_write_only_secrets(api):
    body = {
        "channel": "amazon",
        "name": "Amazon US",
        "seller_id": "A2SELLER",
        "lwa_client_id": "amzn1.application-oa2-client.x",
        "lwa_client_secret": SECRET,
        "refresh_token": REFRESH,
    }
    response = api.post("/api/v1/connections/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert SECRET not in response.content.decode() and REFRESH not in response.content.decode()
    assert set(data["secrets"]) == {"lwa_client_secret", "refresh_token", "aws_secret_access_key"}
    assert data["priority"] == channel("amazon").DEFAULT_PRIORITY == 70
    assert data["marketplace_ids"] == ["ATVPDKIKX0DER"]
    assert AmazonConnection.objects.get(pk=data["id"]).refresh_token == REFRESH


def test_the_demo_command_connects_the_demo_shop_and_offers_its_items_once(account):
    import io

    from django.core.management import call_command

    from channels_amazon.models import AmazonItemAttributes
    from inventory.models import ChannelListing
    from tests.factories import make_item

    item = make_item(account, n=1, sku="DEMO-001")
    call_command("amazon_demo", account=account.slug, stdout=io.StringIO())
    call_command("amazon_demo", account=account.slug, stdout=io.StringIO())

    connection = AmazonConnection.objects.get(account=account)
    assert connection.api_host == "http://127.0.0.1:8771"
    assert AmazonItemAttributes.objects.get(item=item).asin == "B07N4M94X4"
    assert ChannelListing.objects.filter(item=item, connection=connection).count() == 1


def test_a_running_sandbox_sells_through_its_control_endpoint():
    import io

    from django.core.management import call_command

    from channels_amazon.sandbox import AmazonSandbox

    with AmazonSandbox() as sandbox:
        sandbox.add_external_listing("S-1", asin="B07N4M94X4", price="10.00", quantity=2)
        out = io.StringIO()
        call_command("amazon_simulate_sale", sku="S-1", url=sandbox.base_url, stdout=out)
        assert "Amazon order 111-" in out.getvalue()
        [order] = sandbox.all_orders()
        assert order["orderItems"][0]["product"]["sellerSku"] == "S-1"
