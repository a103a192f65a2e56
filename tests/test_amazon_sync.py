"""The Amazon channel against its loopback SP-API: auth, rate limits, publish, revise, end, pull,
notifications, check. Every request the client sends is checked against Amazon's models by the
sandbox, and again here with a checker reading contracts/ through contract_path."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from channels_amazon import mappers, notifications, sync
from channels_amazon.client import OPERATION_LIMITS
from channels_amazon.models import AmazonConnection, AmazonItemAttributes, AmazonListingDetail
from channels_amazon.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SELLER_ID,
    AmazonSandbox,
)
from channels_amazon.sandbox.contract import SwaggerModels
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    ListingPayload,
    PermanentChannelError,
    RateLimited,
    WebhookSeen,
    channel,
)
from tests.contracts import contract_path
from tests.factories import make_item

pytestmark = pytest.mark.django_db

ASIN = "B07N4M94X4"


def payload(sku="AMZ-1", price="1299.00", quantity=1, condition="excellent", **more) -> ListingPayload:
    fields = {"title": "Fender Stratocaster", "description": "", "currency": "USD", **more}
    return ListingPayload(sku=sku, price=Decimal(price), quantity=quantity, condition=condition, **fields)


@pytest.fixture
def sandbox():
    with AmazonSandbox(rate_scale=100.0) as box:
        yield box
    assert box.violations == [], box.violations  # every request matched Amazon's models
    assert box.answer_violations == [], box.answer_violations


@pytest.fixture
def connection(account, sandbox):
    return AmazonConnection.objects.create(
        account=account,
        name="Amazon US",
        seller_id=DEFAULT_SELLER_ID,
        lwa_client_id=DEFAULT_CLIENT_ID,
        lwa_client_secret=DEFAULT_CLIENT_SECRET,
        refresh_token=DEFAULT_REFRESH_TOKEN,
        api_base_url=sandbox.base_url,
        token_url=sandbox.token_url,
        default_product_type="GUITARS",
        timeout_seconds=10.0,
    )


@pytest.fixture
def item(account):
    item = make_item(account, n=1, sku="AMZ-1", condition="excellent", price=Decimal("1299.00"))
    AmazonItemAttributes.objects.create(account=account, item=item, asin=ASIN, product_type="GUITARS")
    return item


def ops(sandbox) -> list[str]:
    return [r.operation for r in sandbox.requests()]


# --- the contract ---------------------------------------------------------------------------


def test_the_client_uses_every_rate_and_burst_the_models_document():
    models = SwaggerModels(contract_path("amazon", "models"))
    for operation, limits in OPERATION_LIMITS.items():
        prefix = "/orders/2026-01-01" if operation in ("searchOrders", "getOrder") else ""
        assert models.by_id(operation, prefix).usage_plan == limits, operation


def test_the_channel_is_registered_with_its_contract_attributes():
    module = channel("amazon")
    assert module is sync
    assert (sync.DEFAULT_PRIORITY, sync.NAME, sync.CONNECTION_MODEL) == (
        70,
        "amazon",
        "channels_amazon.AmazonConnection",
    )
    for name in ("publish", "revise", "end", "read_listing", "read_all_listings", "pull", "parse_webhook"):
        assert callable(getattr(sync, name))
    for name in ("webhook_orders", "find_listing", "check"):
        assert callable(getattr(sync, name))


def test_every_request_of_a_whole_lifecycle_matches_the_models(connection, sandbox, item):
    # Given a shop that lists, revises, ends, relists and pulls
    sync.publish(connection, payload(), None)
    sync.revise(connection, "AMZ-1", payload(price="1199.00"), frozenset({"price"}))
    sync.end(connection, "AMZ-1", END_SOLD_ELSEWHERE)
    sync.publish(connection, payload(), "AMZ-1")
    sync.pull(connection, None, full_scan=True)

    # Then each request, checked independently against the models in contracts/, is valid
    models = SwaggerModels(contract_path("amazon", "models"))
    assert len(sandbox.requests()) >= 10
    for request in sandbox.requests():
        from urllib.parse import urlsplit

        op, params = models.match(request.method, urlsplit(request.path).path)
        assert op.operation_id == request.operation
        assert models.request_problems(op, params, request.query, request.body) == [], request


# --- auth ---------------------------------------------------------------------------------


def test_one_access_token_is_shared_until_it_expires_then_refreshed_once_mid_run(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    assert sandbox.token_grants == 1

    # When Amazon expires the token in the middle of a run
    sandbox.expire_tokens()
    sync.revise(connection, "AMZ-1", payload(quantity=1, price="999.00"), frozenset({"price"}))

    # Then one fresh token is fetched, the refused call is repeated once, and the patch landed
    assert sandbox.token_grants == 2
    statuses = [(r.operation, r.status) for r in sandbox.requests("patchListingsItem")]
    assert statuses == [("patchListingsItem", 403), ("patchListingsItem", 200)]
    assert mappers.listing_price(sandbox.listing("AMZ-1"), "ATVPDKIKX0DER")[0] == Decimal("999.00")


def test_a_new_client_in_another_worker_reuses_the_cached_token(connection, sandbox, item):
    sync.client_for(connection).access_token()
    sync._clients.by_connection = {}  # another worker: no client of its own yet
    sync.read_listing(connection, "AMZ-1")
    assert sandbox.token_grants == 1


def test_a_refused_refresh_token_is_a_permanent_error_in_plain_words(connection, sandbox):
    connection.refresh_token = "Atzr|wrong"
    connection.save()
    with pytest.raises(PermanentChannelError, match="invalid_grant"):
        sync.read_listing(connection, "AMZ-1")
    result = sync.check(connection)
    assert not result.ok and "Login with Amazon" in result.summary


def test_secrets_never_appear_in_reprs(connection):
    text = repr(sync.client_for(connection)) + repr(sync.client_for(connection).credentials)
    assert DEFAULT_CLIENT_SECRET not in text and DEFAULT_REFRESH_TOKEN not in text


# --- rate limits --------------------------------------------------------------------------


def test_a_429_waits_and_retries_then_succeeds(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    sandbox.fail_next("getListingsItem", "rate_limit", times=2)
    seen = sync.read_listing(connection, "AMZ-1")
    assert seen.state == "live"
    assert [r.status for r in sandbox.requests("getListingsItem")][-3:] == [429, 429, 200]


def test_the_order_search_bucket_is_shared_and_refuses_a_long_wait(connection, sandbox):
    # Given the documented searchOrders plan (0.0056/s, burst 20) and the sandbox at true rate
    sandbox.set_faults(rate_scale=1.0)
    client = sync.client_for(connection)
    for _ in range(20):
        next(client.search_orders("2026-01-01T00:00:00Z"))
    assert cache.get(client._rate_key("searchOrders")) == pytest.approx(0.0056)

    # When a 21st search is asked for, by any worker
    sync._clients.by_connection = {}
    with pytest.raises(RateLimited) as raised:
        next(sync.client_for(connection).search_orders("2026-01-01T00:00:00Z"))

    # Then it is not sent: the engine is told to come back in about three minutes
    assert 170 < raised.value.retry_after < 181
    assert len(sandbox.requests("searchOrders")) == 20


# --- publish --------------------------------------------------------------------------------


def test_publish_validates_then_puts_then_reads_back_buyable(connection, sandbox, item):
    result = sync.publish(connection, payload(), None)

    assert result.external_id == "AMZ-1" and not result.adopted
    assert result.url == f"https://www.amazon.com/dp/{ASIN}"
    puts = sandbox.requests("putListingsItem")
    assert [r.query.get("mode") for r in puts] == ["VALIDATION_PREVIEW", None]
    body = puts[1].body
    assert body["requirements"] == "LISTING_OFFER_ONLY" and body["productType"] == "GUITARS"
    assert body["attributes"]["condition_type"] == [{"value": "used_very_good", "marketplace_id": "ATVPDKIKX0DER"}]
    assert body["attributes"]["merchant_suggested_asin"][0]["value"] == ASIN
    assert body["attributes"]["fulfillment_availability"] == [{"fulfillment_channel_code": "DEFAULT", "quantity": 1}]
    assert ops(sandbox)[-1] == "getListingsItem"
    detail = AmazonListingDetail.objects.get(connection=connection, sku="AMZ-1")
    assert detail.status == ["BUYABLE", "DISCOVERABLE"] and detail.asin == ASIN


def test_an_item_without_an_asin_is_refused_with_how_to_find_one(connection, sandbox, account):
    make_item(account, n=2, sku="NO-ASIN")
    with pytest.raises(PermanentChannelError) as raised:
        sync.publish(connection, payload(sku="NO-ASIN"), None)
    assert "has no ASIN" in raised.value.message and "/dp/" in raised.value.message
    assert sandbox.requests() == []  # nothing was sent


def test_invalid_attributes_are_refused_with_amazons_issues_and_nothing_is_written(connection, sandbox, item):
    sandbox.unknown_asins.add(ASIN)
    with pytest.raises(PermanentChannelError) as raised:
        sync.publish(connection, payload(), None)
    assert "8541: The ASIN 'B07N4M94X4' does not match any product in the Amazon catalog." in raised.value.message
    assert "[merchant_suggested_asin]" in raised.value.message
    assert [r.query.get("mode") for r in sandbox.requests("putListingsItem")] == ["VALIDATION_PREVIEW"]
    assert sandbox.listing("AMZ-1") is None
    detail = AmazonListingDetail.objects.get(connection=connection, sku="AMZ-1")
    assert detail.submission_status == "INVALID" and detail.issues[0]["code"] == "8541"


def test_accepted_is_not_live_until_amazon_shows_it_buyable(connection, sandbox, item):
    from inventory.channels import TransientChannelError

    sandbox.set_faults(processing_seconds=30)
    with pytest.raises(TransientChannelError, match="not buyable yet"):
        sync.publish(connection, payload(), None)
    assert len(sandbox.requests("putListingsItem")) == 2

    # When Amazon has processed it and the engine tries again
    sandbox.items["AMZ-1"]["ready_at"] = 0
    result = sync.publish(connection, payload(), None)

    # Then the listing is adopted as it is: no second put, no patch
    assert result.adopted and len(sandbox.requests("putListingsItem")) == 2
    assert sandbox.requests("patchListingsItem") == []
    assert len(sandbox.listings()) == 1


def test_publish_after_a_lost_answer_never_makes_a_second_listing(connection, sandbox, item):
    connection.timeout_seconds = 1.0  # against the sandbox's 3 s delay
    connection.save(update_fields=["timeout_seconds"])
    sandbox.fail_next("putListingsItem", "timeout")  # the preview times out, retried at once
    sync.publish(connection, payload(), None)
    sync.publish(connection, payload(), None)
    assert len(sandbox.listings()) == 1
    assert len([r for r in sandbox.requests("putListingsItem") if r.status == 200]) == 2  # preview + one real put


def test_the_models_static_sandbox_case_is_answered_as_written(connection, sandbox, account):
    body = mappers.put_body("GUITARS", {})
    answer = sync.client_for(connection).put_listing("VALIDATION_INVALID", body, preview=True)
    assert answer["status"] == "INVALID" and answer["issues"][0]["code"] == "90220"


# --- revise, end, relist -----------------------------------------------------------------------


def test_revise_patches_only_the_changed_attributes(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    sandbox.reset_log()

    sync.revise(connection, "AMZ-1", payload(price="1150.00", title="New title"), frozenset({"price", "title"}))

    [patch] = sandbox.requests()
    assert patch.operation == "patchListingsItem"
    assert [p["path"] for p in patch.body["patches"]] == ["/attributes/purchasable_offer"]
    assert patch.body["patches"][0]["value"][0]["our_price"][0]["schedule"][0]["value_with_tax"] == 1150.0

    # A title change alone is the catalogue page's business: no call at all
    sandbox.reset_log()
    sync.revise(connection, "AMZ-1", payload(), frozenset({"title", "description", "photos"}))
    assert sandbox.requests() == []


def test_end_sets_quantity_zero_and_reads_it_back_then_relist_puts_it_back(connection, sandbox, item):
    sync.publish(connection, payload(quantity=1), None)

    result = sync.end(connection, "AMZ-1", END_SOLD_ELSEWHERE)

    assert (result.confirmed, result.state) == (True, "ended")
    assert mappers.listing_quantity(sandbox.listing("AMZ-1")) == 0
    assert ops(sandbox)[-3:] == ["getListingsItem", "patchListingsItem", "getListingsItem"]
    # Ending again is a success with no write
    sandbox.reset_log()
    assert sync.end(connection, "AMZ-1", END_SOLD_ELSEWHERE).confirmed
    assert ops(sandbox) == ["getListingsItem"]

    # Relist: the quantity again, by patch, on the same listing
    sandbox.reset_log()
    relisted = sync.publish(connection, payload(quantity=1), None)
    assert relisted.adopted and sync.read_listing(connection, "AMZ-1").state == "live"
    assert "putListingsItem" not in ops(sandbox)
    assert len(sandbox.listings()) == 1


def test_ending_a_listing_amazon_does_not_have_is_a_success(connection, sandbox):
    assert sync.end(connection, "GONE", END_SOLD_ELSEWHERE).confirmed


# --- pull ---------------------------------------------------------------------------------


def test_pull_reads_orders_by_watermark_with_pagination(connection, sandbox, item, account):
    sync.publish(connection, payload(quantity=1), None)
    sandbox.simulate_sale("AMZ-1", notify=False)

    result = sync.pull(connection, None)

    [order] = result.orders
    assert order.status == "paid" and order.lines[0].sku == "AMZ-1" and order.lines[0].unit_price == Decimal("1299.00")
    assert result.watermark == order.updated_at
    assert [s.sku for s in result.listings] == ["AMZ-1"] and result.listings[0].state == "ended"

    # Nothing changed since: one page of orders, no listing scan (not due)
    sandbox.reset_log()
    again = sync.pull(connection, result.watermark)
    assert again.pages_read == 1 and ops(sandbox) == ["searchOrders"]
    assert sandbox.requests()[0].query["lastUpdatedAfter"] == mappers.format_time(
        result.watermark - timedelta(minutes=2)
    )


def test_pull_follows_the_pagination_token(connection, sandbox, account):
    for n in range(3):
        sandbox.add_external_listing(f"EXT-{n}", asin=ASIN, price="10.00", quantity=1)
        sandbox.simulate_sale(f"EXT-{n}", notify=False)
    client = sync.client_for(connection)
    pages = list(client.search_orders(mappers.format_time(timezone.now() - timedelta(hours=1)), page_size=2))
    assert [len(p["orders"]) for p in pages] == [2, 1]
    assert sandbox.requests("searchOrders")[1].query["paginationToken"] == "2"


def test_listings_made_on_amazon_are_reported(connection, sandbox):
    sandbox.add_external_listing("MADE-THERE", asin=ASIN, price="450.00", quantity=2)
    result = sync.pull(connection, None)
    [seen] = result.listings
    assert (seen.sku, seen.state, seen.quantity, seen.price) == ("MADE-THERE", "live", 2, Decimal("450.00"))
    assert result.listings_complete


# --- notifications ----------------------------------------------------------------------------


def test_an_order_change_notification_is_checked_keyed_and_read_back(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    order = sandbox.simulate_sale("AMZ-1", notify=False)
    body = json.dumps(sandbox.order_notification(order["orderId"], "n-1")).encode()

    event = sync.parse_webhook(connection, {}, body)

    assert (event.topic, event.dedupe_key) == ("ORDER_CHANGE", "amazon:n-1")
    assert notifications.problems(event.payload) == []
    [seen] = sync.webhook_orders(connection, event)
    assert seen.external_id == order["orderId"] and seen.status == "paid"


def test_a_notification_that_does_not_match_its_schema_is_refused(connection):
    with pytest.raises(PermanentChannelError, match="does not match its schema"):
        sync.parse_webhook(connection, {}, json.dumps({"NotificationType": "ORDER_CHANGE"}).encode())


def test_a_notification_for_an_order_amazon_does_not_have_yields_nothing(connection, sandbox):
    event = WebhookSeen(
        topic="ORDER_CHANGE",
        dedupe_key="x",
        payload={"Payload": {"OrderChangeNotification": {"AmazonOrderId": "111-0000000-0000000"}}},
    )
    assert sync.webhook_orders(connection, event) == []


# --- check -------------------------------------------------------------------------------------


def test_check_says_in_plain_words_that_everything_works_and_how_sales_arrive(connection, sandbox):
    result = sync.check(connection)
    assert result.ok, result.summary
    assert "Polling only" in result.summary and DEFAULT_SELLER_ID in result.summary


def test_check_names_a_wrong_seller_id(connection, sandbox):
    connection.seller_id = "SOMEONE-ELSE"
    connection.save()
    result = sync.check(connection)
    assert not result.ok and "seller id" in result.summary


# --- feeds ------------------------------------------------------------------------------------


def test_a_feed_with_some_skus_failing_records_each_skus_result(connection, sandbox, account):
    from channels_amazon.feeds import offers_feed

    for n in range(4):
        item = make_item(account, n=20 + n, sku=f"FEED-{n}")
        AmazonItemAttributes.objects.create(account=account, item=item, asin=ASIN, product_type="GUITARS")
        sandbox.add_external_listing(f"FEED-{n}", asin=ASIN, price="100.00", quantity=1)
    changes = [(payload(sku=f"FEED-{n}", price="150.00"), frozenset({"price"})) for n in range(3)]
    changes.append((payload(sku="FEED-3", price="0.00"), frozenset({"price"})))  # Amazon refuses a zero price
    changes.append((payload(sku="NOT-THERE", price="10.00"), frozenset({"price"})))

    outcome = offers_feed(connection, changes, poll_every=0.01)

    assert outcome.status == "DONE"
    assert outcome.accepted == ["FEED-0", "FEED-1", "FEED-2"]
    assert set(outcome.refused) == {"FEED-3", "NOT-THERE"}
    assert "The price must be greater than 0. [purchasable_offer]" in outcome.refused["FEED-3"]
    for n in range(3):
        assert mappers.listing_price(sandbox.listing(f"FEED-{n}"), "ATVPDKIKX0DER")[0] == Decimal("150.00")
    assert mappers.listing_price(sandbox.listing("FEED-3"), "ATVPDKIKX0DER")[0] == Decimal("100.00")
    assert AmazonListingDetail.objects.get(sku="FEED-3").submission_status == "INVALID"
    assert AmazonListingDetail.objects.get(sku="FEED-0").submission_status == "ACCEPTED"
    assert sandbox.feed_problems == []
    assert [r.operation for r in sandbox.requests()][:2] == ["createFeedDocument", "createFeed"]

    # The document sent matches Amazon's listings feed schema (checked here from contracts/)
    from jsonschema import Draft7Validator

    schema = json.loads(contract_path("amazon", "schemas", "feeds", "listings-feed-schema-v2.json").read_text())
    [document] = [d["content"] for d in sandbox.documents.values() if d["compression"] is None]
    assert list(Draft7Validator(schema).iter_errors(json.loads(document))) == []
    report_schema = json.loads(
        contract_path("amazon", "schemas", "feeds", "listings-feed-processing-report-schema-v2.json").read_text()
    )
    import gzip

    [report] = [gzip.decompress(d["content"]) for d in sandbox.documents.values() if d["compression"] == "GZIP"]
    assert list(Draft7Validator(report_schema).iter_errors(json.loads(report))) == []


def test_a_new_connection_pulls_at_the_order_search_rate_and_check_warns_below_it(connection, sandbox):
    assert connection.pull_interval_seconds == 180
    connection.pull_interval_seconds = 60
    connection.save()
    result = sync.check(connection)
    assert not result.ok
    assert "Pull interval: Pulls every 60 s spend Amazon's order-search burst of 20 in 20 minutes" in result.summary


def test_buyer_name_and_address_are_read_only_with_a_restricted_data_token(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    order = sandbox.simulate_sale("AMZ-1", notify=False)

    # The pull reads no buyer data
    [pulled] = sync.pull(connection, None).orders
    assert (pulled.buyer_name, pulled.ship_line1) == ("", "")

    seen = sync.order_with_address(connection, order["orderId"])

    assert (seen.buyer_name, seen.ship_name, seen.ship_line1, seen.ship_city, seen.ship_country) == (
        "Sandbox Buyer",
        "Sandbox Buyer",
        "410 Terry Ave N",
        "Seattle",
        "US",
    )
    [rdt] = sandbox.requests("createRestrictedDataToken")
    assert rdt.body["restrictedResources"] == [
        {
            "method": "GET",
            "path": f"/orders/2026-01-01/orders/{order['orderId']}",
            "dataElements": ["buyerInfo", "shippingAddress"],
        }
    ]
    # Without the token Amazon refuses buyer data
    with pytest.raises(PermanentChannelError, match="Restricted Data Token"):
        sync.client_for(connection)._call(
            "getOrder", "GET", f"/orders/2026-01-01/orders/{order['orderId']}", params={"includedData": "BUYER"}
        )


def test_a_shipment_is_confirmed_with_carrier_and_tracking(connection, sandbox, item):
    sync.publish(connection, payload(), None)
    order = sandbox.simulate_sale("AMZ-1", notify=False)

    sync.confirm_shipment(
        connection,
        order["orderId"],
        carrier_code="UPS",
        tracking_number="1Z999AA10123456784",
        shipped_at=timezone.now(),
    )

    [sent] = sandbox.requests("confirmShipment")
    assert sent.status == 204
    assert sent.body["packageDetail"]["trackingNumber"] == "1Z999AA10123456784"
    assert sent.body["packageDetail"]["orderItems"] == [
        {"orderItemId": order["orderItems"][0]["orderItemId"], "quantity": 1}
    ]
    [seen] = sync.pull(connection, None).orders
    assert seen.status == "paid"  # shipped stays a committed sale
    assert sandbox.all_orders()[0]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


def test_an_end_goes_before_revises_in_the_shared_patch_bucket(connection, sandbox, item, account):
    import time

    # Given Amazon's true patch plan (5/s, burst 5) with two tokens left (a revise sweep spent three)
    sandbox.set_faults(rate_scale=1.0)
    sync.publish(connection, payload(), None)
    client = sync.client_for(connection)
    client.max_wait = 0.0  # nothing may wait: what has no token now is refused
    client.bucket("patchListingsItem")._store(2.0, time.time())

    # When another revise comes: it leaves the last two tokens alone
    with pytest.raises(RateLimited):
        sync.revise(connection, "AMZ-1", payload(price="900.00"), frozenset({"price"}))
    assert sandbox.requests("patchListingsItem") == []

    # Then an end still goes through at once
    assert sync.end(connection, "AMZ-1", END_SOLD_ELSEWHERE).confirmed
    assert [r.status for r in sandbox.requests("patchListingsItem")] == [200]


def test_a_pull_with_the_order_search_spent_defers_if_orders_were_just_read_else_says_so(connection, sandbox):
    import time

    client = sync.client_for(connection)
    client.bucket("searchOrders")._store(0.0, time.time())  # the burst is spent

    # Orders never read: the rate limit is raised for the engine to schedule and show
    with pytest.raises(RateLimited):
        sync.pull(connection, None)

    # Orders read a moment ago (a listing notification asks for another pull): deferred quietly
    since = timezone.now() - timedelta(minutes=5)
    cache.set(sync._orders_read_key(connection), time.time())
    result = sync.pull(connection, since)
    assert (result.orders, result.watermark) == ([], since)
    assert sandbox.requests("searchOrders") == []


def test_every_example_in_amazons_notification_schemas_is_accepted_and_keyed_by_its_id():
    directory = contract_path("amazon", "schemas", "notifications")
    checked = 0
    for path in sorted(directory.glob("*.json")):
        for example in json.loads(path.read_text()).get("examples") or []:
            if example.get("NotificationType") not in notifications.SCHEMAS:
                continue
            assert notifications.problems(example) == [], path.name
            seen = notifications.identify(json.dumps(example).encode())
            assert seen.dedupe_key == "amazon:" + example["NotificationMetadata"]["NotificationId"]
            checked += 1
    # ORDER_CHANGE, LISTINGS_ITEM_STATUS_CHANGE (whose schema's enum says ..._CHANGED), issues, quantity...
    assert checked >= 4
