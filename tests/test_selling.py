"""First sale wins: what happens when channels report sales, in every order they can arrive.

These tests speak the engine's contract (OrderSeen from inventory.channels) and use plain
ChannelConnection rows: they hold for any channel.
"""

import dataclasses
import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.channels import END_SOLD_ELSEWHERE, END_SOLD_HERE, OrderLineSeen, OrderSeen
from inventory.models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    Conflict,
    Item,
    Order,
    OrderLine,
    StockLock,
    StockMovement,
)
from inventory.selectors import stock_problems
from inventory.services.selling import sale_record
from inventory.services.stock import stock_alerts_check
from tests.factories import make_item, make_live_listing

pytestmark = pytest.mark.django_db
T0 = timezone.now().replace(microsecond=0) - timedelta(minutes=5)


def _connection(account, name: str, priority: int = 100) -> ChannelConnection:
    return ChannelConnection.objects.create(account=account, channel="reverb", name=name, priority=priority)


def _seen(order_id: str, *, sku: str, listing_id: str = "", placed_at=T0, status="paid", quantity=1, updated_at=None):
    return OrderSeen(
        external_id=order_id,
        status=status,
        placed_at=placed_at,
        updated_at=updated_at or placed_at,
        lines=(
            OrderLineSeen(sku=sku, external_listing_id=listing_id, quantity=quantity, unit_price=Decimal("1000.00")),
        ),
        currency="USD",
        total=Decimal("1000.00"),
        buyer_name="Buyer " + order_id,
        ship_name="Buyer " + order_id,
        ship_line1="1 Main St",
        ship_city="Austin",
        ship_country="US",
    )


@pytest.fixture
def shop(account):
    a, b, c = _connection(account, "Shop A", 1), _connection(account, "Shop B", 2), _connection(account, "Shop C", 3)
    item = make_item(account, sku="STRAT-64", quantity=1)
    listings = {conn.pk: make_live_listing(item, conn, f"{conn.name[-1]}-100") for conn in (a, b, c)}
    return {"a": a, "b": b, "c": c, "item": item, "listings": listings}


def test_a_sale_sells_the_item_and_ends_every_other_listing(shop, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        outcome = sale_record(connection=shop["a"], seen=_seen("R1", sku="STRAT-64", listing_id="A-100"))
    assert outcome.created and outcome.conflict is None
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == ("sold", 0, 0)
    assert (item.sold_on_id, item.sold_at) == (shop["a"].pk, T0)
    listing = {lst.connection_id: lst for lst in ChannelListing.objects.filter(item=item)}
    assert (listing[shop["a"].pk].actual_state, listing[shop["a"].pk].end_reason) == ("sold", END_SOLD_HERE)
    for other in (shop["b"], shop["c"]):
        assert (listing[other.pk].desired_state, listing[other.pk].end_reason) == ("ended", END_SOLD_ELSEWHERE)
        assert listing[other.pk].actual_state == "live"  # the workers end it and read it back
    assert callbacks, "ending the other listings is scheduled after commit"
    history = list(item.state_changes.values_list("to_state", "source"))
    assert history[0] == ("sold", "reverb")
    assert stock_problems() == []


def test_an_order_of_two_guitars_sells_both_with_every_row_in_its_one_transaction(shop):
    # Given a second one-of-a-kind guitar listed on the same three shops
    account = shop["item"].account
    tele = make_item(account, n=2, sku="TELE-72", quantity=1)
    for conn in (shop["a"], shop["b"], shop["c"]):
        make_live_listing(tele, conn, f"{conn.name[-1]}-200")
    seen = _seen("R2", sku="STRAT-64", listing_id="A-100")
    second = OrderLineSeen(sku="TELE-72", external_listing_id="A-200", quantity=1, unit_price=Decimal("800.00"))
    seen = dataclasses.replace(seen, lines=(*seen.lines, second))

    # When one order on shop A buys both
    with CaptureQueriesContext(db_connection) as record:
        outcome = sale_record(connection=shop["a"], seen=seen)

    # Then the order, its two lines, their committed locks, four ledger rows, two history rows,
    # both items sold and every listing ended are written, in three statements inside BEGIN/COMMIT
    assert outcome.created and outcome.note == "sold"
    order = Order.objects.get(pk=outcome.order.pk)
    lines = list(order.lines.order_by("pk").values_list("sku", "unit_price", "item_id"))
    assert lines == [("STRAT-64", Decimal("1000.00"), shop["item"].pk), ("TELE-72", Decimal("800.00"), tele.pk)]
    locks = StockLock.objects.filter(order_line__order=order)
    assert sorted(locks.values_list("item_id", "status", "quantity")) == sorted(
        [(shop["item"].pk, "committed", 1), (tele.pk, "committed", 1)]
    )
    assert all(lock.closed_at is not None for lock in locks)
    for guitar in (shop["item"], tele):
        item = Item.objects.get(pk=guitar.pk)
        assert (item.state, item.quantity_on_hand, item.quantity_locked, item.sold_on_id) == (
            "sold",
            0,
            0,
            shop["a"].pk,
        )
        ledger = StockMovement.objects.filter(item=item, order_line__order=order).order_by("pk")
        assert list(ledger.values_list("kind", "on_hand_after", "locked_after")) == [
            ("locked", 1, 1),
            ("committed", 0, 0),
        ]
        assert list(item.state_changes.filter(to_state="sold").values_list("from_state", flat=True)) == ["active"]
        ends = ChannelListing.objects.filter(item=item).exclude(connection=shop["a"])
        assert set(ends.values_list("desired_state", "end_reason")) == {("ended", END_SOLD_ELSEWHERE)}
    writes = [q["sql"] for q in record.captured_queries if q["sql"].startswith(("INSERT", "UPDATE", "WITH"))]
    assert len(writes) == 2, writes  # the order with its lines; the listings' end carrying the rest
    assert stock_problems() == []


def test_a_sale_whose_carried_write_fails_writes_nothing(shop):
    # Given the item's UPDATE, which rides with the listings' end, is refused by the database
    def refused(model, pk, changes):
        return f'UPDATE "{model._meta.db_table}" SET "quantity_locked" = 5 WHERE "id" = %s', [pk]

    # When the sale is recorded
    with mock.patch("inventory.services.orders.update_by_pk_statement", refused), pytest.raises(IntegrityError):
        sale_record(connection=shop["a"], seen=_seen("R3", sku="STRAT-64", listing_id="A-100"))

    # Then none of the sale is kept: no order or line, no lock, ledger or history row, the item
    # and its listings as they were; the delivery is retried as a whole
    assert not Order.objects.filter(external_id="R3").exists()
    assert not OrderLine.objects.filter(sku="STRAT-64").exists()
    assert not StockLock.objects.exists()
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == ("active", 1, 0)
    assert not StockMovement.objects.filter(item=item, order_line__isnull=False).exists()
    assert not item.state_changes.filter(to_state="sold").exists()
    assert set(ChannelListing.objects.filter(item=item).values_list("desired_state", flat=True)) == {"live"}


def test_the_same_order_reported_again_changes_nothing(shop):
    sale_record(connection=shop["a"], seen=_seen("R1", sku="STRAT-64", listing_id="A-100"))
    ledger_rows = StockMovement.objects.count()
    for _ in range(3):
        outcome = sale_record(connection=shop["a"], seen=_seen("R1", sku="STRAT-64", listing_id="A-100"))
        assert not outcome.created
    assert Order.objects.count() == 1
    assert StockMovement.objects.count() == ledger_rows
    assert Conflict.objects.count() == 0


def test_the_same_order_number_on_another_connection_is_another_order(shop):
    make_item(shop["item"].account, n=2, sku="TELE-72", quantity=1)
    sale_record(connection=shop["a"], seen=_seen("SAME-1", sku="STRAT-64"))
    sale_record(connection=shop["b"], seen=_seen("SAME-1", sku="TELE-72"))
    assert Order.objects.filter(external_id="SAME-1").count() == 2


def test_double_sale_keeps_both_orders_and_the_first_wins(shop):
    sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", placed_at=T0))
    outcome = sale_record(connection=shop["b"], seen=_seen("B1", sku="STRAT-64", placed_at=T0 + timedelta(seconds=3)))
    conflict = outcome.conflict
    assert conflict is not None
    assert (conflict.winning_order.external_id, conflict.losing_order.external_id) == ("A1", "B1")
    loser = Order.objects.get(external_id="B1")
    assert list(loser.lines.values_list("sku", "quantity")) == [("STRAT-64", 1)]
    assert not StockLock.objects.filter(order_line__order=loser).exists()
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.quantity_on_hand, item.quantity_locked, item.sold_on_id) == (0, 0, shop["a"].pk)
    alert = Alert.objects.get(kind="conflict")
    assert "A1" in alert.title and "B1" in alert.title and "must be cancelled and refunded" in alert.message
    assert stock_problems() == []


def test_double_sale_arriving_out_of_order_gives_the_item_to_the_earlier_sale(shop):
    sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", placed_at=T0 + timedelta(seconds=3)))
    outcome = sale_record(connection=shop["b"], seen=_seen("B1", sku="STRAT-64", placed_at=T0))
    assert (outcome.conflict.winning_order.external_id, outcome.conflict.losing_order.external_id) == ("B1", "A1")
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.state, item.quantity_on_hand, item.quantity_locked, item.sold_on_id) == ("sold", 0, 0, shop["b"].pk)
    assert StockLock.objects.get(order_line__order__external_id="B1").status == "committed"
    assert StockLock.objects.get(order_line__order__external_id="A1").status == "returned"
    assert ChannelListing.objects.get(item=item, connection=shop["b"]).actual_state == "sold"
    assert stock_problems() == []


def test_equal_timestamps_are_settled_by_connection_priority(shop):
    sale_record(connection=shop["b"], seen=_seen("B1", sku="STRAT-64", placed_at=T0))
    outcome = sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", placed_at=T0))
    assert outcome.conflict.winning_order.external_id == "A1"  # Shop A has priority 1


def test_unpaid_order_reserves_the_item_then_payment_commits_it(shop):
    sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="pending"))
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == ("sold", 1, 1)
    later = T0 + timedelta(minutes=1)
    outcome = sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="paid", updated_at=later))
    assert outcome.note == "paid: stock committed"
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand, item.quantity_locked) == ("sold", 0, 0)


def test_a_cancelled_sale_puts_the_item_back_on_sale_everywhere(shop):
    sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="pending"))
    outcome = sale_record(
        connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="cancelled", updated_at=T0 + timedelta(minutes=2))
    )
    assert outcome.order.status == "cancelled"
    item = Item.objects.get(pk=shop["item"].pk)
    assert (item.state, item.quantity_on_hand, item.quantity_locked, item.sold_on_id) == ("active", 1, 0, None)
    desired = set(ChannelListing.objects.filter(item=item).values_list("desired_state", flat=True))
    assert desired == {"live"}


def test_old_news_does_not_undo_newer_news(shop):
    sale_record(
        connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="paid", updated_at=T0 + timedelta(minutes=5))
    )
    outcome = sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64", status="pending", updated_at=T0))
    assert "ignored" in outcome.note
    assert Order.objects.get(external_id="A1").status == "completed"


def test_multi_quantity_sale_pushes_the_new_quantity_instead_of_ending(account):
    a, b = _connection(account, "Shop A", 1), _connection(account, "Shop B", 2)
    item = make_item(account, sku="DS1-NEW", quantity=3)
    for conn in (a, b):
        make_live_listing(item, conn, f"{conn.pk}-ds1")
    sale_record(connection=a, seen=_seen("A1", sku="DS1-NEW", quantity=2))
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand) == ("active", 1)
    assert set(ChannelListing.objects.filter(item=item).values_list("desired_state", "needs_push")) == {("live", True)}
    sale_record(connection=b, seen=_seen("B1", sku="DS1-NEW", quantity=1))
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand) == ("sold", 0)


def test_channel_sales_raise_stock_alerts_for_multi_quantity_items_only(account, django_capture_on_commit_callbacks):
    a = _connection(account, "Shop A", 1)
    pedals = make_item(account, n=1, sku="DS1-3", quantity=3)
    guitar = make_item(account, n=2, sku="LP-59", quantity=1)
    for item in (pedals, guitar):
        make_live_listing(item, a, f"{item.sku}-a")

    with django_capture_on_commit_callbacks(execute=True):
        sale_record(connection=a, seen=_seen("P1", sku="DS1-3", quantity=2))
    low = Alert.objects.get(item=pedals, kind="low_stock")
    assert (low.is_open, low.title) == (True, "DS1-3 is running low: 1 left")
    # The last unit: one unit on hand before the sale, but the ledger knows it had three
    with django_capture_on_commit_callbacks(execute=True):
        sale_record(connection=a, seen=_seen("P2", sku="DS1-3", quantity=1))
    low.refresh_from_db()
    assert not low.is_open and Alert.objects.get(item=pedals, kind="out_of_stock").is_open
    # A one-of-a-kind guitar selling is a sale, not a stock problem: nothing is even checked
    with (
        mock.patch("inventory.services.orders.stock_alerts_check", wraps=stock_alerts_check) as checked,
        django_capture_on_commit_callbacks(execute=True),
    ):
        sale_record(connection=a, seen=_seen("G1", sku="LP-59"))
    assert checked.call_count == 0
    assert Item.objects.get(pk=guitar.pk).state == "sold"
    assert not Alert.objects.filter(item=guitar).exists()


def test_an_order_for_an_unknown_item_is_kept_for_staff(shop):
    outcome = sale_record(connection=shop["a"], seen=_seen("A9", sku="NOT-OURS"))
    assert outcome.created
    assert "NOT-OURS" in Order.objects.get(external_id="A9").note
    assert Alert.objects.filter(kind="review", title__contains="does not know").count() == 1


def test_an_order_matched_by_listing_id_even_when_the_sku_differs(shop):
    outcome = sale_record(connection=shop["b"], seen=_seen("B5", sku="", listing_id="B-100"))
    assert list(outcome.order.lines.values_list("item_id", flat=True)) == [shop["item"].pk]


def test_a_listing_id_we_do_not_know_falls_back_to_the_sku(shop):
    # e.g. a listing made on the channel and not imported yet: the SKU still names the guitar
    outcome = sale_record(connection=shop["b"], seen=_seen("B6", sku="STRAT-64", listing_id="B-999"))

    assert list(outcome.order.lines.values_list("item_id", flat=True)) == [shop["item"].pk]
    assert Item.objects.get(pk=shop["item"].pk).state == "sold"
    assert ChannelListing.objects.filter(item=shop["item"], desired_state="ended").count() == 3


def test_a_listing_of_another_shop_does_not_sell_its_item(shop, other_account):
    theirs = make_item(other_account, sku="THEIRS-1")
    make_live_listing(theirs, _connection(other_account, "Their shop"), "B-777")
    ChannelListing.objects.filter(item=theirs).update(connection=shop["b"])  # a row pointing across shops

    with pytest.raises(ValidationError, match="in this account"):  # the delivery fails, visibly
        sale_record(connection=shop["b"], seen=_seen("B7", sku="", listing_id="B-777"))

    assert Item.objects.get(pk=theirs.pk).state == "active"
    assert not Order.objects.filter(external_id="B7").exists()


def test_a_sale_of_an_archived_item_is_kept_and_raised(shop):
    Item.objects.filter(pk=shop["item"].pk).update(state="archived")
    outcome = sale_record(connection=shop["a"], seen=_seen("A1", sku="STRAT-64"))
    assert outcome.created
    assert Alert.objects.filter(kind="conflict", title__contains="archived").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_channels_selling_the_last_unit_at_once_200_times(account):
    a, b = _connection(account, "Shop A", 1), _connection(account, "Shop B", 2)
    rounds = 200
    for n in range(rounds):
        item = make_item(account, n=n, sku=f"RACE-{n}", quantity=1)
        barrier = threading.Barrier(2)
        errors = []

        def sell(conn, order_id, when, sku=item.sku, barrier=barrier, errors=errors):
            try:
                barrier.wait(timeout=10)
                sale_record(connection=conn, seen=_seen(order_id, sku=sku, placed_at=when))
            except Exception as error:  # collected and asserted below
                errors.append(error)
            finally:
                db_connection.close()

        when_a = T0 + timedelta(milliseconds=n % 7)
        when_b = T0 + timedelta(milliseconds=3)
        threads = [
            threading.Thread(target=sell, args=(a, f"A-{n}", when_a)),
            threading.Thread(target=sell, args=(b, f"B-{n}", when_b)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        item.refresh_from_db()
        assert (item.state, item.quantity_on_hand, item.quantity_locked) == ("sold", 0, 0)
        conflicts = list(Conflict.objects.filter(item=item))
        assert len(conflicts) == 1
        expected_winner = f"A-{n}" if (when_a, 1) < (when_b, 2) else f"B-{n}"
        assert conflicts[0].winning_order.external_id == expected_winner
        committed = StockLock.objects.filter(item=item, status="committed")
        assert list(committed.values_list("order_line__order__external_id", flat=True)) == [expected_winner]
    assert stock_problems() == []
