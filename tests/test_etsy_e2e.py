"""Etsy and Reverb end to end: a real Celery worker over Redis on PostgreSQL, the live server
answering Etsy's signed webhooks, the loopback Etsy and the loopback Reverb as two connections of
one shop. Sales on Etsy (by webhook, and by the pull alone) end the Reverb listing; a sale on
Reverb deactivates the Etsy listing; a double sale opens one conflict; a 2015 guitar never reaches
Etsy; and under 20% faults, 429s and a token that expires mid-run nothing is lost or listed twice."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inventory.channels import TransientChannelError
from inventory.models import Alert, AlertKind, ChannelListing, Conflict, Item, ListingState, Order, WebhookEvent
from inventory.selectors import stock_problems
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, enqueue_pull, process_webhook_event_task
from tests.etsy_market import EtsyMarket, add_photos
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


@pytest.fixture
def markets(account, live_server):
    shop_on_business_plan(account)
    with (
        EtsyMarket(account, "Etsy shop", webhook_base=live_server.url, priority=50) as etsy,
        LoopbackMarket(account, "Reverb shop", webhook_base=live_server.url, priority=20) as reverb,
    ):
        yield etsy, reverb


@pytest.fixture
def worker(markets):
    with real_worker():
        yield


def vintage(account, etsy: EtsyMarket, n: int, sku: str, **fields) -> Item:
    values = {"title": f"1965 Fender Jaguar {n}", "year": "1965", "price": Decimal("4200.00") + n}
    values.update(fields)
    item = make_item(account, n=n, sku=sku, **values)
    add_photos(item, etsy.sandbox, count=2)
    return item


def listed(account, markets, item) -> dict[str, ChannelListing]:
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {m.name: ChannelListing.objects.get(item=item, connection=m.connection) for m in markets}


def ended(listing: ChannelListing) -> bool:
    row = ChannelListing.objects.get(pk=listing.pk)
    return row.actual_state == ListingState.ENDED and row.ended_at is not None


def test_a_sale_on_etsy_by_webhook_ends_the_reverb_listing(account, markets, worker):
    etsy, reverb = markets
    item = vintage(account, etsy, 1, "ETSY-HOOK")
    listings = listed(account, markets, item)
    [on_etsy] = etsy.offered("ETSY-HOOK")
    assert on_etsy.state == "live" and len(etsy.sandbox.images(on_etsy.external_id)) == 2

    receipt_id = etsy.sell("ETSY-HOOK")

    assert wait_until(lambda: ended(listings["Reverb shop"])), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, etsy.connection.pk)
    order = Order.objects.get(external_id=receipt_id)
    assert (order.connection_id, order.lines.get().item_id) == (etsy.connection.pk, item.pk)
    event = WebhookEvent.objects.get()
    assert (event.connection_id, event.status, event.dedupe_key.startswith("etsy:msg_")) == (
        etsy.connection.pk, "processed", True,
    )  # fmt: skip
    assert reverb.seen(listings["Reverb shop"].external_id).state == "ended"
    assert [c.kind for c in reverb.requests(listings["Reverb shop"].external_id)] == ["end", "read"]
    assert etsy.writes() == []  # nothing sent to the channel that sold it
    assert not Conflict.objects.exists() and stock_problems() == []


def test_a_sale_on_etsy_whose_webhook_never_came_is_found_by_the_pull(account, markets, worker):
    etsy, _reverb = markets
    item = vintage(account, etsy, 2, "ETSY-POLL")
    listings = listed(account, markets, item)

    receipt_id = etsy.sell("ETSY-POLL", webhook=False)
    enqueue_pull(etsy.connection.pk)  # the schedule's pull

    assert wait_until(lambda: ended(listings["Reverb shop"])), lagging()
    assert Order.objects.get().external_id == receipt_id
    assert not WebhookEvent.objects.exists()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, etsy.connection.pk)


def test_a_sale_on_reverb_deactivates_the_etsy_listing(account, markets, worker):
    etsy, reverb = markets
    item = vintage(account, etsy, 3, "REVERB-SOLD")
    listings = listed(account, markets, item)
    on_etsy = listings["Etsy shop"]

    reverb.sell("REVERB-SOLD")

    assert wait_until(lambda: ended(on_etsy)), lagging()
    assert etsy.seen(on_etsy.external_id).state == "ended"
    assert etsy.sandbox.listing(on_etsy.external_id)["state"] == "inactive"
    assert [c.kind for c in etsy.requests(on_etsy.external_id)] == ["end", "read"]
    assert len(etsy.offered("REVERB-SOLD")) == 1
    assert etsy.sandbox.violations == [] and etsy.sandbox.answer_violations == []


def test_a_double_sale_opens_one_conflict(account, markets, worker):
    etsy, reverb = markets
    item = vintage(account, etsy, 4, "BOTH-SOLD")
    listed(account, markets, item)

    etsy.sell("BOTH-SOLD", webhook=False)
    reverb.sell("BOTH-SOLD", webhook=False)
    enqueue_pull(etsy.connection.pk)
    enqueue_pull(reverb.connection.pk)

    assert wait_until(lambda: Order.objects.count() == 2 and Conflict.objects.exists())
    assert wait_until(all_converged), lagging()
    assert Conflict.objects.count() == 1
    assert Alert.objects.filter(kind=AlertKind.CONFLICT).count() == 1
    item.refresh_from_db()
    assert item.state == ItemState.SOLD


def test_a_2015_guitar_goes_on_reverb_and_is_refused_for_etsy_with_the_reason(account, markets, worker):
    etsy, reverb = markets
    item = vintage(account, etsy, 5, "STRAT-2015", title="2015 Fender American Standard", year="2015")

    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    on_reverb = ChannelListing.objects.get(item=item, connection=reverb.connection)
    on_etsy = ChannelListing.objects.get(item=item, connection=etsy.connection)
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.LIVE)
    assert wait_until(lambda: "vintage" in ChannelListing.objects.get(pk=on_etsy.pk).last_error), lagging()
    on_etsy.refresh_from_db()
    assert "Etsy lists used gear only as vintage" in on_etsy.last_error and "from 2015" in on_etsy.last_error
    assert on_etsy.external_id in ("", None)
    # Nothing half-written: Etsy was not even asked
    assert etsy.sandbox.listings() == [] and etsy.writes() == []


# --- under faults -------------------------------------------------------------------------------


def pull_until_read(market, attempts: int = 30) -> None:
    for _ in range(attempts):
        try:
            run = connection_pull(connection_id=market.connection.pk)
        except TransientChannelError:
            continue
        if run.status == "ok":
            return
    raise AssertionError(f"{market.name} could not be pulled in {attempts} attempts")


@pytest.fixture
def flaky(account, live_server, settings, monkeypatch):
    """Etsy failing one call in five (500s, 429s, timeouts whose change was applied); Reverb too."""
    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    monkeypatch.setattr(converge_listing_task, "max_retries", 30)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 30)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 0.6}
    with (
        EtsyMarket(account, "Etsy shop", webhook_base=live_server.url, priority=50, timeout=0.3, seed=5,
                   retry_after=0.1, **faults) as etsy,
        LoopbackMarket(account, "Reverb shop", webhook_base=live_server.url, priority=20, timeout=0.3, seed=6,
                       retry_after=1, **faults) as reverb,
        real_worker(concurrency=4),
    ):  # fmt: skip
        yield etsy, reverb


def test_under_faults_and_an_expired_token_no_order_is_lost_and_nothing_listed_twice(account, flaky):
    etsy, reverb = flaky
    items = [vintage(account, etsy, n, f"FLAKY-{n:02d}") for n in range(8)]
    skus = [item.sku for item in items]

    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
    assert wait_until(all_converged, timeout=120), lagging()

    # Etsy's tokens expire mid-run: the next calls get 401, refresh once and go on
    etsy.sandbox.expire_tokens()
    sales = [
        (etsy, "FLAKY-00", True),
        (etsy, "FLAKY-01", False),
        (reverb, "FLAKY-02", True),
        (reverb, "FLAKY-03", False),
    ]
    orders = [(market, market.sell(sku, webhook=webhook), sku) for market, sku, webhook in sales]
    assert wait_until(all_converged, timeout=120), lagging()
    for market in (etsy, reverb):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=120), lagging()

    # The faults happened, and the refresh
    faults = {r.fault for r in etsy.sandbox.requests() if r.fault}
    assert {"error", "rate_limit", "timeout"} <= faults, faults
    assert ("refresh_token", 200) in etsy.sandbox.token_calls
    # No marketplace holds an item twice
    for market in (etsy, reverb):
        assert market.listing_count_by_sku() == dict.fromkeys(skus, 1)
    # Every order recorded once, each sold item off sale on the other marketplace
    assert Order.objects.count() == len(orders)
    for market, order_id, sku in orders:
        assert Order.objects.get(external_id=order_id, connection=market.connection).lines.get().item.sku == sku
        item = Item.objects.get(sku=sku)
        assert (item.state, item.sold_on_id) == (ItemState.SOLD, market.connection.pk)
        other = reverb if market is etsy else etsy
        [seen] = other.offered(sku)
        assert seen.state == "ended"
    assert etsy.sandbox.violations == []
    assert not Conflict.objects.exists() and stock_problems() == []


def test_a_refused_refresh_alerts_reconnect_and_the_end_lands_once_reconnected(account, markets, worker):
    etsy, reverb = markets
    item = vintage(account, etsy, 9, "RECONNECT")
    listings = listed(account, markets, item)
    etsy.sandbox.expire_tokens()
    etsy.sandbox.refuse_refresh()

    reverb.sell("RECONNECT")

    assert wait_until(lambda: Alert.objects.filter(title="Reconnect Etsy: Etsy shop").exists(), timeout=30), lagging()
    assert ChannelListing.objects.get(pk=listings["Etsy shop"].pk).actual_state != ListingState.ENDED
    # When staff reconnect (new tokens, as the callback stores them), the pending end lands
    etsy.sandbox.refuse_refresh(False)
    tokens = etsy.sandbox.grant()
    type(etsy.connection).objects.filter(pk=etsy.connection.pk).update(
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"]
    )
    from inventory.services.listings import listings_retry

    listings_retry(listing_ids=[listings["Etsy shop"].pk])
    assert wait_until(lambda: ended(listings["Etsy shop"]), timeout=30), lagging()
    assert etsy.sandbox.listing(listings["Etsy shop"].external_id)["state"] == "inactive"


def test_a_listing_made_on_etsy_is_imported_for_review(account, markets, worker):
    etsy, reverb = markets
    seen = etsy.list_directly("MADE-ON-ETSY", title="1972 Fender Twin Reverb", price="1500.00")

    enqueue_pull(etsy.connection.pk)

    assert wait_until(lambda: Item.objects.filter(account=account, sku="MADE-ON-ETSY").exists()), lagging()
    item = Item.objects.get(account=account, sku="MADE-ON-ETSY")
    assert (item.needs_review, item.title, item.price) == (True, "1972 Fender Twin Reverb", Decimal("1500.00"))
    [listing] = ChannelListing.objects.filter(item=item)
    assert (listing.connection_id, listing.external_id, listing.imported) == (
        etsy.connection.pk,
        seen.external_id,
        True,
    )
    assert etsy.writes() == [] and reverb.writes() == []
