"""The Shopify connection admin and product pages as shop staff use them, the API serializer, the commands."""

import pytest
from django.core.management import call_command
from django.utils import timezone

from channels_shopify import sync
from channels_shopify.models import ShopifyConnection, ShopifyProductDetail
from channels_shopify.sandbox import ShopifySandbox
from tests.shopify_market import shopify_connection

pytestmark = pytest.mark.django_db

TOKEN = "shpat_0123456789abcdef0123456789ab"
SECRET = "shpss_secret_0123456789abcdefwxyz"
ADD_URL = "/admin/channels_shopify/shopifyconnection/add/"
LIST_URL = "/admin/channels_shopify/shopifyconnection/"


def form_data(**changes) -> dict:
    data = {
        "name": "Shop website",
        "enabled": "on",
        "priority": "10",
        "shop_domain": "blue-note-guitars.myshopify.com",
        "access_token": TOKEN,
        "webhook_secret": SECRET,
        "api_version": "2025-01",
        "location_id": "gid://shopify/Location/1",
        "api_url": "",
        "timeout_seconds": "10",
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "stock_buffer_percent": "0",
    }
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()


def test_staff_add_a_connection_and_its_secrets_are_never_shown_back(admin_client_for, staff, account):
    client = admin_client_for(staff)
    new_page = client.get(ADD_URL).content.decode()
    assert 'name="priority" value="10"' in new_page  # Shopify is first in the platform order

    response = client.post(ADD_URL, form_data())

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connection = ShopifyConnection.objects.get()
    assert (connection.account, connection.channel, connection.access_token, connection.webhook_secret) == (
        account,
        "shopify",
        TOKEN,
        SECRET,
    )
    assert connection.endpoint == "https://blue-note-guitars.myshopify.com/admin/api/2025-01/graphql.json"
    change_page = client.get(f"{LIST_URL}{connection.pk}/change/").content.decode()
    assert TOKEN not in change_page and SECRET not in change_page
    assert "set, ends …89ab" in change_page and "set, ends …wxyz" in change_page

    # blank on edit keeps both secrets
    response = client.post(
        f"{LIST_URL}{connection.pk}/change/", form_data(access_token="", webhook_secret="", name="Web")
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.access_token, connection.webhook_secret) == ("Web", TOKEN, SECRET)


def test_a_store_address_that_is_not_myshopify_is_refused(admin_client_for, staff):
    response = admin_client_for(staff).post(ADD_URL, form_data(shop_domain="www.blue-note-guitars.com"))
    assert response.status_code == 200
    assert "myshopify.com address" in response.content.decode()
    assert not ShopifyConnection.objects.exists()


def test_the_check_action_reports_in_plain_words(admin_client_for, staff, account):
    with ShopifySandbox() as shop:
        good = shopify_connection(account, shop, name="Good")
        bad = shopify_connection(account, shop, name="Bad", access_token="shpat_wrong_token_value")
        response = admin_client_for(staff).post(
            LIST_URL, {"action": "check_connection", "_selected_action": [good.pk, bad.pk]}, follow=True
        )
        page = response.content.decode()
        assert "Good: Everything works: The token works for Sandbox Guitars." in page
        assert "Bad: To fix: Access token: Shopify refused ShopCheck (401)" in page
        assert "shpat_wrong_token_value" not in page
        assert [r for r in shop.requests() if r.is_mutation] == []


def test_a_product_page_links_to_the_shopify_admin_and_shows_what_shopify_refused(admin_client_for, staff, account):
    connection = ShopifyConnection.objects.create(
        account=account, name="Web", shop_domain="blue-note-guitars.myshopify.com", access_token=TOKEN
    )
    ShopifyProductDetail.objects.create(
        account=account,
        connection=connection,
        product_id="gid://shopify/Product/4242",
        sku="JM-62",
        status="ACTIVE",
        user_errors=[{"field": ["variants", "0", "price"], "message": "Price must be greater than or equal to 0"}],
        notes=["SEO title shortened to Shopify's 70 characters (was 80)."],
        last_seen_at=timezone.now(),
    )
    client = admin_client_for(staff)

    page = client.get("/admin/channels_shopify/shopifyproductdetail/").content.decode()

    assert 'href="https://blue-note-guitars.myshopify.com/admin/products/4242"' in page
    assert "Refused: variants.0.price: Price must be greater than or equal to 0" in page
    assert "SEO title shortened" in page
    assert client.get("/admin/channels_shopify/shopifyproductdetail/add/").status_code == 403


def test_the_api_serializer_keeps_the_secrets_write_only(api, account):
    response = api.post(
        "/api/v1/connections/",
        {"channel": "shopify", **{k: v for k, v in form_data().items() if k not in ("enabled",)}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert "access_token" not in body and "webhook_secret" not in body
    assert body["secrets"] == {"access_token": "set, ends …89ab", "webhook_secret": "set, ends …wxyz"}
    assert (body["shop_domain"], body["priority"]) == ("blue-note-guitars.myshopify.com", 10)


def test_the_webhooks_command_registers_the_subscriptions(account, capsys):
    with ShopifySandbox() as shop:
        connection = shopify_connection(account, shop, name="Web")
        call_command("shopify_webhooks", "Web", "--base-url", "https://bo.example.com")
        out = capsys.readouterr().out
        assert "Web: orders/create: registered" in out
        assert len(shop.store.subscriptions) == 5
        assert {s["callbackUrl"] for s in shop.store.subscriptions.values()} == {
            "https://bo.example.com" + connection.webhook_path
        }


def test_the_demo_command_connects_the_loopback_store_and_lists_once(account, capsys):
    from inventory.models import ChannelListing
    from tests.factories import make_item

    item = make_item(account, n=1, sku="DEMO-001")
    call_command("shopify_demo", "--account", account.slug)
    connection = ShopifyConnection.objects.get(account=account)
    assert (connection.endpoint, connection.priority) == ("http://127.0.0.1:8767/admin/api/2025-01/graphql.json", 10)
    assert list(ChannelListing.objects.filter(connection=connection).values_list("item_id", flat=True)) == [item.pk]

    call_command("shopify_demo", "--account", account.slug)
    assert "kept:" in capsys.readouterr().out
    assert ShopifyConnection.objects.count() == 1 and ChannelListing.objects.count() == 1
