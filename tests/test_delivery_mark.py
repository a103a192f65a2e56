"""A delivery is marked processed in the transaction of the sale it carries (returning.ride_with_next_commit).

The sale's last statement (ending the item's listings) carries the inbox row's processed mark,
so the sale and the mark commit together, with one commit instead of two. Where no sale
statement carries it (a delivery of several orders before its last, a unit left to sell, a
sale whose transaction rolls back) the mark is written as before, once, and never before
every order of the delivery is recorded.

Transactional tests: the ride is only offered outside a transaction, as a worker runs.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from inventory import tasks
from inventory.channels import OrderLineSeen, OrderSeen
from inventory.models import ChannelListing, Item, Order, WebhookEvent, WebhookStatus
from inventory.services import orders as orders_service
from inventory.services.returning import ride_with_next_commit, rides_offered, rides_taken, with_ctes
from inventory.services.sync import webhook_process
from tests.factories import make_item, make_live_listing

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
T0 = timezone.now().replace(microsecond=0) - timedelta(minutes=5)


@pytest.fixture
def reverb(account):
    return ReverbConnection.objects.create(account=account, name="Reverb main shop", api_token="rvb-0123456789ab")


@pytest.fixture
def sent(monkeypatch):
    """The converges the sales queue (not sent to a broker)."""
    queued = []
    monkeypatch.setattr(tasks, "enqueue_converges", lambda pairs, account_id=None: queued.extend(pairs))
    return queued


def _seen(order_id: str, listing_id: str, sku: str) -> OrderSeen:
    return OrderSeen(
        external_id=order_id,
        status="paid",
        placed_at=T0,
        updated_at=T0,
        lines=(OrderLineSeen(sku=sku, external_listing_id=listing_id, quantity=1, unit_price=Decimal("900.00")),),
        currency="USD",
        total=Decimal("900.00"),
        buyer_name="Buyer " + order_id,
    )


def _delivery(reverb, monkeypatch, *orders: OrderSeen) -> WebhookEvent:
    """A stored delivery whose read-back answers these orders."""
    monkeypatch.setattr(reverb_sync, "webhook_orders", lambda connection, event: list(orders))
    return WebhookEvent.objects.create(
        account=reverb.account,
        connection=reverb,
        topic="orders/create",
        dedupe_key=f"d-{orders[0].external_id}",
        payload={},
    )


def _marks(queries) -> list[str]:
    """The statements that wrote the delivery's processed mark (alone, or carried by another)."""
    return [q["sql"][:60] for q in queries if 'UPDATE "inventory_webhookevent"' in q["sql"]]


def test_a_sale_carries_its_deliverys_mark_and_commits_it_with_the_sale(account, reverb, sent, monkeypatch):
    # Given a one-of-a-kind guitar live on Reverb and on another shop
    item = make_item(account, sku="LP-59")
    other = ReverbConnection.objects.create(account=account, name="Reverb outlet", api_token="rvb-ba9876543210")
    make_live_listing(item, reverb, "71")
    make_live_listing(item, other, "72")
    event = _delivery(reverb, monkeypatch, _seen("9001", "71", "LP-59"))

    # When its delivery is processed
    with CaptureQueriesContext(db) as queries:
        assert webhook_process(event_id=event.pk, channel_name="reverb") == "1 order(s) recorded"

    # Then the mark rode with the listings' UPDATE, inside the sale's one transaction
    sql = [q["sql"] for q in queries]
    [carrier] = [n for n, statement in enumerate(sql) if 'UPDATE "inventory_webhookevent"' in statement]
    assert sql[carrier].startswith("WITH ") and '"ride_1" AS (UPDATE "inventory_webhookevent" SET' in sql[carrier]
    assert ') UPDATE "inventory_channellisting" SET' in sql[carrier]
    assert sql.count("COMMIT") == 1 and sql.index("BEGIN") < carrier < sql.index("COMMIT")
    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (WebhookStatus.PROCESSED, 1, "")
    assert event.processed_at is not None
    assert Item.objects.get(pk=item.pk).state == "sold"
    assert sent == [(ChannelListing.objects.get(connection=other).pk, "reverb")]


def test_a_delivery_of_two_orders_is_marked_once_both_are_recorded(account, reverb, sent, monkeypatch):
    # Given two guitars, each live on Reverb, sold in one delivery
    first, second = make_item(account, n=1, sku="LP-1"), make_item(account, n=2, sku="LP-2")
    make_live_listing(first, reverb, "81")
    make_live_listing(second, reverb, "82")
    event = _delivery(reverb, monkeypatch, _seen("9101", "81", "LP-1"), _seen("9102", "82", "LP-2"))

    # When the second order cannot be recorded
    real = orders_service._end_listings_statement
    calls = []

    def second_fails(item_ids, *args):
        calls.append(item_ids)
        if len(calls) == 2:
            raise RuntimeError("PostgreSQL went away")
        return real(item_ids, *args)

    monkeypatch.setattr(orders_service, "_end_listings_statement", second_fails)
    with pytest.raises(RuntimeError, match="went away"):
        webhook_process(event_id=event.pk, channel_name="reverb")

    # Then the first order's transaction did not mark the delivery processed: it is failed, to retry
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WebhookStatus.FAILED, 1)
    assert list(Order.objects.values_list("external_id", flat=True)) == ["9101"]

    # And once it goes through, the delivery is marked once, by the last order's sale
    monkeypatch.setattr(orders_service, "_end_listings_statement", real)
    with CaptureQueriesContext(db) as queries:
        assert webhook_process(event_id=event.pk, channel_name="reverb") == "2 order(s) recorded"
    assert len(_marks(queries)) == 1
    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (WebhookStatus.PROCESSED, 2, "")
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["9101", "9102"]


def test_a_sale_that_ends_nothing_leaves_the_mark_to_its_own_statement(account, reverb, sent, monkeypatch):
    # Given a pedal with three units live on Reverb
    item = make_item(account, sku="TS-808", quantity=3)
    make_live_listing(item, reverb, "91")
    event = _delivery(reverb, monkeypatch, _seen("9201", "91", "TS-808"))

    # When one unit sells (nothing ends: the listing's quantity is pushed instead)
    with CaptureQueriesContext(db) as queries:
        webhook_process(event_id=event.pk, channel_name="reverb")

    # Then the mark is written after the sale, once
    assert [m[:31] for m in _marks(queries)] == ['UPDATE "inventory_webhookevent"']
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WebhookStatus.PROCESSED, 1)
    assert Item.objects.get(pk=item.pk).quantity_on_hand == 2


def test_a_ride_counts_as_carried_only_when_its_transaction_commits(account, reverb):
    event = WebhookEvent.objects.create(account=account, connection=reverb, topic="t", dedupe_key="ride", payload={})
    mark = ('UPDATE "inventory_webhookevent" SET "status" = %s WHERE "id" = %s', [WebhookStatus.PROCESSED, event.pk])

    def carry() -> None:
        rides, params = rides_offered()
        with db.cursor() as cursor:
            cursor.execute(with_ctes(rides, "SELECT 1"), params)
        rides_taken()

    # A transaction that carried it, then rolled back: not carried, and its write is gone
    with ride_with_next_commit(*mark) as ride:
        with pytest.raises(IntegrityError), transaction.atomic():
            carry()
            raise IntegrityError("a concurrent delivery recorded the order")
        assert not ride.carried
        assert rides_offered() == ([], [])  # taken: not offered to a later statement again
    assert WebhookEvent.objects.get(pk=event.pk).status == WebhookStatus.PENDING

    # One that committed: carried, and written
    with ride_with_next_commit(*mark) as ride:
        with transaction.atomic():
            carry()
            assert not ride.carried  # not before the commit
        assert ride.carried
    assert WebhookEvent.objects.get(pk=event.pk).status == WebhookStatus.PROCESSED

    # Offered inside a transaction (the carrier would not be the outermost): not offered at all
    with transaction.atomic(), ride_with_next_commit(*mark) as ride:
        assert rides_offered() == ([], [])
    assert not ride.carried
