"""The WooCommerce connection in the admin, over the API serializer, and through the shop's grant flow."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from channels_woocommerce import access, sync
from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox
from channels_woocommerce.serializers import WooCommerceConnectionSerializer
from channels_woocommerce.services import GrantRefused, grant_receive, grant_start

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/channels_woocommerce/woocommerceconnection/add/"
LIST_URL = "/admin/channels_woocommerce/woocommerceconnection/"
KEY = "ck_0123456789abcdef0123456789abcdef01234567"
SECRET = "cs_0123456789abcdef0123456789abcdef01234567"


def form_data(**changes) -> dict:
    data = {
        "name": "Website",
        "enabled": "on",
        "priority": "60",
        "store_url": "https://shop.example.com",
        "auth_method": "auto",
        "consumer_key": KEY,
        "consumer_secret": SECRET,
        "webhook_secret": "",
        "timeout_seconds": "15",
        "category_ids": '{"Amplifiers": [18]}',
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "300",
        "stock_buffer_percent": "0",
    }
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def _fresh_clients():
    access._clients.__dict__.clear()


def test_staff_add_a_connection_and_the_secrets_are_never_shown_back(admin_client_for, staff, account):
    client = admin_client_for(staff)
    response = client.post(ADD_URL, form_data())
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connection = WooCommerceConnection.objects.get()
    assert (connection.account, connection.channel, connection.consumer_secret) == (account, "woocommerce", SECRET)
    assert len(connection.webhook_secret) > 30  # a random one was made
    page = client.get(f"{LIST_URL}{connection.pk}/change/").content.decode()
    assert SECRET not in page and KEY not in page and connection.webhook_secret not in page
    assert "ends …4567" in page

    # Saving with the secrets blank keeps them
    response = client.post(f"{LIST_URL}{connection.pk}/change/", form_data(consumer_key="", consumer_secret=""))
    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.consumer_key, connection.consumer_secret) == (KEY, SECRET)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"store_url": "http://shop.example.com"}, "Use https://"),
        ({"consumer_key": "nope"}, "start with ck_"),
        ({"consumer_secret": ""}, "go together"),
        ({"category_ids": '{"Amps": ["x"]}'}, "whole numbers"),
    ],
)
def test_the_form_says_what_is_wrong(admin_client_for, staff, changes, message):
    response = admin_client_for(staff).post(ADD_URL, form_data(**changes))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not WooCommerceConnection.objects.exists()


def test_names_are_unique_per_account_and_channel(admin_client_for, staff, account):
    WooCommerceConnection.objects.create(account=account, name="Website", store_url="https://a.example.com")
    response = admin_client_for(staff).post(ADD_URL, form_data())
    assert "already has a WooCommerce connection with this name" in response.content.decode()
    assert WooCommerceConnection.objects.count() == 1


def test_the_check_action_reports_in_plain_words(admin_client_for, staff, account):
    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(
            account=account,
            name="Website",
            store_url=shop.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
        )
        response = admin_client_for(staff).post(
            LIST_URL, {"action": "check_connection", "_selected_action": [connection.pk]}, follow=True
        )
    text = response.content.decode()
    assert "Website: To fix: Webhooks: not subscribed" in text


def test_the_serializer_takes_secrets_and_shows_only_hints(account):
    connection = WooCommerceConnection.objects.create(
        account=account, name="Website", store_url="https://shop.example.com", consumer_key=KEY, consumer_secret=SECRET
    )
    shown = WooCommerceConnectionSerializer(connection).data
    assert not {"consumer_key", "consumer_secret", "webhook_secret"} & set(shown)
    assert shown["secrets"]["consumer_secret"] == "set, ends …4567" and shown["channel"] == "woocommerce"
    serializer = WooCommerceConnectionSerializer(connection, data={"consumer_secret": "", "name": "Site"}, partial=True)
    assert serializer.is_valid(), serializer.errors
    serializer.save()
    connection.refresh_from_db()
    assert (connection.name, connection.consumer_secret) == ("Site", SECRET)
    assert WooCommerceConnectionSerializer.Meta.secret_fields == ("consumer_key", "consumer_secret", "webhook_secret")


# --- the grant flow -----------------------------------------------------------------------------


def test_keys_for_another_request_are_refused_and_nothing_is_stored(account):
    connection = WooCommerceConnection.objects.create(
        account=account, name="Website", store_url="https://s.example.com"
    )
    grant = {"key_id": 1, "consumer_key": KEY, "consumer_secret": SECRET, "key_permissions": "read_write"}
    with pytest.raises(GrantRefused, match="No connection is waiting"):
        grant_receive(connection.pk, {**grant, "user_id": f"{connection.pk}:guess"})
    grant_start(connection, return_url="https://bo.example.com/", callback_url="https://bo.example.com/cb/")
    with pytest.raises(GrantRefused, match="another request"):
        grant_receive(connection.pk, {**grant, "user_id": f"{connection.pk}:guess"})
    connection.refresh_from_db()
    assert (connection.consumer_key, connection.consumer_secret) == ("", "")


@pytest.mark.django_db(transaction=True)
def test_the_shop_posts_the_approved_key_to_the_callback_for_the_pending_connection(account, live_server):
    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(account=account, name="Website", store_url=shop.store_url)
        callback = f"{live_server.url}/channels/woocommerce/grant/{connection.pk}/"
        url = grant_start(connection, return_url=f"{live_server.url}/admin/", callback_url=callback)
        assert url.startswith(f"{shop.store_url}/wc-auth/v1/authorize?")

        # The shop owner opens the page and approves
        answer = requests.get(url, allow_redirects=False, timeout=10)

        assert answer.status_code == 302
        assert parse_qs(urlsplit(answer.headers["Location"]).query)["success"] == ["1"]
        connection.refresh_from_db()
        assert connection.consumer_key.startswith("ck_") and connection.consumer_secret.startswith("cs_")
        assert (connection.key_permissions, connection.grant_nonce) == ("read_write", "")
        # And the new key works
        assert sync.check(connection).steps[1].ok
        # A second post of the same grant is refused: the nonce was used
        replay = requests.post(
            callback,
            json={
                "key_id": 9,
                "user_id": "x",
                "consumer_key": KEY,
                "consumer_secret": SECRET,
                "key_permissions": "read",
            },
            timeout=5,
        )
        assert replay.status_code == 403
        connection.refresh_from_db()
        assert connection.key_permissions == "read_write"


# --- commands -----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_register_command_subscribes_the_webhooks_and_says_so(account, live_server):
    from io import StringIO

    from django.core.management import call_command

    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(
            account=account,
            name="Website",
            store_url=shop.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
        )
        out = StringIO()
        call_command("woocommerce_register_webhooks", "Website", "--base-url", live_server.url, stdout=out)
        assert out.getvalue().count("subscribed (webhook") == 4
        assert [d.status for d in shop.deliveries if d.topic == "ping"] == [200] * 4
        assert {h["delivery_url"] for h in shop.webhooks()} == {live_server.url + connection.webhook_path}


def test_the_simulate_sale_command_sells_on_a_running_shop():
    from io import StringIO

    from django.core.management import call_command

    with WooSandbox() as shop:
        shop.add_external_product("DEMO-001", quantity=1)
        out = StringIO()
        call_command("woocommerce_simulate_sale", "--sku", "DEMO-001", "--sandbox-url", shop.store_url, stdout=out)
        [order] = shop.orders()
        assert f"Order {order['id']} (processing)" in out.getvalue()
        assert shop.product("DEMO-001")["stock_quantity"] == 0


def test_the_demo_command_connects_the_demo_shop_and_lists_its_catalogue(db):
    from io import StringIO

    from django.core.management import call_command

    from inventory.models import ChannelListing

    call_command("create_demo", stdout=StringIO())
    out = StringIO()
    call_command("woocommerce_demo", stdout=out)
    call_command("woocommerce_demo", stdout=StringIO())  # safe to run again
    [connection] = WooCommerceConnection.objects.filter(name="Website (WooCommerce sandbox)")
    assert (connection.store_url, connection.priority) == ("http://127.0.0.1:8768", 60)
    assert ChannelListing.objects.filter(connection=connection).count() > 0
    assert "created:" in out.getvalue()


def test_a_connection_is_made_over_the_api_with_the_default_priority_and_hinted_secrets(api, account):
    answer = api.post(
        "/api/v1/connections/",
        {
            "channel": "woocommerce",
            "name": "Website",
            "store_url": "https://shop.example.com",
            "consumer_key": KEY,
            "consumer_secret": SECRET,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["channel"], body["priority"]) == ("woocommerce", 60)
    assert body["secrets"]["consumer_secret"] == "set, ends …4567" and "consumer_secret" not in body
    assert body["secrets"]["webhook_secret"].startswith("set, ends")
    connection = WooCommerceConnection.objects.get()
    assert (connection.consumer_key, connection.consumer_secret) == (KEY, SECRET)
    refused = api.post(
        "/api/v1/connections/",
        {"channel": "woocommerce", "name": "Plain", "store_url": "http://shop.example.com"},
        format="json",
    )
    assert refused.status_code == 400 and "https" in str(refused.json())
