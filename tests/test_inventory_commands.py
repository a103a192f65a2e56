"""The operator commands: validate_stock finds every kind of stock damage, auto_archive
archives only what each account asked for."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.services import account_create
from inventory.models import Item, ItemStateChange, Order, OrderStatus, StockMovement
from inventory.services import Actor, LineSpec, item_transition, order_create
from inventory.states import ItemState
from tests.factories import make_item

pytestmark = pytest.mark.django_db
ACTOR = Actor(source="test")


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_failing(*args: str) -> tuple[str, CommandError]:
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue(), excinfo.value


def place_order(account, item, quantity: int = 1, external_id: str = "R-1") -> Order:
    order, created = order_create(
        account=account,
        actor=ACTOR,
        channel="reverb",
        external_id=external_id,
        placed_at=timezone.now(),
        lines=[LineSpec(item.pk, quantity)],
    )
    assert created
    return order


# --- validate_stock ------------------------------------------------------------------


def test_validate_stock_passes_on_consistent_stock_with_open_orders(account):
    # Given items with stock and an open order holding a lock
    make_item(account, n=1, quantity=3, sku="OK-1")
    guitar = make_item(account, n=2, quantity=5, sku="OK-2")
    place_order(account, guitar, 2)

    # When the check runs, then it says so and exits 0 (no CommandError)
    output = run("validate_stock")

    assert "Stock is consistent (2 items checked)." in output


def test_validate_stock_reports_a_ledger_mismatch_after_a_raw_update(account):
    # Given someone changed stock with a raw UPDATE that bypassed the ledger
    good = make_item(account, n=1, quantity=3, sku="GOOD-1")
    tampered = make_item(account, n=2, quantity=3, sku="BAD-1")
    Item.objects.filter(pk=tampered.pk).update(quantity_on_hand=F("quantity_on_hand") + 4)

    # When the check runs
    output, error = run_failing("validate_stock")

    # Then it names the item and the kind of problem, and exits non-zero
    assert f"ledger_mismatch: BAD-1 (item {tampered.pk}): item on hand 7 / locked 0, ledger sums to 3 / 0" in output
    assert "GOOD-1" not in output
    assert "lock_mismatch" not in output and "orphaned_lock" not in output
    assert str(error) == "1 stock problem(s) found."
    assert error.returncode == 1
    assert good.pk != tampered.pk


def test_validate_stock_reports_a_lock_mismatch_when_locked_units_disagree_with_open_locks(account):
    # Given an open order holding 2 units, and the item's locked figure zeroed behind the ledger's back
    item = make_item(account, quantity=5, sku="LOCK-1")
    place_order(account, item, 2)
    Item.objects.filter(pk=item.pk).update(quantity_locked=0)

    # When the check runs
    output, error = run_failing("validate_stock")

    # Then both the lock total and the ledger disagree with the item, and both are reported
    assert f"lock_mismatch: LOCK-1 (item {item.pk}): item says 0 locked, open locks hold 2" in output
    assert f"ledger_mismatch: LOCK-1 (item {item.pk}): item on hand 5 / locked 0, ledger sums to 5 / 2" in output
    assert "orphaned_lock" not in output
    assert str(error) == "2 stock problem(s) found."


def test_validate_stock_reports_an_orphaned_lock_of_an_order_cancelled_behind_the_services_back(account):
    # Given an open order whose status was force-set to cancelled, so its lock is never released
    item = make_item(account, quantity=5, sku="ORPH-1")
    order = place_order(account, item, 1, external_id="R-77")
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)

    # When the check runs
    output, error = run_failing("validate_stock")

    # Then the orphaned lock is reported (the item's own figures still add up)
    assert "orphaned_lock: ORPH-1" in output
    assert "order reverb #R-77 is cancelled" in output
    assert "ledger_mismatch" not in output and "lock_mismatch" not in output
    assert str(error) == "1 stock problem(s) found."


def test_validate_stock_account_option_checks_only_that_account(account, other_account):
    # Given damage in another account only
    make_item(account, quantity=2, sku="MINE-1")
    theirs = make_item(other_account, quantity=2, sku="THEIRS-1")
    Item.objects.filter(pk=theirs.pk).update(quantity_on_hand=9)

    # When the check is limited to the healthy account, then it passes
    assert "Stock is consistent (1 items checked)." in run("validate_stock", "--account", account.slug)

    # And limited to the damaged one, it fails naming only that item
    output, _ = run_failing("validate_stock", "--account", other_account.slug)
    assert "THEIRS-1" in output and "MINE-1" not in output


def test_validate_stock_unknown_account_is_a_clear_error(account):
    output, error = run_failing("validate_stock", "--account", "no-such-shop")

    assert str(error) == "No account with slug 'no-such-shop'. Run without --account to check them all."
    assert output == ""


def test_the_database_refuses_negative_stock_and_locks_beyond_stock_even_from_raw_updates(account):
    # Given an item; when raw updates try to break the stock rules, then the database refuses them
    item = make_item(account, quantity=2, sku="GUARD-1")
    for change in ({"quantity_on_hand": -1}, {"quantity_locked": 3}, {"quantity_locked": -1}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Item.objects.filter(pk=item.pk).update(**change)
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked) == (2, 0)


# --- auto_archive ------------------------------------------------------------------


def aged(account, *, sku: str, state: str, days: float) -> Item:
    """An item that reached `state` through allowed moves, `days` ago."""
    item = make_item(account, sku=sku, quantity=1, state=ItemState.ACTIVE)
    path = {
        ItemState.ACTIVE: [],
        ItemState.DRAFT: [ItemState.DRAFT],
        ItemState.SOLD: [ItemState.SOLD],
        ItemState.SHIPPED: [ItemState.SOLD, ItemState.SHIPPED],
    }[state]
    for to_state in path:
        item_transition(item_id=item.pk, to_state=to_state, actor=ACTOR)
    Item.objects.filter(pk=item.pk).update(state_changed_at=timezone.now() - timedelta(days=days))
    return item


@pytest.fixture
def shops(account, other_account):
    """Three accounts: 30 days (the default), 7 days, and auto-archive off."""
    account.auto_archive_after_days = 30
    account.save()
    other_account.auto_archive_after_days = 7
    other_account.save()
    off = account_create(name="Keeps Everything", slug="keeps-everything")
    off.auto_archive_after_days = 0
    off.save()
    items = {
        "old-sold": aged(account, sku="A-OLD-SOLD", state=ItemState.SOLD, days=31),
        "old-shipped": aged(account, sku="A-OLD-SHIP", state=ItemState.SHIPPED, days=45),
        "young-sold": aged(account, sku="A-NEW-SOLD", state=ItemState.SOLD, days=29),
        "old-active": aged(account, sku="A-OLD-ACTIVE", state=ItemState.ACTIVE, days=90),
        "old-draft": aged(account, sku="A-OLD-DRAFT", state=ItemState.DRAFT, days=90),
        "week-sold": aged(other_account, sku="B-WEEK-SOLD", state=ItemState.SOLD, days=8),
        "days-shipped": aged(other_account, sku="B-DAYS-SHIP", state=ItemState.SHIPPED, days=6),
        "off-sold": aged(off, sku="C-OFF-SOLD", state=ItemState.SOLD, days=400),
    }
    return items


def states_and_history(items: dict[str, Item]) -> dict[str, tuple[str, int]]:
    return {
        name: (Item.objects.get(pk=item.pk).state, ItemStateChange.objects.filter(item=item).count())
        for name, item in items.items()
    }


def test_auto_archive_dry_run_lists_what_it_would_archive_and_changes_nothing(shops):
    before = states_and_history(shops)

    output = run("auto_archive", "--dry-run")

    lines = dict(line.split(": would archive ", 1) for line in output.splitlines() if ": would archive " in line)
    assert set(lines) == {"blue-note", "rival-music"}  # not keeps-everything (off)
    count, skus = lines["blue-note"].split(": ", 1)
    assert (count, sorted(skus.split(", "))) == ("2", ["A-OLD-SHIP", "A-OLD-SOLD"])
    assert lines["rival-music"] == "1: B-WEEK-SOLD"
    assert "would archive 3 item(s) in total." in output
    assert states_and_history(shops) == before


def test_auto_archive_archives_only_old_sold_and_shipped_items_per_account_age(shops):
    before = states_and_history(shops)

    output = run("auto_archive")

    # Then exactly the items past their own account's age are archived, with a history row each
    archived = {"old-sold", "old-shipped", "week-sold"}
    after = states_and_history(shops)
    for name, (state, history) in after.items():
        if name in archived:
            assert (state, history) == (ItemState.ARCHIVED, before[name][1] + 1), name
        else:
            assert (state, history) == before[name], name
    for name in archived:
        row = ItemStateChange.objects.filter(item=shops[name]).order_by("-id").first()
        assert row.source == "command"
        assert row.from_state == before[name][0]
        assert row.to_state == ItemState.ARCHIVED
        assert row.user_id is None
    assert ItemStateChange.objects.filter(item=shops["old-sold"]).order_by("-id")[0].reason == (
        "auto-archived after 30 days"
    )
    assert ItemStateChange.objects.filter(item=shops["week-sold"]).order_by("-id")[0].reason == (
        "auto-archived after 7 days"
    )
    assert "archived 3 item(s) in total." in output
    # And no stock moved
    assert StockMovement.objects.filter(item__in=[i.pk for i in shops.values()]).exclude(kind="received").count() == 0

    # When it runs again, then there is nothing left to do
    assert "archived 0 item(s) in total." in run("auto_archive")
    assert states_and_history(shops) == after


def test_auto_archive_off_for_an_account_with_zero_days(shops):
    run("auto_archive")

    assert Item.objects.get(pk=shops["off-sold"].pk).state == ItemState.SOLD
    assert ItemStateChange.objects.filter(item=shops["off-sold"], to_state=ItemState.ARCHIVED).count() == 0
