"""First sale wins across Reverb and V&R: a real Celery worker, the live server, real Chromium.

The worker consumes every queue (sync.vr among them) in threads; V&R's browser work is
serialised by the channel itself (one browser per dealer login, a lock per connection).
V&R sends no webhooks, so a sale there is seen by the next pull, requested here as the
schedule would.
"""

from __future__ import annotations

import pytest

from inventory.models import ChannelListing, Conflict, ListingState, Order
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState
from inventory.tasks import enqueue_pull
from tests.factories import make_item
from tests.test_sync_e2e_harness import (
    LoopbackMarket,
    all_converged,
    lagging,
    real_worker,
    shop_on_business_plan,
    wait_until,
)
from tests.vr_market import VRMarket

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor(source="test")


@pytest.fixture
def markets(account, live_server):
    shop_on_business_plan(account)
    with (
        LoopbackMarket(account, "Reverb", webhook_base=live_server.url, priority=20) as reverb,
        VRMarket(account, "Vintage & Rare", priority=30) as vr,
    ):
        yield reverb, vr


@pytest.fixture
def worker(markets):
    with real_worker():
        yield


def listed_on_both(account, markets, sku: str):
    item = make_item(account, n=1, sku=sku, brand="Fender", model="Stratocaster", category="Electric Guitars")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged, timeout=60), lagging()
    for market in markets:
        market.reset_log()
    reverb, vr = markets
    return (
        item,
        ChannelListing.objects.get(connection=reverb.connection),
        ChannelListing.objects.get(connection=vr.connection),
    )


def test_a_sale_on_vr_ends_the_reverb_listing_and_marks_the_item_sold_with_vr_winning(account, markets, worker):
    reverb, vr = markets
    item, on_reverb, on_vr = listed_on_both(account, markets, "E2E-VR-1")
    assert vr.listing_count_by_sku() == {"E2E-VR-1": 1}

    order_id = vr.sell("E2E-VR-1")
    enqueue_pull(vr.connection.pk)

    assert wait_until(
        lambda: ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED, timeout=60
    ), lagging()
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, vr.connection.pk)
    order = Order.objects.get()
    assert (order.external_id, order.connection_id) == (order_id, vr.connection.pk)
    assert reverb.seen(on_reverb.external_id).state == "ended"
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_vr.pk).actual_state == ListingState.SOLD, timeout=30)
    assert vr.writes() == []  # nothing sent to V&R: it sold there
    assert not Conflict.objects.exists()


def test_a_sale_on_reverb_marks_the_vr_item_sold_and_no_vr_sale_is_invented(account, markets, worker):
    reverb, vr = markets
    item, _on_reverb, on_vr = listed_on_both(account, markets, "E2E-VR-2")

    reverb.sell("E2E-VR-2")

    assert wait_until(lambda: ChannelListing.objects.get(pk=on_vr.pk).actual_state == ListingState.ENDED, timeout=60), (
        lagging()
    )
    assert vr.seen(on_vr.external_id).state == "sold"
    assert [w.kind for w in vr.writes()] == ["end"]  # marked sold once, confirmed in the export
    enqueue_pull(vr.connection.pk)  # V&R now shows it sold, by our own hand: not a sale there
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_vr.pk).connection.last_pull_at is not None, timeout=30)
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)
    assert Order.objects.count() == 1 and not Conflict.objects.exists()


def test_a_double_sale_on_reverb_and_vr_opens_one_conflict_and_loses_no_order(account, markets, worker):
    reverb, vr = markets
    item, _on_reverb, on_vr = listed_on_both(account, markets, "E2E-VR-3")

    vr_order = vr.sell("E2E-VR-3")  # bought on V&R; nobody has looked yet
    reverb_order = reverb.sell("E2E-VR-3")  # and on Reverb, whose webhook arrives at once

    # the end sent to V&R finds it sold there already (nothing marked), and the next pull records that sale
    assert wait_until(lambda: ChannelListing.objects.get(pk=on_vr.pk).actual_state != ListingState.LIVE, timeout=60)
    assert vr.writes() == []
    enqueue_pull(vr.connection.pk)
    assert wait_until(lambda: Conflict.objects.exists(), timeout=60), lagging()
    conflict = Conflict.objects.get()
    assert (conflict.winning_order.external_id, conflict.losing_order.external_id) == (reverb_order, vr_order)
    assert Order.objects.count() == 2
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)
