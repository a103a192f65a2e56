"""WooCommerce beside Reverb, end to end: a real Celery worker over Redis, the live server answering
both marketplaces' webhooks (WooCommerce's signed), PostgreSQL. Nothing is called by hand that
production would not call: staff list through services, buyers buy on the loopback marketplaces.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from inventory.channels import TransientChannelError
from inventory.models import ChannelListing, Conflict, Item, ListingState, Order, WebhookEvent
from inventory.selectors import stock_problems
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, enqueue_pull, process_webhook_event_task
from tests.factories import make_item
from tests.test_sync_e2e_harness import (
    LoopbackMarket,
    all_converged,
    lagging,
    real_worker,
    shop_on_business_plan,
    wait_until,
)
from tests.woocommerce_market import WooCommerceMarket

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor(source="test")


@pytest.fixture
def markets(account, live_server):
    """Reverb (priority 20) and the dealer's WooCommerce website (60), each with its webhooks."""
    shop_on_business_plan(account)
    with (
        LoopbackMarket(account, "Reverb", webhook_base=live_server.url, priority=20) as reverb,
        WooCommerceMarket(account, "Website", webhook_base=live_server.url, priority=60) as website,
        real_worker(),
    ):
        yield reverb, website
    assert website.sandbox.refused_by_index() == []


def listed_on_both(account, markets, item) -> dict[str, ChannelListing]:
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {market.name: ChannelListing.objects.get(item=item, connection=market.connection) for market in markets}


def pull_until_read(market, attempts: int = 20) -> None:
    for _ in range(attempts):
        try:
            if connection_pull(connection_id=market.connection.pk).status == "ok":
                return
        except TransientChannelError:
            continue
    raise AssertionError(f"{market.name} could not be pulled in {attempts} attempts")


def test_listing_everywhere_makes_one_published_product_on_the_website(account, markets):
    reverb, website = markets
    item = make_item(account, n=1, sku="WOO-LIST", title="1962 Fender Jazzmaster", price=Decimal("4200.00"))

    listings = listed_on_both(account, markets, item)

    [seen] = website.offered("WOO-LIST")
    assert (seen.state, seen.title, seen.price, seen.quantity) == (
        "live",
        "1962 Fender Jazzmaster",
        Decimal("4200.00"),
        1,
    )
    assert listings["Website"].external_id == seen.external_id and listings["Website"].actual_state == "live"
    assert [p["status"] for p in website.sandbox.products()] == ["publish"]
    assert len(reverb.offered("WOO-LIST")) == 1


def test_a_sale_on_the_website_ends_the_reverb_listing_and_marks_the_item_sold_there(account, markets):
    reverb, website = markets
    item = make_item(account, n=2, sku="WOO-SELL", title="Marshall JTM45")
    listings = listed_on_both(account, markets, item)
    on_reverb = listings["Reverb"]

    # When a buyer checks out on the website (its signed order.created reaches the live server first)
    order_id = website.sell("WOO-SELL")

    # Then the worker records the sale and ends the Reverb listing, reading it back
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id, item.quantity_on_hand) == (ItemState.SOLD, website.connection.pk, 0)
    order = Order.objects.get(external_id=order_id)
    assert (order.connection_id, order.status) == (website.connection.pk, "completed")
    [event] = WebhookEvent.objects.filter(connection=website.connection)
    assert (event.topic, event.status, event.deliveries) == ("order.created", "processed", 1)
    assert reverb.seen(on_reverb.external_id).state == "ended"
    assert [call.kind for call in reverb.requests(on_reverb.external_id)] == ["end", "read"]
    # And nothing was sent to the website: its product sold out there by itself
    sold_here = ChannelListing.objects.get(pk=listings["Website"].pk)
    assert (sold_here.actual_state, sold_here.end_reason) == (ListingState.SOLD, "sold_here")
    assert website.writes() == []
    assert website.seen(sold_here.external_id).state == "sold"
    assert not Conflict.objects.exists() and stock_problems() == []


def test_a_sale_on_reverb_puts_the_website_product_to_draft_with_no_stock(account, markets):
    reverb, website = markets
    item = make_item(account, n=3, sku="WOO-ELSE", title="Gibson ES-335")
    listings = listed_on_both(account, markets, item)
    on_website = listings["Website"]

    reverb.sell("WOO-ELSE")

    assert wait_until(lambda: ChannelListing.objects.get(pk=on_website.pk).actual_state == ListingState.ENDED), (
        lagging()
    )
    product = website.sandbox.product(int(on_website.external_id))
    assert (product["status"], product["stock_quantity"], product["stock_status"]) == ("draft", 0, "outofstock")
    assert [call.kind for call in website.requests(on_website.external_id)] == ["end", "read"]
    assert [w.fields for w in website.writes()] == [{"quantity": 0}]
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)
    assert len(website.offered("WOO-ELSE")) == 1  # kept as a draft, not deleted
    assert not Conflict.objects.exists()


def test_a_double_sale_opens_one_conflict(account, markets):
    reverb, website = markets
    item = make_item(account, n=4, sku="WOO-TWICE", title="Vox AC30")
    listed_on_both(account, markets, item)

    # Both sell before either is heard of; the website's buyer checked out a minute earlier
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    website_order = str(website.sandbox.simulate_sale("WOO-TWICE", placed_at=earlier, deliver_webhook=False)["id"])
    reverb_order = reverb.sell("WOO-TWICE", webhook=False)
    pull_until_read(reverb)  # the later sale is heard of first
    pull_until_read(website)

    # Then one conflict: the earlier sale (the website's) wins, the other is kept beside it
    assert wait_until(lambda: Conflict.objects.count() == 1)
    assert wait_until(all_converged), lagging()
    conflict = Conflict.objects.get()
    assert (conflict.winning_order.external_id, conflict.losing_order.external_id) == (website_order, reverb_order)
    assert (conflict.winning_order.connection_id, conflict.status) == (website.connection.pk, "open")
    assert Order.objects.count() == 2
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, website.connection.pk)
    # Pulling again changes nothing: still one conflict, two orders
    pull_until_read(website)
    pull_until_read(reverb)
    assert (Conflict.objects.count(), Order.objects.count()) == (1, 2)


def test_a_product_made_on_the_website_is_imported_for_review_on_one_channel(account, markets):
    reverb, website = markets
    seen = website.list_directly("MADE-ON-SITE", title="Vox AC15 made in WordPress", price="890.00")

    enqueue_pull(website.connection.pk)

    assert wait_until(lambda: Item.objects.filter(account=account, sku="MADE-ON-SITE").exists())
    item = Item.objects.get(account=account, sku="MADE-ON-SITE")
    assert (item.state, item.needs_review, item.title, item.price) == (
        ItemState.ACTIVE,
        True,
        "Vox AC15 made in WordPress",
        Decimal("890.00"),
    )
    [listing] = ChannelListing.objects.filter(item=item)
    assert (listing.connection_id, listing.external_id, listing.imported) == (
        website.connection.pk,
        seen.external_id,
        True,
    )
    assert website.writes() == [] and reverb.writes() == []  # importing is reading


# --- 20% faults ------------------------------------------------------------------------------------


@pytest.fixture
def flaky(account, live_server, settings, monkeypatch):
    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    monkeypatch.setattr(converge_listing_task, "max_retries", 25)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 25)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 0.5}
    with (
        LoopbackMarket(
            account, "Reverb", webhook_base=live_server.url, priority=20, timeout=0.25, seed=5, retry_after=1, **faults
        ) as reverb,
        WooCommerceMarket(
            account, "Website", webhook_base=live_server.url, priority=60, timeout=0.25, seed=6, retry_after=1, **faults
        ) as website,
        real_worker(concurrency=4),
    ):
        yield reverb, website
    assert website.sandbox.refused_by_index() == []


def test_with_one_call_in_five_failing_no_order_is_lost_and_no_product_made_twice(account, flaky):
    reverb, website = flaky
    items = [make_item(account, n=n, sku=f"WFLAKY-{n:02d}", title=f"Flaky amp {n}") for n in range(10)]
    skus = [item.sku for item in items]

    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
    assert wait_until(all_converged, timeout=90), lagging()

    # Buyers buy four: two on the website (one webhook lost), two on Reverb (one webhook lost)
    sales = [
        (website, "WFLAKY-00", True),
        (website, "WFLAKY-01", False),
        (reverb, "WFLAKY-02", True),
        (reverb, "WFLAKY-03", False),
    ]
    orders = [(market, market.sell(sku, webhook=webhook), sku) for market, sku, webhook in sales]
    assert wait_until(all_converged, timeout=90), lagging()
    for market in (website, reverb):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=90), lagging()

    faults = [r.fault for r in website.sandbox.requests() if r.fault]
    assert {"error", "rate_limit", "timeout"} <= set(faults), faults
    # 0 duplicate products, though creates timed out and were retried
    assert website.listing_count_by_sku() == dict.fromkeys(skus, 1)
    assert reverb.listing_count_by_sku() == dict.fromkeys(skus, 1)
    # 0 lost orders, each recorded once on its own connection
    assert Order.objects.count() == len(orders)
    for market, order_id, sku in orders:
        order = Order.objects.get(external_id=order_id, connection=market.connection)
        assert order.lines.get().item.sku == sku
        item = Item.objects.get(sku=sku)
        assert (item.state, item.sold_on_id) == (ItemState.SOLD, market.connection.pk)
        other = reverb if market is website else website
        [seen] = other.offered(sku)
        assert seen.state == "ended"
    # And every end landed; the unsold are live everywhere
    sold = {sku for _market, _order, sku in orders}
    for sku in skus:
        if sku not in sold:
            assert [m.offered(sku)[0].state for m in (reverb, website)] == ["live", "live"]
    assert not Conflict.objects.exists()
    assert stock_problems() == []
