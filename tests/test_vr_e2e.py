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


def test_with_one_call_in_five_failing_on_both_every_change_lands_once(account, live_server, settings, monkeypatch):
    from inventory.channels import TransientChannelError
    from inventory.models import Item
    from inventory.services.sync import connection_pull
    from inventory.tasks import converge_listing_task, process_webhook_event_task

    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    monkeypatch.setattr(converge_listing_task, "max_retries", 25)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 25)
    reverb_faults = {"error_rate": 0.1, "rate_limit_rate": 0.05, "timeout_rate": 0.05, "timeout_delay": 0.5}
    with (
        LoopbackMarket(
            account,
            "Reverb",
            webhook_base=live_server.url,
            priority=20,
            timeout=0.25,
            seed=5,
            retry_after=1,
            **reverb_faults,
        ) as reverb,
        VRMarket(account, "Vintage & Rare", error_rate=0.15, store_then_fail_rate=0.3, seed=7) as vr,
        real_worker(concurrency=4),
    ):
        items = [
            make_item(account, n=n, sku=f"VRF-{n}", brand="Fender", model=f"Model {n}", category="Electric Guitars")
            for n in range(6)
        ]
        listings_publish(account=account, item_ids=[item.pk for item in items], actor=STAFF)
        assert wait_until(all_converged, timeout=120), lagging()

        sales = [(vr, vr.sell("VRF-0"), "VRF-0"), (vr, vr.sell("VRF-3"), "VRF-3")]
        sales += [(reverb, reverb.sell("VRF-1"), "VRF-1"), (reverb, reverb.sell("VRF-4"), "VRF-4")]
        for _ in range(10):  # the scheduled V&R pull, run now; a failed one is simply run again
            try:
                if connection_pull(connection_id=vr.connection.pk).status == "ok":
                    break
            except TransientChannelError:
                continue
        assert wait_until(all_converged, timeout=120), lagging()

        faults = [r for r in vr.sandbox.requests() if r.status == 500]
        assert any(r.kind == "add" for r in faults) and any(r.kind != "add" for r in faults)
        assert vr.listing_count_by_sku() == {item.sku: 1 for item in items}  # never created twice
        assert reverb.listing_count_by_sku() == {item.sku: 1 for item in items}
        assert Order.objects.count() == 4
        for market, order_id, sku in sales:
            order = Order.objects.get(external_id=order_id, connection=market.connection)
            item = Item.objects.get(sku=sku)
            assert order.lines.get().item == item
            assert (item.state, item.sold_on_id) == (ItemState.SOLD, market.connection.pk)
            other = vr if market is reverb else reverb
            listing = ChannelListing.objects.get(item=item, connection=other.connection)
            assert (listing.actual_state, listing.end_reason) == (ListingState.ENDED, "sold_elsewhere")
            assert other.offered(sku)[0].state in ("ended", "sold")
        for sku in ("VRF-2", "VRF-5"):
            assert [m.offered(sku)[0].state for m in (reverb, vr)] == ["live", "live"]
        assert not Conflict.objects.exists()
