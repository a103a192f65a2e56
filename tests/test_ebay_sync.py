"""eBay's contract functions against the loopback eBay: publish, revise, end, read, pull, webhooks, check."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_ebay import sync
from channels_ebay.client import EbayRequestError
from channels_ebay.models import EbayConnection, EbayListingDetail
from channels_ebay.sandbox import EbaySandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    EndResult,
    ListingPayload,
    PermanentChannelError,
    PublishResult,
    TransientChannelError,
    WebhookRejected,
    WebhookReply,
)

pytestmark = pytest.mark.django_db

STRAT = ListingPayload(
    sku="BN-1964",
    title="1964 Fender Stratocaster",
    description="All original, refret in 1990.",
    price=Decimal("5000.00"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/strat.jpg",),
)


@pytest.fixture
def sandbox():
    with EbaySandbox() as running:
        yield running


@pytest.fixture
def connection(account, sandbox):
    return EbayConnection.objects.create(
        account=account,
        name="eBay main",
        category_ids={"Electric Guitars": "33034"},
        verification_token="v" * 40,
        endpoint_url="https://shop.example.com/hooks/ebay/x/",
        **sandbox.connection_fields(),
    )


def offers(sandbox, sku):
    return sandbox.store.offers_by_sku(sku)


def no_contract_problems(sandbox):
    return [(r.method, r.path, r.problems) for r in sandbox.requests() if r.problems]


# --- publish ------------------------------------------------------------------------------------


def test_publish_writes_the_item_creates_the_offer_and_publishes_it(connection, sandbox):
    result = sync.publish(connection, STRAT, None)

    [offer] = offers(sandbox, "BN-1964")
    assert result == PublishResult(
        external_id=offer["offerId"], url=f"https://www.ebay.com/itm/{offer['listing']['listingId']}", adopted=False
    )
    assert offer["status"] == "PUBLISHED"
    assert offer["categoryId"] == "33034"
    assert offer["pricingSummary"]["price"] == {"value": "5000.00", "currency": "USD"}
    item = sandbox.store.items["BN-1964"]
    assert item["product"]["aspects"] == {
        "Brand": ["Fender"],
        "Model": ["Stratocaster"],
        "Model Year": ["1964"],
        "Body Color": ["Sunburst"],
        "Type": ["Electric Guitars"],
    }
    assert item["condition"] == "USED_EXCELLENT"
    writes = [(r.method, r.path) for r in sandbox.api_calls() if r.is_write]
    assert writes == [
        ("PUT", "/sell/inventory/v1/inventory_item/BN-1964"),
        ("POST", "/sell/inventory/v1/offer"),
        ("POST", f"/sell/inventory/v1/offer/{offer['offerId']}/publish/"),
    ]
    put = sandbox.requests("PUT", "/sell/inventory/v1/inventory_item")[0]
    assert put.headers["content-language"] == "en-US"
    assert put.headers["accept-language"] == "en-US"
    assert no_contract_problems(sandbox) == []
    detail = EbayListingDetail.objects.get(connection=connection, sku="BN-1964")
    assert (detail.offer_id, detail.listing_id, detail.revisions_today) == (
        offer["offerId"],
        offer["listing"]["listingId"],
        0,
    )


def test_publish_again_adopts_the_offer_and_sends_nothing_unchanged(connection, sandbox):
    first = sync.publish(connection, STRAT, None)
    sandbox.reset_log()

    again = sync.publish(connection, STRAT, None)  # e.g. the engine lost the first answer

    assert again == replace(first, adopted=True)
    assert len(offers(sandbox, "BN-1964")) == 1
    assert [r for r in sandbox.api_calls() if r.is_write] == []  # same content: no revision spent


def test_a_create_offer_that_timed_out_is_found_not_duplicated(connection, sandbox):
    connection.timeout_seconds = 1.5
    connection.save()
    sandbox.set_faults(timeout_delay=2.5)
    sandbox.fail_next("timeout", method="POST", path_prefix="/sell/inventory/v1/offer")

    result = sync.publish(connection, STRAT, None)

    [offer] = offers(sandbox, "BN-1964")
    assert result.external_id == offer["offerId"]
    assert offer["status"] == "PUBLISHED"
    assert sandbox.calls("POST", "/sell/inventory/v1/offer") == 2  # the create (applied) and the publish


def test_25001_is_retried_within_the_step(connection, sandbox):
    sandbox.fail_next("system", method="POST", path_prefix="/sell/inventory/v1/offer", count=1)
    sandbox.fail_next("concurrent", method="PUT", path_prefix="/sell/inventory/v1/inventory_item")

    result = sync.publish(connection, STRAT, None)

    assert len(offers(sandbox, "BN-1964")) == 1
    assert offers(sandbox, "BN-1964")[0]["offerId"] == result.external_id
    faults = [(r.method, r.fault, r.answer["errors"][0]["errorId"]) for r in sandbox.requests() if r.fault]
    assert faults == [("PUT", "concurrent", 25025), ("POST", "system", 25001)]


def test_a_request_error_carries_ebays_message_and_field_and_is_kept_on_the_listing(connection, sandbox):
    connection.category_ids = {"Electric Guitars": "619"}  # not a leaf on the loopback eBay
    connection.save()

    with pytest.raises(EbayRequestError) as refused:
        sync.publish(connection, STRAT, None)

    assert refused.value.error_ids == {25005}
    assert "Category 619 is not a leaf category" in refused.value.message
    assert "(field: categoryId)" in refused.value.message
    assert not refused.value.transient
    detail = EbayListingDetail.objects.get(connection=connection, sku="BN-1964")
    assert "25005" in detail.last_error
    # the retry after staff fixed the mapping publishes the same offer
    connection.category_ids = {"Electric Guitars": "33034"}
    connection.save()
    result = sync.publish(connection, STRAT, None)
    assert [o["offerId"] for o in offers(sandbox, "BN-1964")] == [result.external_id]


def test_problems_are_refused_before_any_call(connection, sandbox):
    with pytest.raises(PermanentChannelError, match="at least one photo"):
        sync.publish(connection, replace(STRAT, photos=()), None)
    assert sandbox.api_calls() == []


# --- revise -------------------------------------------------------------------------------------


def test_price_and_quantity_go_through_bulk_update_and_spend_one_revision(connection, sandbox):
    offer_id = sync.publish(connection, replace(STRAT, quantity=3), None).external_id
    sandbox.reset_log()

    sync.revise(
        connection, offer_id, replace(STRAT, quantity=2, price=Decimal("4800")), frozenset({"price", "quantity"})
    )

    writes = [r for r in sandbox.api_calls() if r.is_write]
    assert [(r.method, r.path) for r in writes] == [("POST", "/sell/inventory/v1/bulk_update_price_quantity")]
    assert writes[0].body == {
        "requests": [
            {
                "sku": "BN-1964",
                "shipToLocationAvailability": {"quantity": 2},
                "offers": [
                    {"offerId": offer_id, "availableQuantity": 2, "price": {"value": "4800.00", "currency": "USD"}}
                ],
            }
        ]
    }
    [offer] = offers(sandbox, "BN-1964")
    assert (offer["availableQuantity"], offer["pricingSummary"]["price"]["value"]) == (2, "4800.00")
    assert sync.revisions_left(connection, "BN-1964") == 249
    assert sandbox.store.revisions_today("BN-1964") == 1


def test_a_title_change_is_a_merged_replace_that_keeps_what_ebay_holds(connection, sandbox):
    offer_id = sync.publish(connection, STRAT, None).external_id
    with sandbox.store.lock:  # the seller added a package size and an aspect on eBay
        sandbox.store.items["BN-1964"]["packageWeightAndSize"] = {"weight": {"value": 12, "unit": "POUND"}}
        sandbox.store.items["BN-1964"]["product"]["aspects"]["String Configuration"] = ["6 String"]
    sandbox.reset_log()

    sync.revise(connection, offer_id, replace(STRAT, title="1964 Fender Stratocaster, Sunburst"), frozenset({"title"}))

    [put] = sandbox.requests("PUT")
    assert put.body["product"]["title"] == "1964 Fender Stratocaster, Sunburst"
    assert put.body["packageWeightAndSize"] == {"weight": {"value": 12, "unit": "POUND"}}
    assert put.body["product"]["aspects"]["String Configuration"] == ["6 String"]
    assert sandbox.calls("POST", "/sell/inventory/v1/bulk_update_price_quantity") == 0
    assert no_contract_problems(sandbox) == []


def test_unchanged_values_spend_no_revision(connection, sandbox):
    offer_id = sync.publish(connection, STRAT, None).external_id
    sandbox.reset_log()

    sync.revise(connection, offer_id, STRAT, frozenset({"price", "title", "quantity"}))

    assert [r for r in sandbox.api_calls() if r.is_write] == []
    assert sync.revisions_left(connection, "BN-1964") == 250


def test_the_daily_revision_budget_is_said_on_the_listing_and_nothing_is_sent(connection, sandbox):
    offer_id = sync.publish(connection, STRAT, None).external_id
    EbayListingDetail.objects.filter(connection=connection, sku="BN-1964").update(
        revision_day=sync.ebay_today(), revisions_today=250
    )
    sandbox.reset_log()

    with pytest.raises(sync.RevisionBudgetSpent, match="250 revisions per listing per day"):
        sync.revise(connection, offer_id, replace(STRAT, price=Decimal("4900")), frozenset({"price"}))

    assert [r for r in sandbox.api_calls() if r.is_write] == []
    assert "250 revisions" in EbayListingDetail.objects.get(connection=connection, sku="BN-1964").last_error


def test_bulk_price_quantity_batches_25_and_records_each_skus_207_outcome(connection, sandbox):
    changes = []
    for n in range(30):
        payload = replace(STRAT, sku=f"BULK-{n:02d}", quantity=5)
        offer_id = sync.publish(connection, payload, None).external_id
        changes.append(sync.PriceQuantityChange(payload.sku, offer_id, Decimal("100") + n, "USD", 4))
    sync.end(connection, changes[3].offer_id, END_SOLD_ELSEWHERE)  # withdrawn: bulk updates published offers only
    sandbox.reset_log()

    outcomes = sync.bulk_revise_price_quantity(connection, changes)

    bulk = sandbox.requests("POST", "/sell/inventory/v1/bulk_update_price_quantity")
    assert [len(r.body["requests"]) for r in bulk] == [25, 5]
    assert [r.status for r in bulk] == [207, 200]
    failed = [o for o in outcomes if not o.ok]
    assert [(o.sku, o.status) for o in failed] == [("BULK-03", 400)]
    assert "25713" in failed[0].message
    assert sum(o.ok for o in outcomes) == 29
    details = {d.sku: d for d in EbayListingDetail.objects.filter(connection=connection)}
    assert "25713" in details["BULK-03"].last_error
    assert details["BULK-04"].last_error == ""
    assert details["BULK-03"].revisions_today == 0  # refused by eBay: not counted
    assert details["BULK-04"].revisions_today == 1


# --- end / read ---------------------------------------------------------------------------------


def test_end_withdraws_and_reads_back_and_relist_publishes_the_same_offer(connection, sandbox):
    offer_id = sync.publish(connection, STRAT, None).external_id

    assert sync.end(connection, offer_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="ended")
    assert sync.end(connection, offer_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="ended")
    assert sync.read_listing(connection, offer_id).state == "ended"

    relisted = sync.publish(connection, STRAT, None)  # the engine relists with no external id
    [offer] = offers(sandbox, "BN-1964")
    assert (relisted.external_id, offer["status"]) == (offer_id, "PUBLISHED")
    assert sync.read_listing(connection, offer_id).state == "live"


def test_a_listing_sold_on_ebay_reads_back_sold(connection, sandbox):
    offer_id = sync.publish(connection, STRAT, None).external_id
    sandbox.simulate_sale("BN-1964", deliver=False)

    seen = sync.read_listing(connection, offer_id)
    assert (seen.state, seen.quantity, seen.sku, seen.title) == ("sold", 0, "BN-1964", "1964 Fender Stratocaster")
    assert sync.end(connection, offer_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="sold")


def test_find_listing_by_sku(connection, sandbox):
    assert sync.find_listing(connection, "BN-1964") is None
    offer_id = sync.publish(connection, STRAT, None).external_id
    found = sync.find_listing(connection, "BN-1964")
    assert (found.external_id, found.state, found.price) == (offer_id, "live", Decimal("5000.00"))


# --- tokens -------------------------------------------------------------------------------------


def test_one_token_for_many_calls_and_one_refresh_after_expiry_mid_run(connection, sandbox):
    sync.publish(connection, STRAT, None)
    assert sandbox.token_grants == ["refresh_token"]

    sandbox.expire_tokens()  # revoked early: the next call gets 401
    sync.publish(connection, replace(STRAT, sku="BN-1965"), None)

    assert sandbox.token_grants == ["refresh_token", "refresh_token"]
    unauthorised = [r for r in sandbox.requests() if r.status == 401]
    assert len(unauthorised) == 1
    assert len(offers(sandbox, "BN-1965")) == 1


def test_a_bad_refresh_token_is_a_permanent_error_in_plain_words(connection, sandbox):
    connection.refresh_token = "v^1.1#revoked"
    connection.save()
    with pytest.raises(PermanentChannelError, match="eBay refused the refresh token"):
        sync.publish(connection, STRAT, None)
    assert sandbox.api_calls() == []


# --- pull ---------------------------------------------------------------------------------------


def test_pull_reads_orders_by_last_modified_date_with_offset_paging(connection, sandbox):
    for n in range(3):
        payload = replace(STRAT, sku=f"PULL-{n}", quantity=2)
        sync.publish(connection, payload, None)
        sandbox.simulate_sale(payload.sku, deliver=False)
    since = timezone.now() - timedelta(hours=1)
    sandbox.reset_log()

    result = sync.pull(connection, since, full_scan=False)

    assert sorted(line.sku for order in result.orders for line in order.lines) == ["PULL-0", "PULL-1", "PULL-2"]
    assert {order.status for order in result.orders} == {"paid"}
    [read] = sandbox.requests("GET", "/sell/fulfillment/v1/order")
    assert "filter=lastmodifieddate:%5B" in read.raw_query and "..%5D" in read.raw_query
    assert result.watermark == max(order.updated_at for order in result.orders)
    # one order page; the rest is the listing scan, due because none ran yet in this interval
    assert result.pages_read == 1 + len(sandbox.requests("GET", "/sell/inventory/v1/"))


def test_pull_with_nothing_new_reads_one_page(connection, sandbox):
    cache_scan = sync.pull(connection, None)  # the first pull also reads the listings
    sandbox.reset_log()
    result = sync.pull(connection, timezone.now())
    assert (result.orders, result.pages_read) == ([], 1)
    assert [r.path for r in sandbox.api_calls()] == ["/sell/fulfillment/v1/order"]
    assert cache_scan.listings == []


def test_pull_pages_through_many_orders(connection, sandbox):
    payload = replace(STRAT, sku="MANY", quantity=450)
    sync.publish(connection, payload, None)
    for _ in range(450):
        sandbox.store.sell("MANY", 1)
    result = sync.pull(connection, timezone.now() - timedelta(hours=1))
    assert len(result.orders) == 450
    offsets = [r.query["offset"] for r in sandbox.requests("GET", "/sell/fulfillment/v1/order")]
    assert offsets == ["0", "200", "400"]


def test_a_full_scan_reports_listings_made_elsewhere(connection, sandbox):
    sync.publish(connection, STRAT, None)
    result = sync.pull(connection, timezone.now(), full_scan=True)
    assert [(seen.sku, seen.state) for seen in result.listings] == [("BN-1964", "live")]


# --- webhooks -----------------------------------------------------------------------------------


def test_the_account_deletion_challenge(connection):
    reply = sync.webhook_challenge(connection, {"challenge_code": "abc123"}, "https://ignored.example.com/")
    import hashlib

    expected = hashlib.sha256(("abc123" + "v" * 40 + "https://shop.example.com/hooks/ebay/x/").encode()).hexdigest()
    assert reply == WebhookReply(status=200, body={"challengeResponse": expected})
    assert sync.webhook_challenge(connection, {}, "x").status == 400


def test_a_signed_notification_verifies_and_is_identified_by_its_notification_id(connection, sandbox):
    payload = sandbox.notification("ORDER_CONFIRMATION", {"orderId": "01-00001-00001"}, "n-1")
    body, headers = sandbox.signed(payload)

    seen = sync.parse_webhook(connection, headers, body)

    assert (seen.topic, seen.dedupe_key) == ("ORDER_CONFIRMATION", "ORDER_CONFIRMATION:n-1")
    sync.parse_webhook(connection, headers, body)
    assert sandbox.calls("GET", "/commerce/notification/v1/public_key") == 1  # the key is cached by kid
    assert sandbox.token_grants.count("client_credentials") == 1


@pytest.mark.parametrize("tamper", ["body", "missing", "kid", "garbage"])
def test_a_bad_signature_is_rejected_with_412(connection, sandbox, tamper):
    payload = sandbox.notification("ORDER_CONFIRMATION", {"orderId": "01-00001-00001"}, "n-1")
    body, headers = sandbox.signed(payload, kid="unknown-kid" if tamper == "kid" else None)
    if tamper == "body":
        body = body.replace(b"01-00001-00001", b"01-00001-00002")
    elif tamper == "missing":
        headers.pop("X-EBAY-SIGNATURE")
    elif tamper == "garbage":
        headers["X-EBAY-SIGNATURE"] = "not-base64-json"

    with pytest.raises(WebhookRejected) as rejected:
        sync.parse_webhook(connection, headers, body)
    assert rejected.value.http_status == 412


def test_webhook_orders_reads_the_order_back(connection, sandbox):
    sync.publish(connection, STRAT, None)
    order = sandbox.simulate_sale("BN-1964", deliver=False)
    payload = sandbox.notification("ORDER_CONFIRMATION", {"orderId": order["orderId"]}, "n-2")
    body, headers = sandbox.signed(payload)
    seen = sync.parse_webhook(connection, headers, body)

    [found] = sync.webhook_orders(connection, seen)
    assert (found.external_id, found.status, found.lines[0].sku) == (order["orderId"], "paid", "BN-1964")

    forged = sandbox.notification("ORDER_CONFIRMATION", {"orderId": "99-99999-99999"}, "n-3")
    body, headers = sandbox.signed(forged)
    assert sync.webhook_orders(connection, sync.parse_webhook(connection, headers, body)) == []


# --- check --------------------------------------------------------------------------------------


def test_check_says_what_works(connection):
    result = sync.check(connection)
    assert result.ok, result.summary
    assert [step.label for step in result.steps] == [
        "Token",
        "Location",
        "Fulfillment policy",
        "Payment policy",
        "Return policy",
        "Categories",
    ]


def test_check_says_what_to_fix(connection):
    connection.merchant_location_key = "nowhere"
    connection.return_policy_id = "999"
    connection.category_ids = {"Amps": "guitar-amps"}
    connection.save()
    result = sync.check(connection)
    assert not result.ok
    assert result.summary == (
        "To fix: Location: eBay has no inventory location nowhere: create it on eBay or fix the key; "
        "Return policy: eBay has no return policy 999 for EBAY_US: copy its id from Business policies; "
        "Categories: eBay category ids are numbers: fix Amps=guitar-amps"
    )


def test_check_with_a_bad_token_stops_at_the_token(connection):
    connection.client_secret = "wrong-secret-0000"
    connection.save()
    result = sync.check(connection)
    assert [(s.label, s.ok) for s in result.steps] == [("Token", False)]
    assert "eBay refused the refresh token" in result.summary


def test_transient_errors_are_typed(connection, sandbox):
    sandbox.set_faults(error_rate=1.0)
    with pytest.raises(TransientChannelError):
        sync.publish(connection, STRAT, None)


def test_title_and_quantity_together_the_quantity_goes_by_bulk_only(connection, sandbox):
    offer_id = sync.publish(connection, replace(STRAT, quantity=3), None).external_id
    sandbox.reset_log()

    sync.revise(connection, offer_id, replace(STRAT, title="Strat '64", quantity=2), frozenset({"title", "quantity"}))

    [put] = sandbox.requests("PUT", "/sell/inventory/v1/inventory_item")
    assert put.body["availability"] == {"shipToLocationAvailability": {"quantity": 3}}  # eBay's, untouched here
    [bulk] = sandbox.requests("POST", "/sell/inventory/v1/bulk_update_price_quantity")
    assert bulk.body["requests"][0]["offers"] == [{"offerId": offer_id, "availableQuantity": 2}]
    assert sandbox.store.items["BN-1964"]["availability"]["shipToLocationAvailability"]["quantity"] == 2
    assert offers(sandbox, "BN-1964")[0]["availableQuantity"] == 2
    assert sync.revisions_left(connection, "BN-1964") == 248


def test_quantity_zero_ends_a_multi_quantity_listing_as_ebay_does(connection, sandbox):
    offer_id = sync.publish(connection, replace(STRAT, quantity=3), None).external_id

    [outcome] = sync.bulk_revise_price_quantity(
        connection, [sync.PriceQuantityChange("BN-1964", offer_id, None, "USD", 0)]
    )

    assert outcome.ok
    seen = sync.read_listing(connection, offer_id)
    assert (seen.state, seen.quantity) == ("ended", 0)
    assert sync.end(connection, offer_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="ended")


def test_an_offer_whose_listing_sold_out_is_published_again_as_a_new_listing(connection, sandbox):
    first = sync.publish(connection, STRAT, None)
    sandbox.simulate_sale("BN-1964", deliver=False)  # sold: the listing ended, the offer stays PUBLISHED
    assert sync.read_listing(connection, first.external_id).state == "sold"

    again = sync.publish(connection, STRAT, first.external_id)  # e.g. the sale was cancelled

    [offer] = offers(sandbox, "BN-1964")
    assert again.external_id == first.external_id == offer["offerId"]
    assert again.url != first.url  # a new eBay item number
    assert (offer["availableQuantity"], offer["listing"]["listingStatus"]) == (1, "ACTIVE")
    assert sync.read_listing(connection, first.external_id).state == "live"


def test_bulk_publish_25_at_a_time_adopts_an_offer_created_before(connection, sandbox):
    payloads = [replace(STRAT, sku=f"BP-{n:02d}") for n in range(30)]
    sync.publish(connection, replace(payloads[3], quantity=1), None)  # one exists already, live
    sandbox.reset_log()
    sandbox.fail_next("timeout", method="POST", path_prefix="/sell/inventory/v1/bulk_create_offer")
    connection.timeout_seconds = 1.5
    connection.save()
    sandbox.set_faults(timeout_delay=2.5)

    outcomes = sync.bulk_publish(connection, [*payloads, replace(STRAT, sku="BP-BAD", photos=())])

    assert [o.sku for o in outcomes if not o.ok] == ["BP-BAD"]
    assert all(len(offers(sandbox, p.sku)) == 1 for p in payloads)  # the timed-out create was not repeated as new
    assert all(offers(sandbox, p.sku)[0]["status"] == "PUBLISHED" for p in payloads)
    calls = [(r.method, r.path.rsplit("/", 1)[-1]) for r in sandbox.api_calls()]
    assert calls.count(("POST", "bulk_create_offer")) == 3  # 25 (timed out, applied), 25 again (adopted), 5
    assert calls.count(("POST", "bulk_publish_offer")) == 2
    assert calls.count(("POST", "bulk_create_or_replace_inventory_item")) == 2
    assert no_contract_problems(sandbox) == []


def test_bulk_publish_keeps_each_skus_refusal_in_ebays_words(connection, sandbox):
    connection.category_ids = {"Electric Guitars": "33034", "Guitars": "619"}
    connection.save()
    good, bad = replace(STRAT, sku="BPW-1"), replace(STRAT, sku="BPW-2", category="Guitars")

    outcomes = {o.sku: o for o in sync.bulk_publish(connection, [good, bad])}

    assert outcomes["BPW-1"].ok and not outcomes["BPW-2"].ok
    assert outcomes["BPW-2"].message == "eBay 25005: Category 619 is not a leaf category. (field: categoryId)"
    assert EbayListingDetail.objects.get(connection=connection, sku="BPW-2").last_error == outcomes["BPW-2"].message
    [publish] = sandbox.requests("POST", "/sell/inventory/v1/bulk_publish_offer")
    assert publish.status == 207
