"""Shopify beside Reverb, end to end: a real Celery worker (threads, over Redis), the live server
answering both marketplaces' webhooks, the loopback Shopify store and the loopback Reverb.

First sale wins: a signed Shopify order ends the Reverb listing; a Reverb sale ends the Shopify
product (quantity 0, DRAFT, read back); a double sale across the two opens one conflict. And
with one call in five failing on both, no order is lost, no product is made twice, every end lands.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import requests

from inventory.channels import TransientChannelError
from inventory.models import Alert, AlertKind, ChannelListing, Conflict, Item, ListingState, Order, WebhookEvent
from inventory.selectors import stock_problems
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, process_webhook_event_task
from tests.factories import make_item
from tests.shopify_market import ShopifyMarket
from tests.test_sync_e2e_harness import (
    LoopbackMarket,
    Write,
    all_converged,
    lagging,
    real_worker,
    shop_on_business_plan,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor(source="test")


@pytest.fixture
def markets(account, live_server):
    shop_on_business_plan(account)
    with (
        ShopifyMarket(account, "Website", webhook_base=live_server.url, priority=10) as website,
        LoopbackMarket(account, "Reverb shop", webhook_base=live_server.url, priority=20) as reverb,
        real_worker(concurrency=4),
    ):
        yield website, reverb


def listed_on_both(account, markets, item) -> dict[str, ChannelListing]:
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {m.name: ChannelListing.objects.get(item=item, connection=m.connection) for m in markets}


def test_an_item_goes_live_on_shopify_and_reverb_once(account, markets):
    website, _reverb = markets
    item = make_item(account, n=1, sku="BOTH-1", title="1965 Fender Deluxe Reverb", price=Decimal("2400.00"))

    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    assert wait_until(all_converged), lagging()
    for market in markets:
        [seen] = market.offered("BOTH-1")
        listing = ChannelListing.objects.get(item=item, connection=market.connection)
        assert (listing.actual_state, listing.external_id) == ("live", seen.external_id)
        assert (seen.state, seen.title, seen.price, seen.quantity) == (
            "live",
            "1965 Fender Deluxe Reverb",
            Decimal("2400.00"),
            1,
        )
    assert [w.kind for w in website.writes()] == ["create"]
    shopify_listing = ChannelListing.objects.get(item=item, connection=website.connection)
    # the item's Shopify listing links to the product in the store's admin
    number = shopify_listing.external_id.rsplit("/", 1)[1]
    assert shopify_listing.external_url == f"https://{website.sandbox.store.shop_domain}/admin/products/{number}"


def test_a_sale_on_shopify_ends_the_reverb_listing_and_shopify_wins(account, markets):
    website, reverb = markets
    item = make_item(account, n=2, sku="WEB-SOLD", title="Klon Centaur")
    listings = listed_on_both(account, markets, item)
    on_reverb = listings["Reverb shop"]

    # When a buyer checks out on the website (signed orders/create and orders/paid reach the live server)
    order_id = website.sell("WEB-SOLD")

    def ended_on_reverb() -> bool:
        return ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED

    assert wait_until(ended_on_reverb), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id, item.quantity_on_hand) == (ItemState.SOLD, website.connection.pk, 0)
    order = Order.objects.get(connection=website.connection, external_id=order_id)
    assert (order.status, order.lines.get().item_id) == ("completed", item.pk)
    events = WebhookEvent.objects.order_by("topic")
    assert [(e.topic, e.status) for e in events] == [("orders/create", "processed"), ("orders/paid", "processed")]
    # Reverb got one end and a read-back of that listing; the website got nothing (it sold there)
    assert reverb.seen(on_reverb.external_id).state == "ended"
    assert [call.kind for call in reverb.requests(on_reverb.external_id)] == ["end", "read"]
    sold_here = ChannelListing.objects.get(pk=listings["Website"].pk)
    assert (sold_here.actual_state, sold_here.end_reason) == (ListingState.SOLD, "sold_here")
    assert website.writes() == []
    assert website.seen(sold_here.external_id).state == "sold"
    assert Order.objects.count() == 1
    assert not Conflict.objects.exists()
    assert stock_problems() == []


def test_a_sale_on_reverb_takes_the_shopify_product_off_sale_and_reads_it_back(account, markets):
    website, reverb = markets
    item = make_item(account, n=3, sku="REV-SOLD", title="Gibson Les Paul Junior")
    listings = listed_on_both(account, markets, item)
    on_website = listings["Website"]

    reverb.sell("REV-SOLD")

    def ended_on_website() -> bool:
        return ChannelListing.objects.get(pk=on_website.pk).actual_state == ListingState.ENDED

    assert wait_until(ended_on_website), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)
    product_id = on_website.external_id
    assert website.seen(product_id).state == "ended"
    product = website.sandbox.product(product_id)
    assert (product["status"], product["onlineStoreUrl"]) == ("DRAFT", None)
    # quantity 0 (compared with the 1 it had), DRAFT, then the read-back
    assert website.requests(product_id) == [
        Write("read", product_id, {}, 200),
        Write("stock", product_id, {"quantity": 0}, 200),
        Write("end", product_id, {}, 200),
        Write("read", product_id, {}, 200),
    ]
    [stock] = website.sandbox.requests("InventorySet")
    assert stock.variables["input"]["quantities"][0]["compareQuantity"] == 1
    assert not Conflict.objects.exists()


def test_a_double_sale_across_shopify_and_reverb_opens_one_conflict(account, markets):
    website, reverb = markets
    item = make_item(account, n=4, sku="TWO-BUYERS", title="Martin D-28", price=Decimal("3100.00"))
    listed_on_both(account, markets, item)

    # Two buyers check out at once, one on each marketplace, before either webhook arrives
    website_order = website.sell("TWO-BUYERS", webhook=False)
    reverb_order = reverb.sell("TWO-BUYERS", webhook=False)
    deliveries = [website.order_delivery(website_order), reverb.order_delivery(reverb_order)]
    threads = [
        threading.Thread(target=requests.post, args=(url,), kwargs={"data": body, "headers": headers, "timeout": 10})
        for url, body, headers in deliveries
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert wait_until(lambda: Conflict.objects.exists() and all_converged()), lagging()
    [conflict] = Conflict.objects.all()
    assert Order.objects.count() == 2
    assert Alert.objects.filter(kind=AlertKind.CONFLICT).count() == 1
    item.refresh_from_db()
    assert item.state == ItemState.SOLD
    assert item.sold_on_id in (website.connection.pk, reverb.connection.pk)
    assert {conflict.winning_order.connection_id, conflict.losing_order.connection_id} == {
        website.connection.pk,
        reverb.connection.pk,
    }
    assert stock_problems() == []


def test_duplicate_and_out_of_order_deliveries_sell_the_item_once(account, markets):
    website, reverb = markets
    item = make_item(account, n=5, sku="ECHO-1", title="Fender Twin Reverb")
    listings = listed_on_both(account, markets, item)

    # Shopify delivers orders/paid before orders/create, and each of them twice (one event id each)
    website.sandbox.simulate_sale("ECHO-1", duplicate=True, out_of_order=True)

    on_reverb = listings["Reverb shop"]
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED), lagging()
    assert wait_until(all_converged), lagging()
    deliveries = website.sandbox.deliveries()
    assert [d.topic for d in deliveries] == ["orders/paid", "orders/paid", "orders/create", "orders/create"]
    assert all(d.status == 200 for d in deliveries)
    events = WebhookEvent.objects.order_by("received_at")
    assert [(e.topic, e.deliveries) for e in events] == [("orders/paid", 2), ("orders/create", 2)]
    assert Order.objects.count() == 1
    item.refresh_from_db()
    assert (item.state, item.sold_on_id, item.quantity_on_hand) == (ItemState.SOLD, website.connection.pk, 0)
    assert [w.kind for w in reverb.writes(on_reverb.external_id)] == ["end"]
    assert not Conflict.objects.exists()


def test_a_forged_delivery_through_the_web_is_refused_with_401_and_changes_nothing(account, markets):
    website, _reverb = markets
    item = make_item(account, n=6, sku="FORGED-1")
    listed_on_both(account, markets, item)
    order_id = website.sell("FORGED-1", webhook=False)
    url, body, headers = website.order_delivery(order_id)

    forged = requests.post(url, data=body, headers={**headers, "X-Shopify-Hmac-Sha256": "AAAA"}, timeout=10)
    unsigned = requests.post(
        url, data=body, headers={k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}, timeout=10
    )

    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert not WebhookEvent.objects.exists()
    assert not Order.objects.exists()
    item.refresh_from_db()
    assert item.state == ItemState.ACTIVE


# --- one call in five fails, on both marketplaces ------------------------------------------------


def pull_until_read(market, attempts: int = 20) -> None:
    for _ in range(attempts):
        try:
            run = connection_pull(connection_id=market.connection.pk)
        except TransientChannelError:
            continue
        if run.status == "ok":
            return
    raise AssertionError(f"{market.name} could not be pulled in {attempts} attempts")


@pytest.fixture
def flaky_markets(account, live_server, settings, monkeypatch):
    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    monkeypatch.setattr(converge_listing_task, "max_retries", 25)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 25)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 0.5}
    with (
        ShopifyMarket(
            account, "Website", webhook_base=live_server.url, priority=10, timeout=0.25, seed=5, **faults
        ) as website,
        LoopbackMarket(
            account,
            "Reverb shop",
            webhook_base=live_server.url,
            priority=20,
            timeout=0.25,
            seed=6,
            retry_after=1,
            **faults,
        ) as reverb,
        real_worker(concurrency=4),
    ):
        yield website, reverb


def test_with_faults_and_throttling_no_order_is_lost_no_product_is_doubled_and_every_end_lands(account, flaky_markets):
    website, reverb = flaky_markets
    items = [make_item(account, n=n, sku=f"FAULT-{n:02d}", title=f"Faulty guitar {n}") for n in range(8)]
    skus = [item.sku for item in items]

    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
    assert wait_until(all_converged, timeout=90), lagging()

    sales = [
        (website, "FAULT-00", True),
        (reverb, "FAULT-01", True),
        (website, "FAULT-02", False),
        (reverb, "FAULT-03", False),
    ]
    orders = [(market, market.sell(sku, webhook=webhook), sku) for market, sku, webhook in sales]
    assert wait_until(all_converged, timeout=90), lagging()
    for market in (website, reverb):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=90), lagging()

    # The faults happened on the website, of every kind
    kinds = {r.fault for r in website.sandbox.requests() if r.fault}
    assert {"error", "throttle", "timeout"} <= kinds, kinds
    # No product or listing twice, though creates timed out and were retried
    for market in (website, reverb):
        assert market.listing_count_by_sku() == dict.fromkeys(skus, 1)
    # Every order recorded once, on its connection; each sold item off sale on the other marketplace
    assert Order.objects.count() == len(orders)
    for market, order_id, sku in orders:
        order = Order.objects.get(external_id=order_id, connection=market.connection)
        assert order.lines.get().item.sku == sku
        item = Item.objects.get(sku=sku)
        assert (item.state, item.sold_on_id) == (ItemState.SOLD, market.connection.pk)
        other = reverb if market is website else website
        [seen] = other.offered(sku)
        assert seen.state == "ended"
        listing = ChannelListing.objects.get(item=item, connection=other.connection)
        assert (listing.actual_state, listing.end_reason) == (ListingState.ENDED, "sold_elsewhere")
    sold = {sku for _m, _o, sku in orders}
    for sku in set(skus) - sold:
        assert [m.offered(sku)[0].state for m in (website, reverb)] == ["live", "live"]
    assert not Conflict.objects.exists()
    assert stock_problems() == []
