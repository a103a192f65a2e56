"""The eBay client against the loopback eBay: OAuth and its cache, headers, typed errors, paging; and the
webhook endpoint with eBay's challenge and signatures (nothing stored for a rejected delivery)."""

import hashlib
import threading

import pytest

from channels_ebay.client import (
    EbayClient,
    EbayListingNotFound,
    EbayRequestError,
    EbayTransientError,
    error_for,
    orders_filter,
)
from channels_ebay.models import EbayConnection
from channels_ebay.sandbox import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, EbaySandbox
from inventory.channels import RateLimited, TransientChannelError, retry_transient
from inventory.models import WebhookEvent


@pytest.fixture
def sandbox():
    with EbaySandbox() as running:
        yield running


def make_client(sandbox, **overrides):
    fields = {
        "api_base_url": sandbox.base_url,
        "token_url": sandbox.token_url,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "timeout": 2.0,
    }
    return EbayClient(**{**fields, **overrides})


def test_secrets_stay_out_of_the_repr():
    client = EbayClient("https://api.ebay.com", "https://api.ebay.com/t", "app", "s3cr3t-value", "v^1.1#refresh")
    assert "s3cr3t" not in repr(client) and "refresh" not in repr(client).replace("refresh_token", "")


def test_the_access_token_is_shared_by_every_client_until_shortly_before_expiry(sandbox):
    first, second = make_client(sandbox), make_client(sandbox)
    assert first.get_location("main-warehouse")["merchantLocationKey"] == "main-warehouse"
    assert second.get_location("main-warehouse") is not None  # another worker: same cached token
    assert sandbox.token_grants == ["refresh_token"]
    grant = sandbox.requests("POST", "/identity/v1/oauth2/token")[0]
    assert grant.body["grant_type"] == "refresh_token"
    assert grant.body["scope"].split() == [
        "https://api.ebay.com/oauth/api_scope/sell.inventory",
        "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
        "https://api.ebay.com/oauth/api_scope/sell.account",
    ]


def test_a_token_about_to_expire_is_refreshed_before_use(sandbox):
    sandbox.token_lifetime = 200  # under the 300 s margin: never reused
    client = make_client(sandbox)
    client.get_location("main-warehouse")
    client.get_location("main-warehouse")
    assert sandbox.token_grants == ["refresh_token", "refresh_token"]


def test_concurrent_workers_refresh_once(sandbox):
    clients = [make_client(sandbox) for _ in range(6)]
    start = threading.Barrier(6)

    def work(client):
        start.wait()
        client.get_location("main-warehouse")

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sandbox.token_grants == ["refresh_token"]


def test_a_401_refreshes_once_and_retries_once(sandbox):
    client = make_client(sandbox)
    client.get_location("main-warehouse")
    sandbox.expire_tokens()
    assert client.get_location("main-warehouse") is not None
    assert sandbox.token_grants == ["refresh_token", "refresh_token"]
    assert [r.status for r in sandbox.requests("GET", "/sell/inventory/v1/location")] == [200, 401, 200]


def test_app_token_for_the_public_key(sandbox):
    client = make_client(sandbox)
    key = client.public_key(sandbox.kid)
    assert key["algorithm"] == "ECDSA" and key["key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert client.public_key("nope") is None
    assert sandbox.token_grants == ["client_credentials"]


def test_errors_are_typed_with_ebays_words():
    body = {
        "errors": [
            {
                "errorId": 25709,
                "domain": "API_INVENTORY",
                "category": "REQUEST",
                "message": "Invalid value for price.",
                "longMessage": "Invalid value for price. The price must be positive.",
                "parameters": [{"name": "field", "value": "price"}],
            }
        ]
    }
    refused = error_for(400, body)
    assert isinstance(refused, EbayRequestError) and not refused.transient
    assert refused.message == "eBay 25709: Invalid value for price. The price must be positive. (field: price)"
    assert refused.error_ids == {25709}
    assert isinstance(error_for(400, {"errors": [{"errorId": 25001, "message": "System error"}]}), EbayTransientError)
    assert isinstance(error_for(500, {"errors": [{"errorId": 25025, "message": "Concurrent"}]}), EbayTransientError)
    assert isinstance(error_for(503, "Service Unavailable"), TransientChannelError)
    assert isinstance(error_for(404, {"errors": [{"errorId": 25713}]}), EbayListingNotFound)
    limited = error_for(429, {}, retry_after="3")
    assert isinstance(limited, RateLimited) and limited.retry_after == 3.0
    assert "25020" in error_for(400, {"errors": [{"errorId": 25020, "message": "Invalid package weight"}]}).message


def test_faults_come_back_typed_and_retry_transient_rides_out_25001(sandbox):
    client = make_client(sandbox)
    sandbox.fail_next("error", path_prefix="/sell/inventory/v1/location")
    with pytest.raises(EbayTransientError, match="25001"):
        client.get_location("main-warehouse")
    sandbox.fail_next("system", path_prefix="/sell/inventory/v1/location", count=2)
    assert retry_transient(client.get_location, "main-warehouse", delay=0.01) is not None
    sandbox.fail_next("rate_limit", path_prefix="/sell/inventory/v1/location")
    with pytest.raises(RateLimited):
        client.get_location("main-warehouse")


def test_no_answer_is_transient(sandbox):
    client = make_client(sandbox, timeout=0.3)
    sandbox.set_faults(timeout_delay=0.6)
    sandbox.fail_next("timeout", path_prefix="/sell/inventory/v1/location")
    with pytest.raises(EbayTransientError, match="did not answer"):
        client.get_location("main-warehouse")


def test_the_orders_filter_is_one_percent_encoded_string():
    from datetime import UTC, datetime

    assert orders_filter(datetime(2024, 5, 1, tzinfo=UTC)) == "lastmodifieddate:%5B2024-05-01T00:00:00.000Z..%5D"
    assert orders_filter(None) is None


def test_inventory_items_page_by_page_index(sandbox):
    with sandbox.store.lock:
        for n in range(205):
            sandbox.store.items[f"P-{n:03d}"] = {"sku": f"P-{n:03d}", "product": {"title": "x"}}
    client = make_client(sandbox)
    pages = list(client.inventory_items())
    assert [len(p.items) for p in pages] == [100, 100, 5]
    assert [r.query["offset"] for r in sandbox.requests("GET", "/sell/inventory/v1/inventory_item")] == ["0", "1", "2"]


# --- the webhook endpoint ------------------------------------------------------------------------


@pytest.fixture
def connection(account, sandbox):
    return EbayConnection.objects.create(
        account=account, name="eBay hooks", verification_token="t" * 40, **sandbox.connection_fields()
    )


@pytest.mark.django_db
def test_the_challenge_hashes_the_url_the_connection_was_registered_with(client, connection):
    answer = client.get(connection.webhook_path, {"challenge_code": "c0de"})
    expected = hashlib.sha256(("c0de" + "t" * 40 + f"http://testserver{connection.webhook_path}").encode()).hexdigest()
    assert (answer.status_code, answer.json()) == (200, {"challengeResponse": expected})
    connection.endpoint_url = "https://shop.example.com/hooks/ebay/registered/"
    connection.save()
    answer = client.get(connection.webhook_path, {"challenge_code": "c0de"})
    expected = hashlib.sha256(("c0de" + "t" * 40 + connection.endpoint_url).encode()).hexdigest()
    assert answer.json() == {"challengeResponse": expected}


@pytest.mark.django_db
def test_a_signed_notification_is_stored_once_and_a_redelivery_is_a_duplicate(client, connection, sandbox):
    body, headers = sandbox.signed(sandbox.notification("ORDER_CONFIRMATION", {"orderId": "1-2-3"}, "nid-1"))
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}

    first = client.post(connection.webhook_path, body, content_type="application/json", **extra)
    again = client.post(connection.webhook_path, body, content_type="application/json", **extra)

    assert (first.status_code, first.content, again.status_code, again.content) == (200, b"stored", 200, b"duplicate")
    event = WebhookEvent.objects.get()
    assert (event.topic, event.dedupe_key, event.deliveries) == ("ORDER_CONFIRMATION", "ORDER_CONFIRMATION:nid-1", 2)


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", ["body", "missing", "kid"])
def test_a_bad_or_unknown_signature_is_412_and_nothing_is_stored(client, connection, sandbox, tamper):
    body, headers = sandbox.signed(
        sandbox.notification("ORDER_CONFIRMATION", {"orderId": "1-2-3"}, "nid-2"),
        kid="someone-elses-key" if tamper == "kid" else None,
    )
    if tamper == "body":
        body = body.replace(b"1-2-3", b"1-2-4")
    extra = {} if tamper == "missing" else {"HTTP_X_EBAY_SIGNATURE": headers["X-EBAY-SIGNATURE"]}
    answer = client.post(connection.webhook_path, body, content_type="application/json", **extra)
    assert answer.status_code == 412
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_account_deletion_anonymises_that_buyers_orders(client, connection, sandbox, account):
    from decimal import Decimal

    from channels_ebay import sync
    from inventory.channels import ListingPayload
    from inventory.models import Order
    from inventory.services.sync import webhook_process
    from tests.factories import make_item

    make_item(account, sku="DEL-1")
    payload = ListingPayload("DEL-1", "Amp", "Amp", Decimal("10"), "USD", 1, photos=("https://x.example/a.jpg",))
    connection.category_ids = {"": "33034"}
    connection.save()
    sync.publish(connection, payload, None)
    sandbox.simulate_sale("DEL-1", buyer="gone_user", deliver=False)
    from inventory.services.sync import connection_pull

    connection_pull(connection_id=connection.pk)
    order = Order.objects.get(connection=connection)
    assert order.buyer_name == "Loopback Buyer"

    body, headers = sandbox.signed(sandbox.notification("MARKETPLACE_ACCOUNT_DELETION", {"username": "gone_user"}))
    answer = client.post(
        connection.webhook_path,
        body,
        content_type="application/json",
        HTTP_X_EBAY_SIGNATURE=headers["X-EBAY-SIGNATURE"],
    )
    assert answer.status_code == 200
    event = WebhookEvent.objects.get(topic="MARKETPLACE_ACCOUNT_DELETION")
    webhook_process(event_id=event.pk)

    order.refresh_from_db()
    assert (order.buyer_name, order.buyer_email, order.ship_line1, order.ship_city) == (
        "(deleted eBay user)",
        "",
        "",
        "",
    )
    assert order.total == Decimal("10.00")  # the books keep the sale


def test_the_sandbox_keeps_its_shop_across_restarts(tmp_path):
    state = str(tmp_path / "ebay.state")
    with EbaySandbox(state_file=state) as first:
        client = make_client(first)
        client.put_inventory_item("KEPT-1", {"product": {"title": "Kept", "imageUrls": ["https://x.example/a.jpg"]}})
        kid = first.kid
    with EbaySandbox(state_file=state) as second:
        assert second.kid == kid
        assert second.store.items["KEPT-1"]["product"]["title"] == "Kept"
        body, headers = second.signed(second.notification("ORDER_CONFIRMATION", {"orderId": "1"}))
        from channels_ebay import webhooks

        pem = make_client(second).public_key(kid)["key"]
        assert webhooks.verify(
            None, body, webhooks.decode_signature_header(headers["X-EBAY-SIGNATURE"])["signature"], pem
        )
