"""WooCommerce webhooks: signatures over the raw bytes, the ping, dedupe, registration, disabled webhooks."""

import json

import pytest

from channels_woocommerce import sync, webhooks
from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox, php_json, sign
from inventory.channels import WebhookRejected, WebhookReply, WebhookSeen
from inventory.models import WebhookEvent
from tests.test_woocommerce_sync import STRAT

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789"
ORDER = {
    "id": 5001,
    "status": "processing",
    "currency": "USD",
    "date_created_gmt": "2026-12-04T10:00:00",
    "date_modified_gmt": "2026-12-04T10:00:05",
    "total": "5025.00",
    "line_items": [{"product_id": 101, "sku": "WC-1964", "quantity": 1, "price": 5000}],
    "_links": {"self": [{"href": "https://shop.example.com/wp-json/wc/v3/orders/5001"}]},
}


def delivery_headers(body: bytes, secret: str = SECRET, topic: str = "order.created", delivery_id: str = "d-1"):
    return {
        "X-WC-Webhook-Source": "https://shop.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[1],
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-ID": "3",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


@pytest.fixture
def connection(account):
    return WooCommerceConnection.objects.create(
        account=account,
        name="Website",
        store_url="https://shop.example.com",
        consumer_key=DEFAULT_KEY,
        consumer_secret=DEFAULT_SECRET,
        webhook_secret=SECRET,
    )


def post(client, connection, body: bytes, headers: dict, content_type="application/json"):
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    return client.post(connection.webhook_path, data=body, content_type=content_type, **meta)


# --- pure: signature and identity ---------------------------------------------------------


def test_the_signature_is_checked_over_the_raw_bytes_and_a_reserialised_body_fails():
    body = php_json(ORDER)  # as WordPress writes it: slashes escaped
    assert b"https:\\/\\/shop.example.com" in body
    seen = webhooks.identify(SECRET, delivery_headers(body), body)
    assert isinstance(seen, WebhookSeen) and seen.topic == "order.created"

    reserialised = json.dumps(json.loads(body)).encode()  # the same JSON, other bytes
    assert json.loads(reserialised) == json.loads(body)
    with pytest.raises(WebhookRejected) as rejected:
        webhooks.identify(SECRET, delivery_headers(body), reserialised)
    assert rejected.value.http_status == 401


@pytest.mark.parametrize(
    ("headers_secret", "tamper", "drop_header", "why"),
    [
        ("another-secret", False, False, "does not match"),
        (SECRET, True, False, "does not match"),
        (SECRET, False, True, "without X-WC-Webhook-Signature"),
    ],
    ids=["wrong secret", "changed body", "missing header"],
)
def test_a_bad_or_missing_signature_is_rejected_401(headers_secret, tamper, drop_header, why):
    body = php_json(ORDER)
    headers = delivery_headers(body, secret=headers_secret)
    if drop_header:
        del headers["X-WC-Webhook-Signature"]
    if tamper:
        body = body.replace(b'"total":"5025.00"', b'"total":"1.00"')
    with pytest.raises(WebhookRejected, match=why) as rejected:
        webhooks.identify(SECRET, headers, body)
    assert rejected.value.http_status == 401


def test_the_ping_is_answered_and_carries_nothing_to_store():
    reply = webhooks.identify(SECRET, {"Content-Type": "application/x-www-form-urlencoded"}, b"webhook_id=12")
    assert reply == WebhookReply(status=200, body={"ping": "ok", "webhook_id": 12})
    # A body that only looks like a ping but claims a topic is a delivery, and must be signed
    with pytest.raises(WebhookRejected):
        webhooks.identify(SECRET, {"X-WC-Webhook-Topic": "order.created"}, b"webhook_id=12")


def test_a_retry_with_a_new_delivery_id_is_the_same_event_and_a_new_change_is_not():
    body = php_json(ORDER)
    first = webhooks.identify(SECRET, delivery_headers(body, delivery_id="d-1"), body)
    retry = webhooks.identify(SECRET, delivery_headers(body, delivery_id="d-2"), body)
    changed = php_json({**ORDER, "status": "completed", "date_modified_gmt": "2026-12-04T11:00:00"})
    later = webhooks.identify(SECRET, delivery_headers(changed, topic="order.updated", delivery_id="d-3"), changed)
    assert first.dedupe_key == retry.dedupe_key == "order.created:5001:2026-12-04T10:00:05:processing"
    assert later.dedupe_key != first.dedupe_key
    deleted = webhooks.identify(
        SECRET, delivery_headers(b'{"id":101}', topic="product.deleted", delivery_id="d-9"), b'{"id":101}'
    )
    assert deleted.dedupe_key == "product.deleted:delivery:d-9"


def test_the_order_a_delivery_carries_is_read_from_its_signed_body(connection):
    body = php_json(ORDER)
    seen = sync.parse_webhook(connection, delivery_headers(body), body)
    [order] = sync.webhook_orders(connection, seen)
    assert (order.external_id, order.status, order.lines[0].sku, order.lines[0].external_listing_id) == (
        "5001",
        "paid",
        "WC-1964",
        "101",
    )
    draft = WebhookSeen("order.created", "k", {**ORDER, "status": "checkout-draft"})
    assert sync.webhook_orders(connection, draft) == []  # a cart, not a sale
    product_event = WebhookSeen("product.updated", "k", {"id": 101})
    assert sync.webhook_orders(connection, product_event) == []


# --- through the endpoint: stored once, or not at all -------------------------------------------


def test_a_signed_delivery_is_stored_once_and_a_replay_is_a_duplicate(client, connection):
    body = php_json(ORDER)
    answer = post(client, connection, body, delivery_headers(body))
    assert (answer.status_code, answer.content) == (200, b"stored")
    replay = post(client, connection, body, delivery_headers(body))
    assert (replay.status_code, replay.content) == (200, b"duplicate")
    event = WebhookEvent.objects.get()
    assert (event.topic, event.deliveries, event.payload["id"]) == ("order.created", 2, 5001)


@pytest.mark.parametrize("case", ["wrong secret", "changed body", "missing header"])
def test_a_rejected_delivery_answers_401_and_stores_nothing(client, connection, case):
    body = php_json(ORDER)
    headers = delivery_headers(body, secret="not-the-secret" if case == "wrong secret" else SECRET)
    if case == "missing header":
        del headers["X-WC-Webhook-Signature"]
    if case == "changed body":
        body = body.replace(b"processing", b"completed")
    answer = post(client, connection, body, headers)
    assert answer.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_the_ping_gets_200_through_the_endpoint_and_stores_nothing(client, connection):
    answer = client.post(
        connection.webhook_path, data=b"webhook_id=7", content_type="application/x-www-form-urlencoded"
    )
    assert answer.status_code == 200 and answer.json() == {"ping": "ok", "webhook_id": 7}
    assert not WebhookEvent.objects.exists()


# --- registration and the shop's own bookkeeping (the live server answers the ping) -----------------


@pytest.fixture
def live_connection(account, live_server):
    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(
            account=account,
            name="Website",
            store_url=shop.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
            timeout_seconds=5,
        )
        yield shop, connection
        assert shop.refused_by_index() == []


@pytest.mark.django_db(transaction=True)
def test_register_webhooks_subscribes_four_topics_once_and_each_ping_gets_200(live_connection, live_server):
    shop, connection = live_connection

    lines = sync.register_webhooks(connection, live_server.url)

    assert [line.split(":")[0] for line in lines] == list(sync.WEBHOOK_TOPICS)
    hooks = shop.webhooks()
    assert sorted(h["topic"] for h in hooks) == sorted(sync.WEBHOOK_TOPICS)
    assert {h["delivery_url"] for h in hooks} == {live_server.url + connection.webhook_path}
    assert {h["_secret"] for h in hooks} == {connection.webhook_secret}
    pings = [d for d in shop.deliveries if d.topic == "ping"]
    assert [d.status for d in pings] == [200] * 4
    assert not WebhookEvent.objects.exists()
    # Registering again changes nothing on the shop's side but the secret: still four
    again = sync.register_webhooks(connection, live_server.url)
    assert all("already subscribed" in line for line in again)
    assert len(shop.webhooks()) == 4


@pytest.mark.django_db(transaction=True)
def test_a_sale_is_delivered_signed_and_stored(live_connection, live_server):
    shop, connection = live_connection
    sync.register_webhooks(connection, live_server.url)
    sync.publish(connection, STRAT, None)

    from unittest import mock

    with mock.patch("inventory.services.sync._send_webhook"):  # the worker's side is tested end to end
        order = shop.simulate_sale("WC-1964")

    [delivery] = [d for d in shop.deliveries if d.topic == "order.created"]
    assert delivery.status == 200
    event = WebhookEvent.objects.get()
    assert (event.topic, event.payload["id"]) == ("order.created", order["id"])


@pytest.mark.django_db(transaction=True)
def test_the_shop_disables_a_webhook_after_more_than_5_failures_and_the_check_re_enables_it(
    live_connection, live_server
):
    shop, connection = live_connection
    sync.register_webhooks(connection, live_server.url)
    sync.publish(connection, STRAT, None)
    connection.webhook_secret = "rotated-but-not-on-the-shop"  # every delivery now fails our check (401)
    connection.save()

    for _ in range(6):
        shop.deliver("product.updated", shop.product("WC-1964"))
    statuses = {h["topic"]: h["status"] for h in shop.webhooks()}
    assert statuses["product.updated"] == "disabled"
    assert [d.status for d in shop.deliveries if d.topic == "product.updated"] == [401] * 6
    assert not WebhookEvent.objects.exists()

    from channels_woocommerce.services import connection_check
    from inventory.models import Alert

    check = connection_check(connection)
    [step] = [s for s in check.steps if s.label == "Webhooks"]
    [alert] = Alert.objects.filter(dedupe_key=f"woocommerce-webhooks-disabled:{connection.pk}")
    assert alert.title == "Website had stopped sending product.updated: re-enabled"
    assert step.ok and "had disabled product.updated (was disabled)" in step.message
    assert {h["topic"]: h["status"] for h in shop.webhooks()}["product.updated"] == "active"
    assert sync.disabled_webhooks(connection) == []
