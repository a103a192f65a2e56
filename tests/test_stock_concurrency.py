"""Real concurrency on PostgreSQL: many threads selling, cancelling, adjusting and moving
ONE item at the same time never lose a ledger row, a lock or a history row, never leave
stock wrong, and never deadlock. Each thread has its own database connection and closes
it at the end; a Barrier makes them start together.
"""

from __future__ import annotations

import random
import threading
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise

import pytest
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from inventory.errors import InsufficientStock, ItemNotSellable, TransitionNotAllowed
from inventory.models import (
    Item,
    ItemStateChange,
    LockStatus,
    Order,
    OrderStatus,
    StockLock,
    StockMovement,
)
from inventory.selectors import stock_problems
from inventory.services import (
    Actor,
    LineSpec,
    item_transition,
    items_auto_archive,
    order_cancel,
    order_complete,
    order_create,
    stock_adjust,
)
from inventory.services import items as items_service
from inventory.states import ItemState, can_transition
from tests.factories import make_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
OPERATIONS_PER_THREAD = 25
ORDERS = Actor(source="t-order")
STOCK = Actor(source="t-stock")
MOVES = Actor(source="t-transition")
SELL_OUT = Actor(source="t-sellout")


def run_together(threads: int, work: Callable[[int], None]) -> list[str]:
    """Run `work(n)` in `threads` threads released at once; return the unexpected errors."""
    barrier = threading.Barrier(threads)
    errors: list[str] = []

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException:
            errors.append(traceback.format_exc())
        finally:
            connection.close()

    pool = [threading.Thread(target=run, args=(n,), name=f"worker-{n}") for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in pool), "a thread hung (lock wait?)"
    return errors


def assert_item_consistent(item_id: int) -> Item:
    item = Item.objects.get(pk=item_id)
    assert item.quantity_on_hand >= 0
    assert 0 <= item.quantity_locked <= item.quantity_on_hand
    open_locks = StockLock.objects.filter(item=item, status=LockStatus.OPEN).aggregate(s=Sum("quantity"))["s"] or 0
    assert item.quantity_locked == open_locks
    ledger = StockMovement.objects.filter(item=item).aggregate(on_hand=Sum("on_hand_delta"), locked=Sum("locked_delta"))
    assert (ledger["on_hand"], ledger["locked"]) == (item.quantity_on_hand, item.quantity_locked)
    assert stock_problems() == []
    # The history is one unbroken chain of allowed moves ending in the item's state.
    rows = list(ItemStateChange.objects.filter(item=item).order_by("id").values_list("from_state", "to_state"))
    assert rows[0][0] == ""
    for (_, previous_to), (from_state, to_state) in pairwise(rows):
        assert from_state == previous_to, rows
        assert can_transition(from_state, to_state), (from_state, to_state)
    assert rows[-1][1] == item.state
    return item


def test_threads_selling_adjusting_and_moving_one_item_never_lose_or_corrupt_anything(account):
    # Given one multi-quantity active item
    item = make_item(account, quantity=40, sku="MULTI-1")
    counts: Counter[str] = Counter()
    counts_lock = threading.Lock()

    def mixed_work(n: int) -> None:
        rng = random.Random(1000 + n)
        mine = Counter()
        open_orders: list[int] = []
        completed: list[int] = []

        def try_(expected: tuple[type[Exception], ...], call: Callable[[], object]) -> bool:
            try:
                call()
            except expected:
                mine["refused"] += 1
                return False
            return True

        for k in range(OPERATIONS_PER_THREAD):
            op = rng.choice(["order", "order", "complete", "cancel", "adjust", "toggle"])
            if op == "order":
                spec = [LineSpec(item.pk, rng.randint(1, 3))]
                try:
                    order, created = order_create(
                        account=account,
                        actor=ORDERS,
                        channel="reverb",
                        external_id=f"T{n}-{k}",
                        placed_at=timezone.now(),
                        lines=spec,
                    )
                except (InsufficientStock, ItemNotSellable):
                    mine["refused"] += 1
                    continue
                assert created
                open_orders.append(order.pk)
                mine["ledger"] += 1
                mine["orders"] += 1
            elif op == "complete" and open_orders:
                order_complete(order_id=open_orders.pop(rng.randrange(len(open_orders))), actor=ORDERS)
                mine["ledger"] += 1
            elif op == "cancel" and (open_orders or completed):
                source = open_orders if open_orders and (not completed or rng.random() < 0.5) else completed
                order_cancel(order_id=source.pop(rng.randrange(len(source))), actor=ORDERS, reason="race")
                mine["ledger"] += 1
            elif op == "adjust":
                delta = rng.choice([-3, -1, 1, 2, 4])
                call = lambda d=delta: stock_adjust(item_id=item.pk, actor=STOCK, delta=d, reason="count")  # noqa: E731
                if try_((InsufficientStock,), call):
                    mine["ledger"] += 1
            elif op == "toggle":
                # active -> draft -> active, racing the others (and sold -> active after a sell-out).
                for to_state in (ItemState.DRAFT, ItemState.ACTIVE):
                    call = lambda s=to_state: item_transition(item_id=item.pk, to_state=s, actor=MOVES)  # noqa: E731
                    if try_((TransitionNotAllowed,), call):
                        mine["transitions"] += 1
        # Close what this thread still has open, so phase two starts with no locks.
        for order_id in open_orders:
            if rng.random() < 0.5:
                order_complete(order_id=order_id, actor=ORDERS)
            else:
                order_cancel(order_id=order_id, actor=ORDERS, reason="end of race")
            mine["ledger"] += 1
        with counts_lock:
            counts.update(mine)

    # When the threads race on it
    errors = run_together(THREADS, mixed_work)

    # Then nothing went wrong and nothing was lost
    assert errors == [], "\n".join(errors)
    after = assert_item_consistent(item.pk)
    assert after.quantity_locked == 0
    assert StockMovement.objects.filter(item=item).count() == 1 + counts["ledger"]
    assert Order.objects.filter(account=account).count() == counts["orders"]
    assert not StockLock.objects.filter(item=item, status=LockStatus.OPEN).exists()
    manual = ItemStateChange.objects.filter(item=item, source=MOVES.source).count()
    assert manual == counts["transitions"]
    automatic = ItemStateChange.objects.filter(item=item, source=ORDERS.source)
    assert set(automatic.values_list("to_state", flat=True)) <= {ItemState.SOLD, ItemState.ACTIVE}
    assert ItemStateChange.objects.filter(item=item).count() == 1 + manual + automatic.count()
    assert counts["orders"] > 0 and counts["transitions"] > 0  # the race really happened

    # Given the same item back on sale with a known number of units
    for to_state in {
        ItemState.DRAFT: [ItemState.ACTIVE],
        ItemState.SOLD: [ItemState.ACTIVE],
        ItemState.ACTIVE: [],
    }[after.state]:
        item_transition(item_id=item.pk, to_state=to_state, actor=MOVES)
    units = after.quantity_on_hand
    if units < 10:
        stock_adjust(item_id=item.pk, actor=STOCK, delta=10 - units, reason="restock")
        units = 10
    ledger_before = StockMovement.objects.filter(item=item).count()
    history_before = ItemStateChange.objects.filter(item=item).count()
    bought: list[int] = []

    def buy_until_gone(n: int) -> None:
        for k in range(100):
            try:
                order, _ = order_create(
                    account=account,
                    actor=SELL_OUT,
                    channel="shopify",
                    external_id=f"LAST-{n}-{k}",
                    placed_at=timezone.now(),
                    lines=[LineSpec(item.pk, 1)],
                )
            except (InsufficientStock, ItemNotSellable):
                return
            order_complete(order_id=order.pk, actor=SELL_OUT)
            bought.append(order.pk)

    # When every thread tries to buy the last units at once
    errors = run_together(THREADS, buy_until_gone)

    # Then exactly the units there were are sold, once each, and the item is sold exactly once
    assert errors == [], "\n".join(errors)
    final = assert_item_consistent(item.pk)
    assert len(bought) == units
    assert (final.state, final.quantity_on_hand, final.quantity_locked) == (ItemState.SOLD, 0, 0)
    assert StockMovement.objects.filter(item=item).count() == ledger_before + 2 * units  # lock + commit each
    sold_rows = ItemStateChange.objects.filter(item=item, source=SELL_OUT.source)
    assert list(sold_rows.values_list("from_state", "to_state")) == [(ItemState.ACTIVE, ItemState.SOLD)]
    assert ItemStateChange.objects.filter(item=item).count() == history_before + 1
    assert Order.objects.filter(channel="shopify", status=OrderStatus.COMPLETED).count() == units


def test_the_same_channel_order_recorded_by_racing_threads_exists_once_with_one_set_of_locks(account):
    # Given a multi-quantity item and a channel order that arrives N times at once (webhook + pull + retries)
    item = make_item(account, quantity=20, sku="MULTI-2")
    other = make_item(account, n=1, quantity=20, sku="MULTI-3")
    rounds, racers = 5, 8
    results: dict[int, list[tuple[int, bool]]] = {r: [] for r in range(rounds)}

    for r in range(rounds):

        def record(n: int, r: int = r) -> None:
            order, created = order_create(
                account=account,
                actor=ORDERS,
                channel="reverb",
                external_id=f"DUP-{r}",
                placed_at=timezone.now(),
                lines=[LineSpec(item.pk, 2), LineSpec(other.pk, 1)],
            )
            results[r].append((order.pk, created))

        # When they all record it together
        errors = run_together(racers, record)

        # Then exactly one order exists, every caller got that one, and exactly one said "created"
        assert errors == [], "\n".join(errors)
        assert len(results[r]) == racers
        assert len({pk for pk, _ in results[r]}) == 1
        assert [created for _, created in results[r]].count(True) == 1
        assert Order.objects.filter(account=account, channel="reverb", external_id=f"DUP-{r}").count() == 1

    # And only one set of locks and ledger rows was written per order
    assert StockLock.objects.filter(item=item).count() == rounds
    assert StockLock.objects.filter(item=other).count() == rounds
    assert Item.objects.get(pk=item.pk).quantity_locked == 2 * rounds
    assert Item.objects.get(pk=other.pk).quantity_locked == rounds
    per_kind = dict(StockMovement.objects.filter(item=item).values_list("kind").annotate(n=Count("id")))
    assert per_kind == {"received": 1, "locked": rounds}
    assert_item_consistent(item.pk)
    assert_item_consistent(other.pk)


def test_auto_archive_never_archives_an_item_whose_sale_is_undone_while_it_runs(account, monkeypatch):
    # Given a sold item past the auto-archive age
    item = make_item(account, quantity=1, sku="RACE-ARCH")
    item_transition(item_id=item.pk, to_state=ItemState.SOLD, actor=MOVES)
    Item.objects.filter(pk=item.pk).update(state_changed_at=timezone.now() - timedelta(days=400))
    real_bulk_transition = items_service.item_bulk_transition
    undo: dict[str, object] = {}

    def undo_the_sale() -> None:
        try:
            item_transition(item_id=item.pk, to_state=ItemState.ACTIVE, actor=MOVES, reason="sale undone")
            undo["outcome"] = "moved"
        except TransitionNotAllowed:
            undo["outcome"] = "refused"
        finally:
            connection.close()

    def bulk_transition_after_a_racing_undo(**kwargs):
        # When staff put the item back on sale between the archiver's "what is due" and its move
        undo["thread"] = threading.Thread(target=undo_the_sale)
        undo["thread"].start()
        undo["thread"].join(timeout=1.5)
        return real_bulk_transition(**kwargs)

    monkeypatch.setattr(items_service, "item_bulk_transition", bulk_transition_after_a_racing_undo)
    items_auto_archive()
    undo["thread"].join(timeout=30)

    # Then whichever came first, the archive only ever moved a sold item: never an active one
    rows = list(ItemStateChange.objects.filter(item=item).order_by("id").values_list("from_state", "to_state"))
    assert (ItemState.ACTIVE, ItemState.ARCHIVED) not in rows
    final = assert_item_consistent(item.pk)
    if undo["outcome"] == "refused":
        assert final.state == ItemState.ARCHIVED
        assert rows[-1] == (ItemState.SOLD, ItemState.ARCHIVED)
    else:
        assert final.state == ItemState.ACTIVE
        assert rows[-1] == (ItemState.SOLD, ItemState.ACTIVE)
