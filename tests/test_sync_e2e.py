"""List everywhere, sell once: the whole engine end to end.

A real Celery worker (threads, over Redis) consumes the app's queues; the Django app is
served by the live server, which answers the marketplaces' webhooks; two loopback
marketplaces are two connections of one shop. Nothing is called by hand that production
would not call: staff actions go through services, sales arrive by webhook, and the
worker does the rest. See tests/test_sync_e2e_harness.py for the marketplace adapter.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib import admin

from inventory.admin import ItemAdmin
from inventory.models import (
    Alert,
    AlertKind,
    ChannelListing,
    Conflict,
    Item,
    ListingState,
    Order,
    WebhookEvent,
)
from inventory.selectors import item_channel_counts, sale_end_seconds, stock_problems
from inventory.services import Actor, item_update
from inventory.services.listings import listings_mark_changed, listings_publish
from inventory.services.sync import external_listings_import
from inventory.states import ItemState
from inventory.tasks import enqueue_pull
from tests.factories import make_item
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
    """Two marketplaces, one connection each, delivering their webhooks to the live server."""
    shop_on_business_plan(account)
    with (
        LoopbackMarket(account, "Shop 1", webhook_base=live_server.url, priority=1) as one,
        LoopbackMarket(account, "Shop 2", webhook_base=live_server.url, priority=2) as two,
    ):
        yield one, two


@pytest.fixture
def worker(markets):
    with real_worker():
        yield


def listed_everywhere(account, markets, item) -> dict[str, ChannelListing]:
    """Staff list the item everywhere; the worker publishes it. Returns its listing per market name."""
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {market.name: ChannelListing.objects.get(item=item, connection=market.connection) for market in markets}


def test_an_item_listed_everywhere_goes_live_on_every_channel_once(account, markets, worker):
    # Given an active guitar
    item = make_item(account, n=1, sku="E2E-LIST", title="1962 Fender Jazzmaster", price=Decimal("4200.00"))

    # When staff list it everywhere
    result = listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    # Then the worker publishes it on both marketplaces
    assert result.done == [{"id": item.pk, "sku": "E2E-LIST", "connections": ["Shop 1", "Shop 2"]}]
    assert wait_until(all_converged), lagging()
    for market in markets:
        listing = ChannelListing.objects.get(item=item, connection=market.connection)
        [seen] = market.offered("E2E-LIST")  # exactly one listing per marketplace
        assert (listing.actual_state, listing.external_id, listing.attempts) == ("live", seen.external_id, 0)
        assert (seen.state, seen.title, seen.price, seen.quantity) == (
            "live",
            "1962 Fender Jazzmaster",
            Decimal("4200.00"),
            1,
        )
        assert [write.kind for write in market.writes()] == ["create"]
        assert listing.pushed_content["title"] == "1962 Fender Jazzmaster"


def test_an_edit_is_pushed_to_every_channel_with_only_the_changed_fields(account, markets, worker):
    item = make_item(account, n=2, sku="E2E-EDIT", title="Gibson ES-335", price=Decimal("2800.00"))
    listings = listed_everywhere(account, markets, item)

    # When staff change the title and the price
    item_update(item_id=item.pk, actor=STAFF, changes={"title": "Gibson ES-335 (1968)", "price": Decimal("2650.00")})

    # Then each marketplace gets one revise carrying those two fields and nothing else
    assert wait_until(lambda: all_converged() and all(m.writes() for m in markets)), lagging()
    for market in markets:
        external_id = listings[market.name].external_id
        assert market.writes() == [
            Write("revise", external_id, {"title": "Gibson ES-335 (1968)", "price": Decimal("2650.00")}, 200)
        ]
        seen = market.seen(external_id)
        assert (seen.state, seen.title, seen.price) == ("live", "Gibson ES-335 (1968)", Decimal("2650.00"))
        assert len(market.offered("E2E-EDIT")) == 1
    for market in markets:
        market.reset_log()

    # When the item is saved again unchanged: no listing is even marked
    item_update(item_id=item.pk, actor=STAFF, changes={"title": "Gibson ES-335 (1968)", "price": Decimal("2650.00")})
    assert not ChannelListing.objects.filter(item=item, needs_push=True).exists()
    # And when listings are marked anyway (e.g. a stock recount that found the same figure),
    # the worker sees the content is what was pushed and sends nothing
    assert listings_mark_changed([item.pk]) == 2
    assert wait_until(lambda: not ChannelListing.objects.filter(item=item, needs_push=True).exists())
    assert wait_until(all_converged), lagging()
    assert [market.calls for market in markets] == [0, 0]


def test_a_sale_on_one_channel_ends_the_listing_on_the_other_and_reads_it_back(account, markets, worker):
    one, two = markets
    item = make_item(account, n=3, sku="E2E-SELL", title="Marshall JTM45")
    listings = listed_everywhere(account, markets, item)
    elsewhere = listings["Shop 2"]

    # When a buyer checks out on marketplace 1 (its webhook reaches the live server before this returns)
    order_id = one.sell("E2E-SELL")

    # Then the worker records the sale and ends the listing on marketplace 2
    def ended_elsewhere() -> bool:
        row = ChannelListing.objects.get(pk=elsewhere.pk)
        return row.actual_state == ListingState.ENDED and row.ended_at is not None

    assert wait_until(ended_elsewhere), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id, item.quantity_on_hand) == (ItemState.SOLD, one.connection.pk, 0)
    order = Order.objects.get(external_id=order_id)
    assert (order.connection_id, order.status, order.lines.get().item_id) == (one.connection.pk, "completed", item.pk)
    event = WebhookEvent.objects.get()
    assert (event.connection_id, event.status, event.deliveries) == (one.connection.pk, "processed", 1)

    # And marketplace 2 shows it ended: one end, then a read-back of that listing
    elsewhere.refresh_from_db()
    assert (elsewhere.desired_state, elsewhere.end_reason) == ("ended", "sold_elsewhere")
    assert two.seen(elsewhere.external_id).state == "ended"
    assert [call.kind for call in two.requests(elsewhere.external_id)] == ["end", "read"]
    # And the selling marketplace's listing is recorded as sold there, with nothing sent to it
    sold_here = ChannelListing.objects.get(pk=listings["Shop 1"].pk)
    assert (sold_here.actual_state, sold_here.end_reason) == (ListingState.SOLD, "sold_here")
    assert one.writes() == []
    assert one.seen(sold_here.external_id).state == "sold"

    # And staff see how fast it came off sale everywhere
    seconds = sale_end_seconds(item)
    assert seconds is not None and 0 <= seconds < 30
    assert ItemAdmin(Item, admin.site).sale_cascade(item).startswith("ended everywhere ")
    assert not Conflict.objects.exists()
    assert stock_problems() == []


def test_a_listing_made_on_a_channel_is_imported_for_review_and_shown_on_one_channel(account, markets, worker):
    one, two = markets
    # Given a listing the seller made directly on marketplace 2
    seen = two.list_directly("ELSEWHERE-7", title="Vox AC30 made on the channel", price="1250.00")

    # When the worker pulls that connection (as the schedule or a listings webhook would have it)
    enqueue_pull(two.connection.pk)

    # Then it is imported as an active item flagged for review, linked to that listing
    assert wait_until(lambda: Item.objects.filter(account=account, sku="ELSEWHERE-7").exists())
    item = Item.objects.get(account=account, sku="ELSEWHERE-7")
    assert (item.state, item.needs_review, item.title, item.price) == (
        ItemState.ACTIVE,
        True,
        "Vox AC30 made on the channel",
        Decimal("1250.00"),
    )
    [listing] = ChannelListing.objects.filter(item=item)
    assert (listing.connection_id, listing.external_id, listing.actual_state, listing.imported) == (
        two.connection.pk,
        seen.external_id,
        ListingState.LIVE,
        True,
    )
    assert Alert.objects.filter(kind=AlertKind.REVIEW, item=item, acknowledged_at__isnull=True).count() == 1
    # And it shows as on one channel of two
    [counted] = item_channel_counts([item])
    assert (counted.live_listings, counted.connection_total) == (1, 2)
    assert "1/2 live" in ItemAdmin(Item, admin.site).channels(counted)
    # And nothing was written to either marketplace: importing is reading
    assert one.writes() == [] and two.writes() == []
    assert len(two.offered("ELSEWHERE-7")) == 1

    # And the import walk now knows it: nothing imported twice
    report = external_listings_import(connection_id=two.connection.pk, dry_run=False)
    assert (report.created, report.linked, report.known) == ([], [], ["ELSEWHERE-7"])
    assert Item.objects.filter(account=account, sku="ELSEWHERE-7").count() == 1


def test_a_sale_of_one_of_three_pushes_the_new_quantity_instead_of_ending(account, markets, worker):
    one, two = markets
    item = make_item(account, n=4, sku="E2E-MULTI", quantity=3, condition="brand_new", title="Boss DS-1")
    listings = listed_everywhere(account, markets, item)
    for market in markets:
        assert market.seen(listings[market.name].external_id).quantity == 3
    elsewhere = listings["Shop 2"]

    # When one unit sells on marketplace 1
    one.sell("E2E-MULTI", quantity=1)

    # Then marketplace 2 is told the new quantity, and its listing stays live
    assert wait_until(lambda: two.seen(elsewhere.external_id).quantity == 2), two.requests()
    assert wait_until(all_converged), lagging()
    assert two.writes() == [Write("revise", elsewhere.external_id, {"quantity": 2}, 200)]
    seen = two.seen(elsewhere.external_id)
    assert (seen.state, seen.quantity) == ("live", 2)
    assert ChannelListing.objects.get(pk=elsewhere.pk).actual_state == ListingState.LIVE
    # And the item is still for sale with two left; the selling marketplace shows two as well
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == (ItemState.ACTIVE, 2, 0)
    assert one.seen(listings["Shop 1"].external_id).quantity == 2
    assert not [w for m in markets for w in m.writes() if w.kind == "end"]
    assert stock_problems() == []
