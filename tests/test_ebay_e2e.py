"""eBay and Reverb together, end to end: a real Celery worker over Redis, the live server receiving
eBay's signed notifications and Reverb's webhooks, the loopback eBay and the loopback Reverb."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.models import ChannelListing, Conflict, Item, ListingState, Order, WebhookEvent
from inventory.selectors import stock_problems
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, process_webhook_event_task
from tests.ebay_market import EbayMarket
from tests.factories import make_item
from tests.test_sync_e2e_harness import (
    LoopbackMarket,
    all_converged,
    lagging,
    real_worker,
    shop_on_business_plan,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor(source="test")
PHOTO = "https://cdn.example.com/e2e.jpg"


@pytest.fixture
def markets(account, live_server):
    shop_on_business_plan(account)
    with (
        LoopbackMarket(account, "Reverb", webhook_base=live_server.url, priority=20) as reverb,
        EbayMarket(account, "eBay", webhook_base=live_server.url, priority=40) as ebay,
        real_worker(),
    ):
        yield reverb, ebay


def listed_everywhere(account, markets, item) -> dict[str, ChannelListing]:
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {market.name: ChannelListing.objects.get(item=item, connection=market.connection) for market in markets}


def test_listed_on_reverb_and_ebay_once_each(account, markets):
    reverb, ebay = markets
    item = make_item(account, n=1, sku="EB-LIST", title="1962 Fender Jazzmaster", price=Decimal("4200.00"))
    _photo(item)

    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    assert wait_until(all_converged), lagging()
    [on_ebay] = ebay.offered("EB-LIST")
    assert (on_ebay.state, on_ebay.title, on_ebay.price, on_ebay.quantity) == (
        "live",
        "1962 Fender Jazzmaster",
        Decimal("4200.00"),
        1,
    )
    assert [w.kind for w in ebay.writes()] == ["revise", "create", "publish"]  # item PUT, offer, publish
    assert len(reverb.offered("EB-LIST")) == 1
    listing = ChannelListing.objects.get(item=item, connection=ebay.connection)
    assert (listing.external_id, listing.actual_state) == (on_ebay.external_id, "live")


def test_a_sale_on_ebay_ends_reverb_and_marks_ebay_the_winner(account, markets):
    reverb, ebay = markets
    item = make_item(account, n=2, sku="EB-SELL", title="Marshall JTM45")
    _photo(item)
    listings = listed_everywhere(account, markets, item)

    order_id = ebay.sell("EB-SELL")  # a signed ORDER_CONFIRMATION reaches the live server

    elsewhere = listings["Reverb"]
    assert wait_until(lambda: ChannelListing.objects.get(pk=elsewhere.pk).actual_state == ListingState.ENDED), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, ebay.connection.pk)
    order = Order.objects.get(external_id=order_id)
    assert (order.connection_id, order.status) == (ebay.connection.pk, "completed")
    assert reverb.seen(elsewhere.external_id).state == "ended"
    event = WebhookEvent.objects.get(connection=ebay.connection)
    assert (event.topic, event.status, event.deliveries) == ("ORDER_CONFIRMATION", "processed", 1)
    assert wait_until(all_converged), lagging()
    sold_here = ChannelListing.objects.get(pk=listings["eBay"].pk)
    assert sold_here.actual_state == ListingState.SOLD
    assert [w for w in ebay.writes() if w.kind in ("create", "revise", "publish")] == []
    assert ebay.seen(sold_here.external_id).state == "sold"
    assert not Conflict.objects.exists()
    assert stock_problems() == []


def test_a_sale_on_reverb_withdraws_the_ebay_offer_and_reads_it_back(account, markets):
    reverb, ebay = markets
    item = make_item(account, n=3, sku="EB-WD", title="Gibson Les Paul")
    _photo(item)
    listings = listed_everywhere(account, markets, item)
    offer_id = listings["eBay"].external_id

    reverb.sell("EB-WD")

    def withdrawn() -> bool:
        row = ChannelListing.objects.get(pk=listings["eBay"].pk)
        return row.actual_state == ListingState.ENDED and row.ended_at is not None

    assert wait_until(withdrawn), lagging()
    assert [w.kind for w in ebay.requests(offer_id)] == ["end", "read"]
    seen = ebay.seen(offer_id)
    assert seen.state == "ended"
    assert len(ebay.offered("EB-WD")) == 1
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)


def test_a_double_sale_opens_one_conflict(account, markets):
    reverb, ebay = markets
    item = make_item(account, n=4, sku="EB-TWICE", title="Vox AC30")
    _photo(item)
    listed_everywhere(account, markets, item)

    ebay.sell("EB-TWICE", webhook=False)
    reverb.sell("EB-TWICE", webhook=False)
    connection_pull(connection_id=ebay.connection.pk)
    connection_pull(connection_id=reverb.connection.pk)

    assert wait_until(lambda: Conflict.objects.count() == 1)
    assert Order.objects.filter(lines__item=item).count() == 2
    assert Conflict.objects.get().item_id == item.pk


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
        EbayMarket(
            account, "eBay", webhook_base=live_server.url, priority=40, timeout=0.25, seed=7, retry_after=0, **faults
        ) as ebay,
        real_worker(concurrency=4),
    ):
        yield reverb, ebay


def pull_until_read(market, attempts: int = 25) -> None:
    from inventory.channels import TransientChannelError

    for _ in range(attempts):
        try:
            if connection_pull(connection_id=market.connection.pk).status == "ok":
                return
        except TransientChannelError:
            continue
    raise AssertionError(f"{market.name} could not be pulled")


def test_with_20_percent_faults_no_order_is_lost_and_no_offer_duplicated(account, flaky):
    reverb, ebay = flaky
    items = [make_item(account, n=n, sku=f"EBF-{n:02d}", title=f"Flaky amp {n}") for n in range(10)]
    for item in items:
        _photo(item)

    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
    assert wait_until(all_converged, timeout=120), lagging()

    grants = len(ebay.sandbox.token_grants)
    ebay.sandbox.expire_tokens()  # the access token dies mid-run: the next call gets 401
    sales = [(ebay, "EBF-00", True), (ebay, "EBF-01", False), (reverb, "EBF-02", True), (reverb, "EBF-03", False)]
    orders = [(market, market.sell(sku, webhook=webhook), sku) for market, sku, webhook in sales]
    for market in (reverb, ebay):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=120), lagging()
    for market in (reverb, ebay):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=120), lagging()

    # one refresh for all the workers after the expiry (the token is shared through the cache)
    assert ebay.sandbox.token_grants[grants:].count("refresh_token") == 1
    faults = {r.fault for r in ebay.sandbox.requests() if r.fault}
    assert {"error", "rate_limit", "timeout"} <= faults
    assert ebay.listing_count_by_sku() == {item.sku: 1 for item in items}  # 0 duplicate offers
    assert Order.objects.count() == len(orders)  # 0 lost, 0 doubled
    for market, order_id, sku in orders:
        assert Order.objects.get(external_id=order_id, connection=market.connection).lines.get().item.sku == sku
        other = ebay if market is reverb else reverb
        listing = ChannelListing.objects.get(item__sku=sku, connection=other.connection)
        assert (listing.actual_state, listing.end_reason) == (ListingState.ENDED, "sold_elsewhere")
        [seen] = other.offered(sku)
        assert seen.state == "ended"
        assert Item.objects.get(sku=sku).sold_on_id == market.connection.pk
    for item in items[4:]:
        assert [seen.state for seen in ebay.offered(item.sku)] == ["live"]
    assert [r for r in ebay.sandbox.requests() if r.problems] == []
    assert not Conflict.objects.exists()
    assert stock_problems() == []


def _photo(item) -> None:
    """eBay needs a picture to publish."""
    item.photos.create(url=PHOTO, position=0)


def test_register_webhooks_answers_ebays_challenge_and_subscribes_once(account, markets, live_server):
    from inventory.services.connections import connection_webhooks

    _reverb, ebay = markets
    ebay.connection.verification_token = "v" * 40
    ebay.connection.save()
    ebay.sandbox.webhook_urls.clear()  # deliveries now go where the registration says

    setup = connection_webhooks(connection=ebay.connection, base_url=live_server.url, register=True)

    endpoint = live_server.url + ebay.connection.webhook_path
    assert setup.registered[:2] == [
        f"Destination {endpoint}: created (eBay's challenge answered)",
        "ORDER_CONFIRMATION: subscribed",
    ]
    [destination] = ebay.sandbox.destinations.values()
    assert destination["deliveryConfig"] == {"endpoint": endpoint, "verificationToken": "v" * 40}
    again = connection_webhooks(connection=ebay.connection, base_url=live_server.url, register=True)
    assert again.registered[:2] == [
        f"Destination {endpoint}: already registered",
        "ORDER_CONFIRMATION: already subscribed",
    ]
    assert len(ebay.sandbox.subscriptions) == 1

    # and a sale's notification now reaches the endpoint through the subscription
    item = make_item(account, n=9, sku="EB-HOOK", title="Fender Twin")
    _photo(item)
    listed_everywhere(account, markets, item)
    ebay.sell("EB-HOOK")
    assert [d.status for d in ebay.sandbox.deliveries] == [200]
    assert wait_until(lambda: Item.objects.get(pk=item.pk).state == ItemState.SOLD)
