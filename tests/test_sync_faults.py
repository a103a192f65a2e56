"""The engine under faults: flaky marketplaces, repeated webhooks, a marketplace that is down.

Same stack as tests/test_sync_e2e.py (a real Celery worker over Redis, the live server for
webhooks, loopback marketplaces). Retries are made fast (tiny backoff) so the figures of a
production outage shrink to seconds; the rules under test are the production ones.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import requests

from inventory.channels import TransientChannelError
from inventory.models import (
    Alert,
    AlertKind,
    ChannelListing,
    Conflict,
    Item,
    ItemStateChange,
    ListingState,
    Order,
    StockMovement,
    WebhookEvent,
)
from inventory.selectors import stock_problems
from inventory.services import Actor, item_update
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, process_webhook_event_task
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


def pull_until_read(market: LoopbackMarket, attempts: int = 20) -> None:
    """The scheduled pull, run now; a flaky marketplace may fail it, and the next one reads again."""
    for _ in range(attempts):
        try:
            run = connection_pull(connection_id=market.connection.pk)
        except TransientChannelError:
            continue
        if run.status == "ok":
            return
    raise AssertionError(f"{market.name} could not be pulled in {attempts} attempts")


# --- 20% of calls fail ----------------------------------------------------------------------


@pytest.fixture
def flaky_markets(account, live_server, settings, monkeypatch):
    """Two marketplaces where one call in five fails: 500s, 429s and timeouts (applied, answered late)."""
    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    # Every change must land here; giving up after max retries is the outage test's subject.
    monkeypatch.setattr(converge_listing_task, "max_retries", 25)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 25)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 0.5}
    with (
        LoopbackMarket(
            account, "Shop 1", webhook_base=live_server.url, priority=1, timeout=0.25, seed=11, retry_after=1, **faults
        ) as one,
        LoopbackMarket(
            account, "Shop 2", webhook_base=live_server.url, priority=2, timeout=0.25, seed=22, retry_after=1, **faults
        ) as two,
        real_worker(concurrency=4),
    ):
        yield one, two


def test_with_one_call_in_five_failing_every_change_lands_once(account, flaky_markets):
    one, two = flaky_markets
    items = [make_item(account, n=n, sku=f"FLAKY-{n:02d}", title=f"Flaky guitar {n}") for n in range(14)]
    skus = [item.sku for item in items]

    # When staff list 14 items on both marketplaces
    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
    assert wait_until(all_converged, timeout=90), lagging()

    # And edit six of them, and buyers buy four while those edits are on their way:
    # two with a webhook, two whose webhook never came (the pull must find those)
    edited = items[:6]
    for item in edited:
        item_update(item_id=item.pk, actor=STAFF, changes={"title": f"{item.title} (setup)", "price": item.price + 50})
    sales = [
        (one, "FLAKY-00", True),
        (two, "FLAKY-07", True),
        (one, "FLAKY-08", False),
        (two, "FLAKY-01", False),
    ]
    orders = [(market, market.sell(sku, webhook=webhook), sku) for market, sku, webhook in sales]
    assert wait_until(all_converged, timeout=90), lagging()
    for market in (one, two):
        pull_until_read(market)
    assert wait_until(all_converged, timeout=90), lagging()

    # Then the faults did happen, of every kind
    faults = [r.fault for market in (one, two) for r in market.sandbox.requests() if r.fault]
    assert {"error", "rate_limit", "timeout"} <= set(faults), faults
    # And no marketplace holds any item twice, though creates timed out and were retried
    for market in (one, two):
        assert market.listing_count_by_sku() == dict.fromkeys(skus, 1)
    # And every order was recorded exactly once, on the connection it came from
    assert Order.objects.count() == len(orders)
    for market, order_id, sku in orders:
        order = Order.objects.get(external_id=order_id, connection=market.connection)
        assert order.lines.get().item.sku == sku
    # And each sold item is sold once, and off sale on the other marketplace
    for market, _order_id, sku in orders:
        item = Item.objects.get(sku=sku)
        assert (item.state, item.sold_on_id) == (ItemState.SOLD, market.connection.pk)
        other = two if market is one else one
        [seen] = other.offered(sku)
        assert seen.state == "ended"
        listing = ChannelListing.objects.get(item=item, connection=other.connection)
        assert (listing.actual_state, listing.end_reason) == (ListingState.ENDED, "sold_elsewhere")
    # And the edits of the unsold items are on both marketplaces
    sold = {sku for _market, _order_id, sku in orders}
    for item in edited:
        if item.sku in sold:
            continue
        for market in (one, two):
            [seen] = market.offered(item.sku)
            assert (seen.state, seen.title, seen.price) == ("live", f"{item.title} (setup)", item.price + 50)
    # And the unsold, unedited items are live everywhere, untouched
    for item in items[6:]:
        if item.sku not in sold:
            assert [m.offered(item.sku)[0].state for m in (one, two)] == ["live", "live"]
    assert not Conflict.objects.exists()
    assert stock_problems() == []


# --- one webhook, five deliveries at once -----------------------------------------------------


@pytest.fixture
def markets(account, live_server):
    shop_on_business_plan(account)
    with (
        LoopbackMarket(account, "Shop 1", webhook_base=live_server.url, priority=1) as one,
        LoopbackMarket(account, "Shop 2", webhook_base=live_server.url, priority=2) as two,
        real_worker(concurrency=4),
    ):
        yield one, two


def test_the_same_webhook_delivered_five_times_at_once_sells_the_item_once(account, markets):
    one, two = markets
    item = make_item(account, n=1, sku="TWICE-1", price=Decimal("900.00"))
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()

    # Given a sale whose webhook the marketplace sends five times at the same moment
    order_id = one.sell("TWICE-1", webhook=False)
    url, body, headers = one.order_delivery(order_id)
    start = threading.Barrier(5)
    answers: list[requests.Response] = []

    def deliver() -> None:
        start.wait()
        answers.append(requests.post(url, data=body, headers=headers, timeout=10))

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then all five are answered 200; one was stored, four were recognised as the same event
    assert sorted((a.status_code, a.content) for a in answers) == [(200, b"duplicate")] * 4 + [(200, b"stored")]
    elsewhere = ChannelListing.objects.get(item=item, connection=two.connection)
    assert wait_until(lambda: ChannelListing.objects.get(pk=elsewhere.pk).actual_state == ListingState.ENDED)
    event = WebhookEvent.objects.get()
    assert (event.deliveries, event.status, event.attempts) == (5, "processed", 1)
    # And there is one order, one set of ledger rows, one sale of the item
    order = Order.objects.get()
    assert (order.external_id, order.connection_id, order.status) == (order_id, one.connection.pk, "completed")
    ledger = StockMovement.objects.filter(item=item).order_by("pk")
    assert [(m.kind, m.on_hand_delta, m.locked_delta) for m in ledger] == [
        ("received", 1, 0),
        ("locked", 0, 1),
        ("committed", -1, -1),
    ]
    assert ItemStateChange.objects.filter(item=item, to_state=ItemState.SOLD).count() == 1
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == (ItemState.SOLD, 0, 0)
    # And the other marketplace was told to end it once
    assert [w.kind for w in two.writes()] == ["end"]
    assert not Conflict.objects.exists()
    assert stock_problems() == []


# --- one marketplace down -----------------------------------------------------------------------


def test_a_marketplace_that_is_down_never_holds_up_the_other(account, markets, settings, monkeypatch):
    one, two = markets
    # Retries a second or two apart, and three of them before giving up
    settings.SYNC_RETRY_BACKOFF_BASE = 0.5
    settings.SYNC_RETRY_BACKOFF_MAX = 2.0
    monkeypatch.setattr(converge_listing_task, "max_retries", 3)
    # The subject here is each listing's own retries; the circuit breaker that pauses a connection
    # after repeated failures (5 by default) has its own tests (tests/test_circuit_breaker.py).
    settings.CIRCUIT_BREAKER_FAILURES = 1000
    two.go_down()
    items = [make_item(account, n=n, sku=f"DOWN-{n}") for n in range(3)]

    # When staff list three items everywhere
    listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)

    # Then they go live on the healthy marketplace while the other is still being retried
    healthy = ChannelListing.objects.filter(connection=one.connection)
    down = ChannelListing.objects.filter(connection=two.connection)
    assert wait_until(lambda: all(row.actual_state == ListingState.LIVE for row in healthy.all()), timeout=10), (
        lagging()
    )
    assert not down.filter(actual_state=ListingState.ERROR).exists(), "the healthy marketplace waited for the other"
    assert all(len(one.offered(item.sku)) == 1 for item in items)

    # And after its last retry each listing on the down marketplace is an error with an alert for staff
    assert wait_until(lambda: down.filter(actual_state=ListingState.ERROR).count() == 3, timeout=30), lagging()
    for listing in down.select_related("item"):
        assert "500" in listing.last_error or "Internal server error" in listing.last_error, listing.last_error
        alert = Alert.objects.get(kind=AlertKind.SYNC_ERROR, listing=listing)
        assert alert.title == f"{listing.item.sku} could not sync to Shop 2"
    # And it was tried exactly 1 + 3 times per listing, as each listing says, each attempt retrying its
    # first call twice at once (a blip is not worth a backoff), and nothing was written there
    assert two.sandbox.calls() == 3 * 4 * 3
    assert sorted(down.values_list("attempts", flat=True)) == [4, 4, 4]
    assert two.writes() == []
    assert all(row.actual_state == ListingState.LIVE for row in healthy.all())


# --- a webhook that never came -----------------------------------------------------------------


def test_an_edit_refused_because_the_item_sold_there_records_the_sale_at_once(account, markets):
    one, two = markets
    item = make_item(account, n=2, sku="LOST-1", title="Fender Twin Reverb")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    # Given a sale on marketplace 1 whose webhook was lost
    order_id = one.sell("LOST-1", webhook=False)

    # When staff edit the item before any scheduled pull, so marketplace 1 refuses the revise
    item_update(item_id=item.pk, actor=STAFF, changes={"title": "Fender Twin Reverb (1965)"})

    # Then the refusal is read as the sale it is: marketplace 1's orders are read now, the sale is
    # recorded, and the item comes off sale on marketplace 2 without waiting for the schedule
    elsewhere = ChannelListing.objects.get(item=item, connection=two.connection)
    assert wait_until(lambda: ChannelListing.objects.get(pk=elsewhere.pk).actual_state == ListingState.ENDED), lagging()
    assert Order.objects.get().external_id == order_id
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, one.connection.pk)
    sold_here = ChannelListing.objects.get(item=item, connection=one.connection)
    assert (sold_here.actual_state, sold_here.last_error) == (ListingState.SOLD, "")
    assert wait_until(all_converged), lagging()
    # And staff get no sync error for it: nothing needs a person
    assert not Alert.objects.filter(kind=AlertKind.SYNC_ERROR).exists()
    assert two.seen(elsewhere.external_id).state == "ended"
