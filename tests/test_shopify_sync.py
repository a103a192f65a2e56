"""Shopify's side of the channel contract against the loopback store: publish, revise, end, pull,
webhooks, the connection check and webhook registration."""

import json
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from channels_shopify import sync
from channels_shopify.models import ShopifyConnection, ShopifyProductDetail
from channels_shopify.sandbox import DEFAULT_SECRET, ShopifySandbox
from channels_shopify.webhooks import sign
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    ListingPayload,
    PermanentChannelError,
    TransientChannelError,
    WebhookRejected,
)
from inventory.models import Order, WebhookEvent
from inventory.services.sync import webhook_receive
from tests.factories import make_item
from tests.shopify_market import shopify_connection

PAYLOAD = ListingPayload(
    sku="JM-62",
    title="1962 Fender Jazzmaster",
    description="Olympic white.",
    price=Decimal("4200.00"),
    currency="USD",
    quantity=1,
    brand="Fender",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://cdn.example.com/jm.jpg",),
)


@pytest.fixture
def shop():
    with ShopifySandbox() as sandbox:
        yield sandbox


@pytest.fixture
def connection(account, shop):
    return shopify_connection(account, shop)


def mutations(shop) -> list[str]:
    return [r.operation for r in shop.requests() if r.is_mutation]


def quantity_of(shop, product_id) -> int:
    [variant] = shop.product(product_id)["variants"]["nodes"]
    return variant["inventoryItem"]["inventoryLevel"]["quantities"][0]["quantity"]


# --- publish --------------------------------------------------------------------------------


def test_publish_creates_one_active_product_with_its_variant_stock_and_photos(connection, shop):
    result = sync.publish(connection, PAYLOAD, None)

    number = result.external_id.rsplit("/", 1)[1]
    assert (result.adopted, result.url) == (False, f"https://{connection.shop_domain}/admin/products/{number}")
    [product] = shop.products(sku="JM-62")
    assert (product["id"], product["status"], product["title"], product["vendor"]) == (
        result.external_id,
        "ACTIVE",
        "1962 Fender Jazzmaster",
        "Fender",
    )
    assert [m["image"]["url"] for m in product["media"]["nodes"]] == ["https://cdn.example.com/jm.jpg"]
    assert quantity_of(shop, result.external_id) == 1
    assert [r.operation for r in shop.requests()] == ["VariantsBySku", "ProductSet"]
    detail = ShopifyProductDetail.objects.get(connection=connection)
    assert (detail.product_id, detail.sku, detail.status, detail.quantity) == (result.external_id, "JM-62", "ACTIVE", 1)
    assert detail.admin_url == result.url
    assert detail.storefront_url == f"https://{shop.store.shop_domain}/products/1962-fender-jazzmaster"


def test_publish_again_adopts_the_same_product_and_never_creates_a_second(connection, shop):
    first = sync.publish(connection, PAYLOAD, None)
    shop.reset_log()

    again = sync.publish(connection, PAYLOAD, first.external_id)
    lost = sync.publish(connection, PAYLOAD, None)  # the engine lost the id: found by SKU

    assert again.external_id == lost.external_id == first.external_id
    assert (again.adopted, lost.adopted) == (False, True)
    assert len(shop.products(sku="JM-62")) == 1
    creates = [r for r in shop.requests("ProductSet") if not r.variables["input"].get("id")]
    assert creates == []
    assert "InventorySet" not in mutations(shop)  # the quantity already matched: not touched


def test_a_create_whose_answer_was_lost_is_adopted_on_the_next_try(connection, shop):
    connection.timeout_seconds = 1.0
    connection.save(update_fields=["timeout_seconds"])
    shop.set_faults(timeout_delay=3.0)
    shop.fail_next("timeout", operation="ProductSet")
    with pytest.raises(TransientChannelError, match="may have been applied"):
        sync.publish(connection, PAYLOAD, None)
    assert len(shop.products(sku="JM-62")) == 1  # Shopify made it, we never heard

    result = sync.publish(connection, PAYLOAD, None)

    assert result.adopted is True
    assert len(shop.products(sku="JM-62")) == 1


def test_a_product_made_in_shopify_is_adopted_by_exact_sku_only(connection, shop):
    made = shop.add_product("JM-62", title="Jazzmaster made in Shopify", price="3900.00", quantity=3, status="DRAFT")
    shop.add_product("JM-62-B", title="Another guitar", price="100.00")  # Shopify's search also finds this one

    result = sync.publish(connection, PAYLOAD, None)

    assert (result.external_id, result.adopted) == (made["id"], True)
    product = shop.product(made["id"])
    assert (product["status"], product["title"]) == ("ACTIVE", "1962 Fender Jazzmaster")
    assert product["variants"]["nodes"][0]["price"] == "4200.00"
    # the stock is set over what Shopify had, with its figure as the compare quantity
    [stock] = shop.requests("InventorySet")
    assert stock.variables["input"]["quantities"][0] | {} == {
        "inventoryItemId": product["variants"]["nodes"][0]["inventoryItem"]["id"],
        "locationId": connection.location_id,
        "quantity": 1,
        "compareQuantity": 3,
    }
    assert quantity_of(shop, made["id"]) == 1
    assert shop.products(sku="JM-62-B")[0]["title"] == "Another guitar"


def test_a_product_with_other_variants_is_not_adopted_and_nothing_is_deleted(connection, shop):
    made = shop.add_product("JM-62", title="Multi", price="10.00", extra_variants=1)

    with pytest.raises(PermanentChannelError, match="has 2 variants"):
        sync.publish(connection, PAYLOAD, None)

    assert len(shop.product(made["id"])["variants"]["nodes"]) == 2
    assert mutations(shop) == []


def test_user_errors_are_shown_with_their_field_and_kept_for_the_admin(connection, shop):
    result = sync.publish(connection, PAYLOAD, None)
    with pytest.raises(PermanentChannelError) as refused:
        sync.revise(connection, result.external_id, replace(PAYLOAD, price=Decimal("-1")), frozenset({"price"}))
    assert refused.value.message == (
        "Shopify refused the price of JM-62: variants.0.price: Price must be greater than or equal to 0"
    )
    detail = ShopifyProductDetail.objects.get(connection=connection)
    assert detail.user_errors[0]["field"] == ["variants", "0", "price"]


def test_an_item_shopify_cannot_take_is_refused_before_any_call(connection, shop):
    with pytest.raises(PermanentChannelError, match="no SKU"):
        sync.publish(connection, replace(PAYLOAD, sku=" "), None)
    no_location = shopify_connection(connection.account, shop, name="No location", location_id="")
    with pytest.raises(PermanentChannelError, match="no location"):
        sync.publish(no_location, PAYLOAD, None)
    assert shop.requests() == []


# --- revise -----------------------------------------------------------------------------------


def test_revise_sends_only_the_changed_fields(connection, shop):
    product_id = sync.publish(connection, PAYLOAD, None).external_id
    shop.reset_log()

    sync.revise(connection, product_id, replace(PAYLOAD, title="1962 Jazzmaster, refret"), frozenset({"title"}))
    [update] = shop.requests("ProductUpdate")
    assert update.variables["product"] == {
        "id": product_id,
        "title": "1962 Jazzmaster, refret",
        "seo": {"title": "1962 Jazzmaster, refret", "description": ""},
    }
    assert mutations(shop) == ["ProductUpdate"]
    shop.reset_log()

    sync.revise(connection, product_id, replace(PAYLOAD, price=Decimal("3999.00")), frozenset({"price"}))
    assert mutations(shop) == ["VariantsBulkUpdate"]
    [bulk] = shop.requests("VariantsBulkUpdate")
    assert bulk.variables["variants"] == [
        {"id": shop.product(product_id)["variants"]["nodes"][0]["id"], "price": "3999.00"}
    ]
    shop.reset_log()

    sync.revise(connection, product_id, PAYLOAD, frozenset({"model", "year"}))  # nothing Shopify shows
    assert shop.requests() == []


def test_a_quantity_change_is_compared_and_a_sale_in_shopify_meanwhile_is_never_overwritten(connection, shop):
    three = replace(PAYLOAD, quantity=3, condition="brand_new")
    product_id = sync.publish(connection, three, None).external_id
    shop.reset_log()

    sync.revise(connection, product_id, replace(three, quantity=2), frozenset({"quantity"}))
    [stock] = shop.requests("InventorySet")
    assert stock.variables["input"]["quantities"][0]["compareQuantity"] == 3
    assert quantity_of(shop, product_id) == 2

    # Shopify sells one between our read and our write: its figure is now 1, ours says 4
    real_read = sync._read_product

    def read_then_sale(client, pid, location):
        product = real_read(client, pid, location)
        if not shop.requests("InventorySet")[1:]:
            shop.store.sell("JM-62")  # stock 2 -> 1
        return product

    sync._read_product = read_then_sale
    try:
        with pytest.raises(TransientChannelError, match="went from 2 to 1 meanwhile"):
            sync.revise(connection, product_id, replace(three, quantity=4), frozenset({"quantity"}))
    finally:
        sync._read_product = real_read
    assert quantity_of(shop, product_id) == 1  # not overwritten
    codes = [r for r in shop.requests("InventorySet")]
    assert len(codes) == 2  # the refused write; no blind second one

    # a restock in Shopify meanwhile (its figure went up) is set over with ours
    shop.set_quantity("JM-62", 5)
    sync.revise(connection, product_id, replace(three, quantity=2), frozenset({"quantity"}))
    assert quantity_of(shop, product_id) == 2


def test_units_gone_in_shopify_since_the_last_push_are_never_put_back_on_sale(connection, shop):
    # Given a one-of-a-kind guitar that sold on Shopify, its order not recorded here yet
    product_id = sync.publish(connection, PAYLOAD, None).external_id
    shop.simulate_sale("JM-62", deliver_webhook=False)
    shop.reset_log()

    # When a revise would offer a unit again, it is refused as the sale it is (the engine then reads orders)
    with pytest.raises(PermanentChannelError, match="sold out on Shopify"):
        sync.revise(connection, product_id, replace(PAYLOAD, quantity=2), frozenset({"quantity"}))
    assert quantity_of(shop, product_id) == 0
    assert mutations(shop) == []
    assert sync.read_listing(connection, product_id).state == "sold"

    # Given five units, one sold on Shopify: more than Shopify shows is not pushed until that order is in
    five = replace(PAYLOAD, sku="STRINGS-10", quantity=5, condition="brand_new")
    strings = sync.publish(connection, five, None).external_id
    shop.simulate_sale("STRINGS-10", deliver_webhook=False)
    with pytest.raises(TransientChannelError, match="went from 5 to 4 since the last push"):
        sync.revise(connection, strings, replace(five, quantity=6), frozenset({"quantity"}))
    assert quantity_of(shop, strings) == 4
    # And once that sale is recorded here (our figure drops too), less than Shopify shows is set as usual
    sync.revise(connection, strings, replace(five, quantity=3), frozenset({"quantity"}))
    assert quantity_of(shop, strings) == 3
    assert ShopifyProductDetail.objects.get(product_id=strings).pushed_quantity == 3


# --- end ----------------------------------------------------------------------------------------


def test_end_sets_zero_and_draft_and_reads_it_back(connection, shop):
    product_id = sync.publish(connection, PAYLOAD, None).external_id
    shop.reset_log()

    outcome = sync.end(connection, product_id, END_SOLD_ELSEWHERE)

    assert (outcome.confirmed, outcome.state) == (True, "ended")
    assert [r.operation for r in shop.requests()] == ["Product", "InventorySet", "ProductUpdate", "Product"]
    product = shop.product(product_id)
    assert (product["status"], quantity_of(shop, product_id), product["onlineStoreUrl"]) == ("DRAFT", 0, None)
    assert sync.read_listing(connection, product_id).state == "ended"
    # ending again is a success with no write
    shop.reset_log()
    assert sync.end(connection, product_id, END_SOLD_ELSEWHERE).confirmed
    assert mutations(shop) == []
    # relisting puts it back on sale with its quantity
    relisted = sync.publish(connection, PAYLOAD, product_id)
    assert (relisted.external_id, shop.product(product_id)["status"], quantity_of(shop, product_id)) == (
        product_id,
        "ACTIVE",
        1,
    )


def test_ending_a_product_shopify_no_longer_has_is_confirmed(connection, shop):
    outcome = sync.end(connection, "gid://shopify/Product/999999", END_SOLD_ELSEWHERE)
    assert (outcome.confirmed, outcome.state) == (True, "ended")
    assert mutations(shop) == []


def test_a_product_sold_out_in_shopify_reads_as_sold(connection, shop):
    product_id = sync.publish(connection, PAYLOAD, None).external_id
    shop.simulate_sale("JM-62", deliver_webhook=False)
    assert sync.read_listing(connection, product_id).state == "sold"
    assert sync.find_listing(connection, "JM-62").external_id == product_id
    assert sync.find_listing(connection, "NOPE") is None


# --- pull ---------------------------------------------------------------------------------------


def test_pull_reads_orders_by_update_time_and_pages_with_the_cursor(connection, shop):
    sync.publish(connection, replace(PAYLOAD, quantity=30, condition="brand_new"), None)
    orders = [shop.simulate_sale("JM-62", deliver_webhook=False) for _ in range(13)]
    shop.reset_log()

    result = sync.pull(connection, timezone.now() - timedelta(hours=1))

    assert sorted(o.external_id for o in result.orders) == sorted(o["legacyResourceId"] for o in orders)
    assert [r.operation for r in shop.requests()] == ["Changes", "OrdersPage"]  # 10 + 3
    assert result.pages_read == 2
    [order] = [o for o in result.orders if o.external_id == orders[0]["legacyResourceId"]]
    assert (order.status, order.lines[0].sku, order.lines[0].quantity) == ("paid", "JM-62", 1)
    assert result.watermark == max(o.updated_at for o in result.orders)
    assert [r.variables["query"] for r in shop.requests("OrdersPage")] == [
        shop.requests("Changes")[0].variables["ordersQuery"]
    ]


def test_an_order_of_more_lines_than_a_page_is_read_whole(connection, shop):
    skus = [f"PEDAL-{n:02d}" for n in range(13)]
    for sku in skus:
        sync.publish(connection, replace(PAYLOAD, sku=sku, title=f"Pedal {sku}"), None)
    order = shop.simulate_sale(skus[0], more_skus=tuple(skus[1:]), deliver_webhook=False)
    shop.reset_log()

    [seen] = sync.pull(connection, timezone.now() - timedelta(hours=1)).orders

    assert sorted(line.sku for line in seen.lines) == skus
    # (the 13 products changed too: their second page is read as well)
    assert [r.operation for r in shop.requests()] == ["Changes", "ProductsPage", "OrderLines"]
    headers, body = delivery(shop, payload={"id": int(order["legacyResourceId"])})
    [by_webhook] = sync.webhook_orders(connection, sync.parse_webhook(connection, headers, body))
    assert len(by_webhook.lines) == 13


def test_a_pull_that_finds_nothing_reads_one_page(connection, shop):
    sync.publish(connection, PAYLOAD, None)
    first = sync.pull(connection, None)
    later = first.watermark + timedelta(minutes=10)
    shop.reset_log()

    result = sync.pull(connection, later)

    assert (result.orders, result.listings, result.pages_read, result.watermark) == ([], [], 1, later)
    assert [r.operation for r in shop.requests()] == ["Changes"]


def test_the_first_pull_reports_products_made_in_shopify(connection, shop):
    made = shop.add_product("MADE-THERE", title="Vox AC30", price="1250.00", vendor="Vox")
    result = sync.pull(connection, None)
    [seen] = result.listings
    assert (seen.external_id, seen.sku, seen.state, seen.title, seen.price, seen.brand) == (
        made["id"],
        "MADE-THERE",
        "live",
        "Vox AC30",
        Decimal("1250.00"),
        "Vox",
    )
    assert [s.sku for s in sync.read_all_listings(connection)] == ["MADE-THERE"]


def test_a_cancelled_and_refunded_order_is_read_as_cancelled(connection, shop):
    sync.publish(connection, PAYLOAD, None)
    order = shop.simulate_sale("JM-62", deliver_webhook=False)
    shop.cancel_order(order["id"], deliver_webhook=False)
    [seen] = sync.pull(connection, timezone.now() - timedelta(hours=1)).orders
    assert seen.status == "cancelled"


# --- webhooks -----------------------------------------------------------------------------------


def delivery(shop, topic="orders/create", payload=None, secret=DEFAULT_SECRET):
    body = json.dumps(payload or {"id": 5001, "admin_graphql_api_id": "gid://shopify/Order/5001"}).encode()
    return shop.webhook_headers(topic, body, secret=secret), body


def test_a_signed_delivery_is_identified_by_its_event_id(connection, shop):
    headers, body = delivery(shop)
    seen = sync.parse_webhook(connection, headers, body)
    assert (seen.topic, seen.dedupe_key, seen.payload["id"]) == (
        "orders/create",
        f"event:{headers['X-Shopify-Event-Id']}",
        5001,
    )


@pytest.mark.parametrize("case", ["wrong secret", "changed body", "missing header", "other shop", "no secret set"])
def test_bad_deliveries_are_rejected_with_401_and_nothing_is_stored(connection, shop, case):
    headers, body = delivery(shop, secret="not-the-secret" if case == "wrong secret" else DEFAULT_SECRET)
    if case == "changed body":
        body = body.replace(b"5001", b"5002")
    if case == "missing header":
        del headers["X-Shopify-Hmac-Sha256"]
    if case == "other shop":
        headers["X-Shopify-Shop-Domain"] = "someone-else.myshopify.com"
    if case == "no secret set":
        ShopifyConnection.objects.filter(pk=connection.pk).update(webhook_secret="")
        connection.refresh_from_db()

    with pytest.raises(WebhookRejected) as rejected:
        webhook_receive(connection=connection, headers=headers, body=body)

    assert rejected.value.http_status == 401
    assert not WebhookEvent.objects.exists()


def test_after_a_secret_rotation_the_old_secret_is_accepted_for_an_hour_only(connection, shop):
    from inventory.services.connections import connection_update

    old_headers, body = delivery(shop)
    connection = connection_update(connection=connection, fields={"webhook_secret": "the-new-client-secret"})
    connection = ShopifyConnection.objects.get(pk=connection.pk)
    assert (connection.webhook_secret, connection.webhook_secret_previous) == ("the-new-client-secret", DEFAULT_SECRET)

    # a delivery signed before the rotation (or Shopify retrying one) still counts, and so does the new secret
    assert sync.parse_webhook(connection, old_headers, body).topic == "orders/create"
    new_headers, _ = delivery(shop, secret="the-new-client-secret")
    assert sync.parse_webhook(connection, new_headers, body).topic == "orders/create"

    # an hour later the old secret is refused
    ShopifyConnection.objects.filter(pk=connection.pk).update(
        webhook_secret_changed_at=timezone.now() - timedelta(hours=1, seconds=1)
    )
    connection.refresh_from_db()
    with pytest.raises(WebhookRejected):
        sync.parse_webhook(connection, old_headers, body)
    assert sync.parse_webhook(connection, new_headers, body).topic == "orders/create"


def test_the_signature_is_compared_in_constant_time(monkeypatch, connection, shop):
    import hmac

    compared = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    headers, body = delivery(shop)
    sync.parse_webhook(connection, headers, body)
    assert compared == [1]


def test_a_replayed_event_is_stored_once(connection, shop):
    headers, body = delivery(shop)
    first, created = webhook_receive(connection=connection, headers=headers, body=body)
    again, created_again = webhook_receive(
        connection=connection, headers={**headers, "X-Shopify-Webhook-Id": "x"}, body=body
    )
    assert (created, created_again, first.pk) == (True, False, again.pk)
    assert WebhookEvent.objects.get().deliveries == 2


def test_an_order_delivery_reads_the_order_as_shopify_has_it_now(connection, shop):
    sync.publish(connection, PAYLOAD, None)
    order = shop.simulate_sale("JM-62", financial_status="PENDING", deliver_webhook=False)
    stale_payload = shop.order_payload(shop.store.orders[int(order["legacyResourceId"])])
    shop.store.mark_paid(int(order["legacyResourceId"]))  # paid since the delivery was made
    headers, body = delivery(shop, payload=stale_payload)

    [seen] = sync.webhook_orders(connection, sync.parse_webhook(connection, headers, body))

    assert (seen.external_id, seen.status) == (order["legacyResourceId"], "paid")
    other = sync.parse_webhook(connection, *delivery(shop, topic="products/update", payload={"id": 1}))
    assert sync.webhook_orders(connection, other) == []
    unknown = sync.parse_webhook(connection, *delivery(shop, payload={"id": 424242}))
    assert sync.webhook_orders(connection, unknown) == []


def test_customers_redact_erases_the_buyers_data_of_those_orders_only(account, connection, shop):
    item = make_item(account, n=1, sku="JM-62")
    kept = Order.objects.create(
        account=account,
        connection=connection,
        channel="shopify",
        external_id="1",
        placed_at=timezone.now(),
        buyer_name="Keep Me",
        buyer_email="keep@example.com",
    )
    gone = Order.objects.create(
        account=account,
        connection=connection,
        channel="shopify",
        external_id="2",
        placed_at=timezone.now(),
        buyer_name="Jamie Buyer",
        buyer_email="jamie@example.com",
        ship_line1="1 Main Street",
        ship_city="Nashville",
    )
    event = sync.parse_webhook(
        connection,
        *delivery(
            shop,
            topic="customers/redact",
            payload={"shop_domain": shop.store.shop_domain, "customer": {"id": 9}, "orders_to_redact": [2]},
        ),
    )
    assert sync.webhook_orders(connection, event) == []
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert (gone.buyer_name, gone.buyer_email, gone.ship_line1, gone.ship_city) == ("", "", "", "")
    assert (kept.buyer_name, kept.buyer_email) == ("Keep Me", "keep@example.com")
    assert item.pk  # stock and items are untouched


def test_hmac_matches_shopifys_published_construction():
    # base64(HMAC-SHA256(secret, raw body)); the figure is from `printf %s {"id":1} | openssl dgst -sha256 -hmac hush -binary | base64`
    assert sign("hush", b'{"id":1}') == "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="


# --- check and webhook registration ---------------------------------------------------------------


def test_the_check_says_in_plain_words_what_works_and_what_to_fix(connection, shop):
    result = sync.check(connection)
    assert result.ok, result.summary
    assert [s.label for s in result.steps] == ["Access token", "Store", "Location", "Webhook secret", "API version"]

    broken = shopify_connection(
        connection.account, shop, name="Broken", location_id="", webhook_secret="", access_token="shpat_wrong"
    )
    token, version = sync.check(broken).steps
    assert (token.ok, token.label, version.ok) == (False, "Access token", True)
    assert "refused the access token" in token.message

    no_location = shopify_connection(connection.account, shop, name="No location", location_id="", webhook_secret="")
    result = sync.check(no_location)
    assert not result.ok
    assert "Location: Choose the location stock is kept at: Shop floor (gid://shopify/Location/1)" in result.summary
    assert "Webhook secret: Paste the app's client secret" in result.summary

    later = shopify_connection(connection.account, shop, name="Later", api_version="2026-04", api_url=shop.root_url)
    [step] = [s for s in sync.check(later).steps if s.label == "API version"]
    assert (step.ok, step.message.split(" makes")[0]) == (False, "2026-04")


def test_register_webhooks_subscribes_each_topic_once(connection, shop):
    lines = sync.register_webhooks(connection, "https://bo.example.com")
    assert lines[:5] == [f"{t}: registered" for t in sync.WEBHOOK_TOPICS.values()]
    again = sync.register_webhooks(connection, "https://bo.example.com/")
    assert again[:5] == [f"{t}: already registered" for t in sync.WEBHOOK_TOPICS.values()]
    urls = {s["callbackUrl"] for s in shop.store.subscriptions.values()}
    assert urls == {"https://bo.example.com" + connection.webhook_path}
    assert len(shop.store.subscriptions) == 5
    # the site moved: the same subscriptions now point at the new address
    moved = sync.register_webhooks(connection, "https://new.example.com")
    assert moved[:5] == [f"{t}: moved to this address" for t in sync.WEBHOOK_TOPICS.values()]
    assert {s["callbackUrl"] for s in shop.store.subscriptions.values()} == {
        "https://new.example.com" + connection.webhook_path
    }
    assert len(shop.store.subscriptions) == 5
