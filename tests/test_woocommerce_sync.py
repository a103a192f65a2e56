"""WooCommerce's contract functions against the loopback shop: publish, revise, end, read, pull, check."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels_woocommerce import sync
from channels_woocommerce.models import WooCommerceConnection, WooCommerceListingDetail
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    EndResult,
    ListingPayload,
    PermanentChannelError,
    PublishResult,
    TransientChannelError,
    channel,
)

pytestmark = pytest.mark.django_db

STRAT = ListingPayload(
    sku="WC-1964",
    title="1964 Fender Stratocaster",
    description="All original.\n\nComes with the case.",
    price=Decimal("5000.00"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    photos=("https://img.example.com/strat-1.jpg", "https://img.example.com/strat-2.jpg", "/media/local.jpg"),
)


@pytest.fixture
def shop():
    with WooSandbox() as sandbox:
        yield sandbox
    assert sandbox.refused_by_index() == []  # every request the tests made fits the route index


@pytest.fixture
def connection(account, shop):
    return WooCommerceConnection.objects.create(
        account=account,
        name="Website",
        store_url=shop.store_url,
        consumer_key=DEFAULT_KEY,
        consumer_secret=DEFAULT_SECRET,
        # Not 2 s: a loopback store on a busy 2-vCPU CI machine has been seen to
        # take longer than 2 s to answer a batch. Tests of a lost answer set their own, shorter one.
        timeout_seconds=10.0,
        category_ids={"Electric Guitars": [17]},
    )


def writes(shop):
    return [(r.method, r.path) for r in shop.requests() if r.is_write]


def test_the_registry_finds_the_channel_with_its_defaults():
    module = channel("woocommerce")
    assert module is sync
    assert (module.NAME, module.LABEL, module.DEFAULT_PRIORITY) == ("woocommerce", "WooCommerce", 60)
    assert module.CONNECTION_MODEL == "channels_woocommerce.WooCommerceConnection"


def test_publish_creates_one_simple_product_and_reads_it_back(connection, shop):
    result = sync.publish(connection, STRAT, None)

    [product] = shop.products(sku="WC-1964")
    assert result == PublishResult(external_id=str(product["id"]), url=product["permalink"], adopted=False)
    assert (product["status"], product["type"], product["regular_price"], product["stock_quantity"]) == (
        "publish",
        "simple",
        "5000.00",
        1,
    )
    assert product["manage_stock"] is True
    assert [(i["src"], i["alt"]) for i in product["images"]] == [
        ("https://img.example.com/strat-1.jpg", "1964 Fender Stratocaster"),
        ("https://img.example.com/strat-2.jpg", "1964 Fender Stratocaster (2)"),
    ]
    assert [c["id"] for c in product["categories"]] == [17]
    assert {a["name"]: a["options"] for a in product["attributes"]}["Brand"] == ["Fender"]
    # The SKU was looked up first, the product created once, then read back by id
    assert [(r.method, r.path) for r in shop.requests() if r.path != "/settings/general/woocommerce_currency"] == [
        ("GET", "/products"),
        ("POST", "/products"),
        ("GET", f"/products/{product['id']}"),
    ]
    [request] = shop.requests("POST", "/products")
    assert request.auth == "oauth"  # plain http: OAuth 1.0a one-legged
    detail = WooCommerceListingDetail.objects.get(connection=connection, sku="WC-1964")
    assert (detail.product_id, detail.status, detail.stock_quantity) == (str(product["id"]), "publish", 1)


def test_publish_adopts_the_product_that_already_has_the_sku_and_never_creates_a_second(connection, shop):
    made_there = shop.add_external_product("WC-1964", name="Old title", price="4000.00", quantity=0, status="draft")

    result = sync.publish(connection, STRAT, None)

    assert result == PublishResult(external_id=str(made_there["id"]), url=result.url, adopted=True)
    [product] = shop.products(sku="WC-1964")
    assert (product["name"], product["regular_price"], product["stock_quantity"], product["status"]) == (
        "1964 Fender Stratocaster",
        "5000.00",
        1,
        "publish",
    )
    assert shop.calls("POST", "/products") == 0
    # Publishing again with the id is idempotent: an update of the same product, still one
    again = sync.publish(connection, STRAT, result.external_id)
    assert (again.external_id, again.adopted) == (result.external_id, False)
    assert len(shop.products(sku="WC-1964")) == 1


def test_a_create_whose_answer_was_lost_is_adopted_on_the_next_try_not_made_twice(connection, shop):
    connection.timeout_seconds = 1.0
    connection.save(update_fields=["timeout_seconds"])
    shop.fail_next("timeout", method="POST", path_prefix="/products")
    shop.set_faults(timeout_delay=2.5)

    with pytest.raises(TransientChannelError, match="may have been applied"):
        sync.publish(connection, STRAT, None)
    assert len(shop.products(sku="WC-1964")) == 1  # the shop made it; we never heard

    result = sync.publish(connection, STRAT, None)
    [product] = shop.products(sku="WC-1964")
    assert (result.external_id, result.adopted) == (str(product["id"]), True)
    assert shop.calls("POST", "/products") == 1


def test_the_shops_unique_sku_rule_turns_a_racing_create_into_an_adoption(connection, shop, monkeypatch):
    # The lookup finds nothing (another worker is creating it at that moment), then the create is refused
    made = shop.add_external_product("WC-1964", quantity=1)
    calls = {"n": 0}
    real = sync.WooCommerceClient.products_by_sku

    def first_lookup_misses(self, sku):
        calls["n"] += 1
        return [] if calls["n"] == 1 else real(self, sku)

    monkeypatch.setattr(sync.WooCommerceClient, "products_by_sku", first_lookup_misses)
    result = sync.publish(connection, STRAT, None)

    assert (result.external_id, result.adopted) == (str(made["id"]), True)
    assert [r.status for r in shop.requests("POST", "/products")] == [400]  # product_invalid_sku
    assert len(shop.products(sku="WC-1964")) == 1


def test_publish_refuses_a_price_in_another_currency_than_the_shops_before_any_write(connection, shop):
    shop.store.currency = "EUR"
    with pytest.raises(PermanentChannelError, match="sells in EUR"):
        sync.publish(connection, STRAT, None)
    assert writes(shop) == []
    connection.refresh_from_db()
    assert connection.store_currency == "EUR"


def test_revise_sends_only_the_changed_fields(connection, shop):
    product_id = sync.publish(connection, STRAT, None).external_id
    shop.reset_log()

    sync.revise(
        connection, product_id, replace(STRAT, price=Decimal("4750"), quantity=3), frozenset({"price", "quantity"})
    )

    [request] = shop.requests()
    assert (request.method, request.path) == ("PUT", f"/products/{product_id}")
    assert request.body == {"regular_price": "4750.00", "manage_stock": True, "stock_quantity": 3}
    product = shop.product(product_id)
    assert (product["regular_price"], product["stock_quantity"], product["name"]) == (
        "4750.00",
        3,
        "1964 Fender Stratocaster",
    )
    shop.reset_log()
    sync.revise(connection, product_id, STRAT, frozenset({"serial_number", "video_url"}))  # nothing the shop shows
    assert shop.calls() == 0


def test_end_sets_stock_0_and_draft_and_confirms_by_read_back(connection, shop):
    product_id = sync.publish(connection, STRAT, None).external_id
    shop.reset_log()

    result = sync.end(connection, product_id, END_SOLD_ELSEWHERE)

    assert result == EndResult(confirmed=True, state="ended")
    assert [(r.method, r.path, r.body) for r in shop.requests()] == [
        ("PUT", f"/products/{product_id}", {"manage_stock": True, "stock_quantity": 0, "status": "draft"}),
        ("GET", f"/products/{product_id}", None),
    ]
    product = shop.product(product_id)
    assert (product["status"], product["stock_quantity"], product["stock_status"]) == ("draft", 0, "outofstock")
    assert sync.read_listing(connection, product_id).state == "ended"
    # Ending again is a success; a product the shop no longer has is off sale
    assert sync.end(connection, product_id, END_SOLD_ELSEWHERE).confirmed
    shop.store.products.clear()
    assert sync.end(connection, product_id, END_SOLD_ELSEWHERE) == EndResult(confirmed=True, state="ended")


def test_relist_publishes_the_same_product_again_with_its_stock(connection, shop):
    product_id = sync.publish(connection, STRAT, None).external_id
    sync.end(connection, product_id, END_SOLD_ELSEWHERE)

    result = sync.publish(connection, replace(STRAT, quantity=1), product_id)

    assert (result.external_id, result.adopted) == (product_id, False)
    product = shop.product(product_id)
    assert (product["status"], product["stock_quantity"]) == ("publish", 1)
    assert len(shop.products()) == 1


def test_a_sale_on_the_website_reads_back_as_sold(connection, shop):
    product_id = sync.publish(connection, STRAT, None).external_id
    shop.simulate_sale("WC-1964")
    seen = sync.read_listing(connection, product_id)
    assert (seen.state, seen.quantity) == ("sold", 0)
    assert sync.find_listing(connection, "WC-1964").external_id == product_id
    assert sync.find_listing(connection, "NOPE") is None


def test_pull_reads_orders_by_modification_time_in_gmt_and_maps_their_status(connection, shop):
    sync.publish(connection, STRAT, None)
    sync.publish(connection, replace(STRAT, sku="WC-2", title="Amp", quantity=5), None)
    paid = shop.simulate_sale("WC-1964", status="processing")
    held = shop.simulate_sale("WC-2", status="on-hold")
    failed = shop.simulate_sale("WC-2", status="failed")
    shop.reset_log()

    result = sync.pull(connection, None)

    statuses = {o.external_id: o.status for o in result.orders}
    assert statuses == {str(paid["id"]): "paid", str(held["id"]): "pending", str(failed["id"]): "cancelled"}
    [order_request] = shop.requests("GET", "/orders")
    assert order_request.query["dates_are_gmt"] == "true" and "modified_after" in order_request.query
    order = next(o for o in result.orders if o.external_id == str(paid["id"]))
    [line] = order.lines
    assert (line.sku, line.quantity, line.unit_price) == ("WC-1964", 1, Decimal("5000.0"))
    assert (order.total, order.shipping, order.buyer_email, order.ship_country) == (
        Decimal("5025.00"),
        Decimal("25.00"),
        "dana@example.com",
        "US",
    )
    assert result.watermark >= max(o.updated_at for o in result.orders)
    # The first pull read every product too (listings the system may not know)
    assert {seen.sku for seen in result.listings} == {"WC-1964", "WC-2"}


def test_a_pull_when_nothing_changed_reads_one_page(connection, shop):
    sync.publish(connection, STRAT, None)
    first = sync.pull(connection, None)
    shop.reset_log()

    second = sync.pull(connection, first.watermark or datetime.now(UTC))

    assert second.orders == [] and second.listings == []
    assert (second.pages_read, shop.calls()) == (1, 1)
    assert shop.requests()[0].path == "/orders"


def test_pull_pages_by_x_wp_totalpages(connection, shop):
    for n in range(230):
        shop.add_external_product(f"MANY-{n}", quantity=1)
    result = sync.pull(connection, None)
    assert len(result.listings) == 230
    assert [r.query["page"] for r in shop.requests("GET", "/products")] == ["1", "2", "3"]
    assert all(r.query["per_page"] == "100" for r in shop.requests("GET", "/products"))


def test_a_product_webhook_makes_the_next_pull_read_changed_products(connection, shop):
    sync.publish(connection, STRAT, None)
    first = sync.pull(connection, None)
    made = shop.add_external_product("MADE-THERE", name="Vox AC30", price="1250.00")
    assert sync.pull(connection, first.watermark).listings == []  # not due yet

    from inventory.channels import WebhookSeen

    sync.webhook_orders(connection, WebhookSeen("product.updated", "k", {"id": made["id"]}))
    shop.reset_log()
    result = sync.pull(connection, first.watermark)

    # Products changed since the last read (less a 2-minute overlap, so WC-1964 published a moment
    # ago is read again: the engine finds it known and skips it)
    assert sorted((seen.sku, seen.state, seen.title, seen.price) for seen in result.listings) == [
        ("MADE-THERE", "live", "Vox AC30", Decimal("1250.00")),
        ("WC-1964", "live", "1964 Fender Stratocaster", Decimal("5000.00")),
    ]
    [products_read] = shop.requests("GET", "/products")
    assert products_read.query["dates_are_gmt"] == "true" and "modified_after" in products_read.query


def test_unknown_fields_in_the_shops_answers_are_ignored(connection, shop):
    product = shop.add_external_product("EXTRA", quantity=2)
    assert "jetpack_sharing_enabled" in product and "meta_data" in product
    seen = sync.read_listing(connection, str(product["id"]))
    assert (seen.sku, seen.state, seen.quantity) == ("EXTRA", "live", 2)


# --- bulk -------------------------------------------------------------------------------------


def payloads(n: int, prefix: str = "BULK") -> list[tuple[ListingPayload, None]]:
    return [(replace(STRAT, sku=f"{prefix}-{i}", title=f"Item {i}", photos=()), None) for i in range(n)]


def test_publish_many_goes_through_batches_of_100_and_records_each_objects_own_error(connection, shop):
    shop.add_external_product("BULK-3", name="Already there", quantity=0, status="draft")
    shop.refuse_sku("BULK-7", "Product needs a shipping class.")

    results = sync.publish_many(connection, payloads(150))

    assert [type(r).__name__ for r in results].count("PublishResult") == 149
    refused = results[7]
    assert isinstance(refused, PermanentChannelError) and "Product needs a shipping class." in refused.message
    assert results[3].adopted is True and results[4].adopted is False
    batches = shop.requests("POST", "/products/batch")
    assert [(len(r.body.get("create", [])), len(r.body.get("update", []))) for r in batches] == [(99, 1), (50, 0)]
    assert len(shop.products()) == 150 - 1 + 0  # 149 ours (one adopted), the refused one absent
    assert {p["status"] for p in shop.products()} == {"publish"}
    detail = WooCommerceListingDetail.objects.get(connection=connection, sku="BULK-7")
    assert (detail.product_id, "shipping class" in detail.last_error) == ("", True)
    # Products read back in pages of ids, not one by one
    assert shop.calls("GET", "/products/") == 0


def test_a_batch_whose_answer_was_lost_is_not_sent_again_blindly(connection, shop):
    connection.timeout_seconds = 1.0
    connection.save(update_fields=["timeout_seconds"])
    shop.fail_next("timeout", method="POST", path_prefix="/products/batch")
    shop.set_faults(timeout_delay=2.5)

    results = sync.publish_many(connection, payloads(5, "LOST"))

    assert all(isinstance(r, PublishResult) and r.adopted for r in results)
    assert sorted(p["sku"] for p in shop.products()) == [f"LOST-{i}" for i in range(5)]  # each once
    [first, second] = shop.requests("POST", "/products/batch")
    assert (len(first.body["create"]), len(second.body.get("create", [])), len(second.body["update"])) == (5, 0, 5)


# --- the connection check ---------------------------------------------------------------------


def test_check_says_in_plain_words_what_works(connection, shop):
    result = sync.check(connection)
    assert [(s.label, s.ok) for s in result.steps] == [
        ("Shop", True),
        ("Keys", True),
        ("Permissions", True),
        ("Currency", True),
        ("Webhooks", False),
    ]
    assert "not subscribed: order.created, order.updated, product.updated, product.deleted" in result.summary
    assert writes(shop) == []  # nothing to re-enable: reads only


def test_check_names_a_wrong_secret_and_stops_there(connection, shop):
    connection.consumer_secret = "cs_wrong"
    connection.save()
    result = sync.check(connection)
    assert [(s.label, s.ok) for s in result.steps] == [("Shop", True), ("Keys", False)]
    assert "signature does not match" in result.summary and "Check the consumer key and secret" in result.summary


def test_check_says_a_read_only_key_must_become_read_write(connection, shop):
    connection.key_permissions = "read"
    connection.save()
    [step] = [s for s in sync.check(connection).steps if s.label == "Permissions"]
    assert not step.ok and "choose Read/Write" in step.message


def test_check_on_a_shop_that_is_down_says_so(connection, shop):
    shop.stop()
    result = sync.check(connection)
    assert [(s.label, s.ok) for s in result.steps] == [("Shop", False)]
    assert "Could not reach the shop" in result.summary


def test_a_shipped_order_gets_one_tracking_note_and_status_completed(connection, shop):
    sync.publish(connection, STRAT, None)
    order = shop.simulate_sale("WC-1964")

    status = sync.order_shipped(connection, str(order["id"]), carrier="UPS", tracking_number="1Z999AA10123456784")
    again = sync.order_shipped(connection, str(order["id"]), carrier="UPS", tracking_number="1Z999AA10123456784")

    assert (status, again) == ("completed", "completed")
    notes = shop.store.orders[order["id"]]["_notes"]
    assert [(n["note"], n["customer_note"]) for n in notes] == [
        ("Shipped with UPS: tracking number 1Z999AA10123456784.", True)
    ]
    assert shop.calls("PUT", f"/orders/{order['id']}") == 1


def test_a_product_deleted_on_the_shop_is_recorded_as_ended_by_the_next_pull(connection, shop):
    from inventory.models import ChannelListing
    from inventory.services.sync import connection_pull
    from tests.factories import make_item

    item = make_item(connection.account, n=1, sku="WC-1964")
    product_id = sync.publish(connection, STRAT, None).external_id
    listing = ChannelListing.objects.create(
        account=connection.account, item=item, connection=connection, external_id=product_id, actual_state="live"
    )
    connection_pull(connection_id=connection.pk)  # the first pull (reads every product: nothing new)

    # When the seller deletes the product in WordPress: product.deleted arrives as {"id": N}
    shop.delete_product(int(product_id))
    from inventory.channels import WebhookSeen

    assert sync.webhook_orders(connection, WebhookSeen("product.deleted", "k", {"id": int(product_id)})) == []
    connection_pull(connection_id=connection.pk)

    # Then the engine respects it: ended on the channel, not to be listed again by itself
    listing.refresh_from_db()
    assert (listing.actual_state, listing.desired_state, listing.end_reason) == ("ended", "ended", "ended_on_channel")
    assert shop.products() == []


def test_order_statuses_reserve_commit_and_release_stock_through_the_engine(connection, shop):
    from inventory.models import ChannelListing, Item, Order
    from inventory.services.sync import connection_pull
    from tests.factories import make_item

    item = make_item(connection.account, n=2, sku="WC-AMP", quantity=3, condition="brand_new")
    product_id = sync.publish(connection, replace(STRAT, sku="WC-AMP", quantity=3), None).external_id
    ChannelListing.objects.create(
        account=connection.account, item=item, connection=connection, external_id=product_id, actual_state="live"
    )

    def pull():
        run = connection_pull(connection_id=connection.pk)
        assert run.status == "ok", run.error_text
        item.refresh_from_db()
        return item.quantity_on_hand, item.quantity_locked

    assert pull() == (3, 0)
    held = shop.simulate_sale("WC-AMP", status="on-hold", deliver_webhook=False)  # awaiting a bank transfer
    assert pull() == (3, 1)  # reserved, not sold
    assert Order.objects.get(external_id=str(held["id"])).status == "open"

    shop.update_order(held["id"], "processing", deliver_webhook=False)  # paid
    assert pull() == (2, 0)  # committed
    assert Order.objects.get(external_id=str(held["id"])).status == "completed"

    failed = shop.simulate_sale("WC-AMP", status="pending", deliver_webhook=False)
    assert pull() == (2, 1)
    shop.update_order(failed["id"], "failed", deliver_webhook=False)  # the payment failed
    assert pull() == (2, 0)  # released
    assert Order.objects.get(external_id=str(failed["id"])).status == "cancelled"
    assert Item.objects.get(pk=item.pk).state == "active"
    assert Order.objects.count() == 2


def test_check_on_a_wrong_store_url_says_where_to_look(connection, shop):
    connection.store_url = shop.store_url + "/blog"
    connection.save()
    result = sync.check(connection)
    assert [(s.label, s.ok) for s in result.steps] == [("Shop", False)]
    assert "permalinks" in result.summary and "store URL" in result.summary


def test_marking_an_order_shipped_here_pushes_the_tracking_to_the_shop(account, connection, shop):
    """The engine's shipment step (order_ship -> shipment_push) reaches the channel's ship_order."""
    from inventory.models import Order
    from inventory.services import Actor
    from inventory.services.orders import order_ship, shipment_push
    from inventory.services.sync import connection_pull
    from tests.factories import make_item

    make_item(account, n=1, sku="WC-SHIP-1")
    sync.publish(connection, replace(STRAT, sku="WC-SHIP-1"), None)
    sold = shop.simulate_sale("WC-SHIP-1", deliver_webhook=False)
    connection_pull(connection_id=connection.pk)
    order = Order.objects.get(connection=connection, external_id=str(sold["id"]))

    order_ship(order_id=order.pk, actor=Actor(source="test"), carrier="DHL", tracking_number="00340434161094042557")
    assert shipment_push(order_id=order.pk) is True

    on_shop = shop.order(sold["id"])
    assert on_shop["status"] == "completed"
    assert any("00340434161094042557" in note["note"] for note in shop.store.orders[sold["id"]]["_notes"])
