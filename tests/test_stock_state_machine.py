"""Random sequences of inventory operations never leave stock, locks, the ledger or the
state history wrong.

A Hypothesis state machine keeps a plain-Python model of what every operation must do
(allowed or refused) and, after each step, compares the database with the model and
checks the invariants that must always hold. Each example runs inside a savepoint of the
test's transaction and is rolled back in teardown, so examples never see each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import pytest
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Account
from inventory.errors import InsufficientStock, ItemNotSellable, OrderStateError, TransitionNotAllowed
from inventory.models import (
    Item,
    ItemStateChange,
    LockStatus,
    Order,
    OrderLine,
    OrderStatus,
    StockLock,
    StockMovement,
)
from inventory.selectors import stock_problems
from inventory.services import (
    Actor,
    LineSpec,
    item_bulk_transition,
    item_transition,
    order_cancel,
    order_complete,
    order_create,
    stock_adjust,
)
from inventory.states import ItemState, allowed_targets, can_transition
from tests.factories import make_item

ITEMS = 3
EXTERNAL_IDS = [f"R-{n}" for n in range(10)]  # a small pool, so replays and reuse after a refusal happen often
ACTOR = Actor(source="test")

item_index = st.integers(min_value=0, max_value=ITEMS - 1)
any_state = st.sampled_from(ItemState.values)


@dataclass
class ItemModel:
    pk: int
    state: str
    on_hand: int
    locked: int = 0
    history: int = 1  # the creation row
    ledger_rows: int = 0


@dataclass
class OrderModel:
    pk: int
    status: str
    lines: list[tuple[int, int]] = field(default_factory=list)  # (item index, quantity)
    lock_status: str = LockStatus.OPEN


class InventoryMachine(RuleBasedStateMachine):
    """Drives the services at random and holds the model of what they must have done."""

    def __init__(self):
        super().__init__()
        # One savepoint per example inside the pytest-django test transaction.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.account = Account.objects.get(slug="blue-note")
        self.items: list[ItemModel] = []
        self.orders: dict[str, OrderModel] = {}

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # --- helpers ----------------------------------------------------------------------

    def _snapshot(self) -> tuple:
        return (
            tuple(Item.objects.order_by("pk").values_list("pk", "state", "quantity_on_hand", "quantity_locked")),
            ItemStateChange.objects.count(),
            StockMovement.objects.count(),
            Order.objects.count(),
            tuple(Order.objects.order_by("pk").values_list("pk", "status")),
            OrderLine.objects.count(),
            tuple(StockLock.objects.order_by("pk").values_list("pk", "status")),
        )

    def _refused(self, error: type[Exception], call) -> None:
        """The call raises `error` and writes nothing at all."""
        before = self._snapshot()
        with pytest.raises(error):
            call()
        assert self._snapshot() == before

    def _move(self, model: ItemModel, to_state: str) -> None:
        assert can_transition(model.state, to_state)
        model.state = to_state
        model.history += 1

    # --- setup ------------------------------------------------------------------------

    @initialize(
        quantities=st.lists(st.integers(min_value=0, max_value=5), min_size=ITEMS, max_size=ITEMS),
        # Mostly active, so orders get through often enough to sell items out.
        states=st.lists(
            st.sampled_from([ItemState.ACTIVE, ItemState.ACTIVE, ItemState.DRAFT]), min_size=ITEMS, max_size=ITEMS
        ),
    )
    def create_items(self, quantities, states):
        for n, (quantity, state) in enumerate(zip(quantities, states, strict=True)):
            item = make_item(self.account, n=n, quantity=quantity, state=state)
            self.items.append(ItemModel(pk=item.pk, state=state, on_hand=quantity, ledger_rows=1 if quantity else 0))

    # --- rules ------------------------------------------------------------------------

    @rule(index=item_index, to_state=any_state)
    def transition(self, index, to_state):
        model = self.items[index]
        call = lambda: item_transition(item_id=model.pk, to_state=to_state, actor=ACTOR, reason="test")  # noqa: E731
        if can_transition(model.state, to_state):
            item = call()
            self._move(model, to_state)
            assert item.state == to_state
        else:
            self._refused(TransitionNotAllowed, call)

    @rule(index=item_index, data=st.data())
    def transition_allowed(self, index, data):
        """A move the state machine allows (random targets are mostly refused)."""
        model = self.items[index]
        to_state = data.draw(st.sampled_from(allowed_targets(model.state)))
        self.transition(index, to_state)

    @rule(index=item_index)
    def put_back_on_sale(self, index):
        """Walk an item back to active by allowed moves only (keeps sales possible)."""
        path = {
            ItemState.DRAFT: [ItemState.ACTIVE],
            ItemState.SOLD: [ItemState.ACTIVE],
            ItemState.ARCHIVED: [ItemState.DRAFT, ItemState.ACTIVE],
            ItemState.SHIPPED: [ItemState.ARCHIVED, ItemState.DRAFT, ItemState.ACTIVE],
            ItemState.ACTIVE: [],
        }[self.items[index].state]
        for to_state in path:
            self.transition(index, to_state)

    @rule(indexes=st.lists(item_index, min_size=1, max_size=ITEMS + 1), to_state=any_state)
    def bulk_transition(self, indexes, to_state):
        ids = [self.items[i].pk for i in indexes]
        result = item_bulk_transition(
            account=self.account, item_ids=ids, to_state=to_state, actor=ACTOR, reason="bulk test"
        )
        expected_moved = []
        for i in dict.fromkeys(indexes):  # duplicates are moved once
            model = self.items[i]
            if can_transition(model.state, to_state):
                expected_moved.append(model.pk)
                self._move(model, to_state)
        assert [row["id"] for row in result.moved] == sorted(expected_moved)
        assert len(result.moved) + len(result.not_moved) == len(set(indexes))

    @rule(index=item_index, delta=st.integers(min_value=-6, max_value=6).filter(bool))
    def adjust(self, index, delta):
        model = self.items[index]
        call = lambda: stock_adjust(item_id=model.pk, actor=ACTOR, delta=delta, reason="count")  # noqa: E731
        if model.on_hand + delta < model.locked or model.on_hand + delta < 0:
            event("adjustment refused: below locked or zero")
            self._refused(InsufficientStock, call)
        else:
            item = call()
            model.on_hand += delta
            model.ledger_rows += 1
            assert (item.quantity_on_hand, item.quantity_locked) == (model.on_hand, model.locked)

    @rule(
        external_id=st.sampled_from(EXTERNAL_IDS),
        lines=st.lists(st.tuples(item_index, st.integers(min_value=1, max_value=4)), min_size=1, max_size=2),
    )
    def create_order(self, external_id, lines):
        specs = [LineSpec(self.items[i].pk, quantity) for i, quantity in lines]

        def call():
            return order_create(
                account=self.account,
                actor=ACTOR,
                channel="reverb",
                external_id=external_id,
                placed_at=timezone.now(),
                lines=specs,
            )

        if external_id in self.orders:
            # A replay: the first order stands, untouched, whatever the lines say now.
            event("order replayed")
            before = self._snapshot()
            order, created = call()
            assert created is False
            assert order.pk == self.orders[external_id].pk
            assert self._snapshot() == before
            return

        wanted: dict[int, int] = {}
        for i, quantity in lines:
            wanted[i] = wanted.get(i, 0) + quantity
        for i, quantity in wanted.items():  # the service checks items in this order
            model = self.items[i]
            if model.state != ItemState.ACTIVE:
                event("order refused: item not sellable")
                self._refused(ItemNotSellable, call)
                return
            if model.on_hand - model.locked < quantity:
                event("order refused: over-ordered")
                self._refused(InsufficientStock, call)
                return
        order, created = call()
        event(f"order created with {len(lines)} line(s)")
        assert created is True
        assert order.status == OrderStatus.OPEN
        for i, quantity in lines:
            self.items[i].locked += quantity
            self.items[i].ledger_rows += 1
        self._sold_out_moves_to_sold(wanted, "item sold out by reservation")
        self.orders[external_id] = OrderModel(pk=order.pk, status=OrderStatus.OPEN, lines=list(lines))

    def _sold_out_moves_to_sold(self, indexes, why: str) -> None:
        """The rule of every sale: an active item with nothing left to sell becomes sold."""
        for i in dict.fromkeys(indexes):
            model = self.items[i]
            if model.state == ItemState.ACTIVE and model.on_hand - model.locked <= 0:
                event(why)
                self._move(model, ItemState.SOLD)

    @rule(
        external_id=st.sampled_from(EXTERNAL_IDS),
        lines=st.lists(st.tuples(item_index, st.integers(min_value=1, max_value=2)), min_size=1, max_size=1),
    )
    def create_small_order(self, external_id, lines):
        """One or two units of one item: the common sale (weights order creation up)."""
        self.create_order(external_id, lines)

    @precondition(lambda self: self.orders)
    @rule(
        data=st.data(),
        lines=st.lists(st.tuples(item_index, st.integers(min_value=1, max_value=9)), min_size=1, max_size=2),
    )
    def replay_order(self, data, lines):
        """The channel reports an order again (webhook retry, overlapping pull), even with other lines."""
        self.create_order(data.draw(st.sampled_from(sorted(self.orders))), lines)

    @rule(index=item_index)
    def sell_out(self, index):
        """A buyer takes every available unit and the sale completes: the item must become sold."""
        model = self.items[index]
        available = model.on_hand - model.locked
        if model.state != ItemState.ACTIVE or available < 1:
            return
        external_id = f"S-{len(self.orders)}"
        self.create_order(external_id, [(index, available)])
        self._complete(external_id)
        assert model.state == ItemState.SOLD

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def complete_order(self, data):
        self._complete(data.draw(st.sampled_from(sorted(self.orders))))

    def _complete(self, external_id: str) -> None:
        order_model = self.orders[external_id]
        call = lambda: order_complete(order_id=order_model.pk, actor=ACTOR)  # noqa: E731
        if order_model.status == OrderStatus.CANCELLED:
            self._refused(OrderStateError, call)
            return
        if order_model.status == OrderStatus.COMPLETED:
            before = self._snapshot()
            assert call().status == OrderStatus.COMPLETED
            assert self._snapshot() == before
            return
        call()
        for i, quantity in order_model.lines:
            model = self.items[i]
            model.on_hand -= quantity
            model.locked -= quantity
            model.ledger_rows += 1
        self._sold_out_moves_to_sold([i for i, _ in order_model.lines], "item sold out at completion")
        order_model.status = OrderStatus.COMPLETED
        order_model.lock_status = LockStatus.COMMITTED

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel_order(self, data):
        order_model = self.orders[data.draw(st.sampled_from(sorted(self.orders)))]
        before = self._snapshot()
        order = order_cancel(order_id=order_model.pk, actor=ACTOR, reason="buyer changed their mind")
        assert order.status == OrderStatus.CANCELLED
        if order_model.status == OrderStatus.CANCELLED:
            assert self._snapshot() == before
            return
        for i, quantity in order_model.lines:
            model = self.items[i]
            if order_model.status == OrderStatus.OPEN:
                model.locked -= quantity  # the reservation is released
            else:
                model.on_hand += quantity  # the sold units come back
            model.ledger_rows += 1
        order_model.lock_status = LockStatus.RELEASED if order_model.status == OrderStatus.OPEN else LockStatus.RETURNED
        # A sold item that has units to sell again goes back on sale.
        for i in dict.fromkeys(i for i, _ in order_model.lines):
            model = self.items[i]
            if model.state == ItemState.SOLD and model.on_hand - model.locked > 0:
                event(f"sold item back to active by a cancelled {order_model.status} order")
                self._move(model, ItemState.ACTIVE)
        order_model.status = OrderStatus.CANCELLED

    # --- invariants (checked after every step; a few grouped queries keep it fast) -----

    @invariant()
    def stock_is_never_wrong(self):
        pks = [model.pk for model in self.items]
        items = {
            pk: (state, on_hand, locked)
            for pk, state, on_hand, locked in Item.objects.filter(pk__in=pks).values_list(
                "pk", "state", "quantity_on_hand", "quantity_locked"
            )
        }
        open_locks = dict(
            StockLock.objects.filter(item_id__in=pks, status=LockStatus.OPEN)
            .values("item_id")
            .annotate(s=Sum("quantity"))
            .values_list("item_id", "s")
        )
        ledger = {
            row["item_id"]: row
            for row in StockMovement.objects.filter(item_id__in=pks)
            .values("item_id")
            .annotate(on_hand=Sum("on_hand_delta"), locked=Sum("locked_delta"), rows=Count("id"))
        }
        for model in self.items:
            state, on_hand, locked = items[model.pk]
            assert state in ItemState.values
            assert (state, on_hand, locked) == (model.state, model.on_hand, model.locked)
            assert on_hand >= 0
            assert 0 <= locked <= on_hand
            assert locked == open_locks.get(model.pk, 0)
            row = ledger.get(model.pk, {"on_hand": 0, "locked": 0, "rows": 0})
            assert (row["on_hand"], row["locked"]) == (on_hand, locked)
            assert row["rows"] == model.ledger_rows
        assert stock_problems() == []

    @invariant()
    def orders_and_locks_are_recorded_once(self):
        orders = dict(Order.objects.values_list("pk", "status"))
        assert orders == {o.pk: o.status for o in self.orders.values()}
        assert OrderLine.objects.count() == sum(len(o.lines) for o in self.orders.values())
        locks: dict[int, list[str]] = {}
        for order_id, status in StockLock.objects.order_by("pk").values_list("order_line__order_id", "status"):
            locks.setdefault(order_id, []).append(status)
        assert locks == {o.pk: [o.lock_status] * len(o.lines) for o in self.orders.values()}

    @invariant()
    def history_is_complete_and_only_allowed_moves(self):
        history: dict[int, list[tuple[str, str]]] = {}
        for item_id, from_state, to_state in ItemStateChange.objects.order_by("id").values_list(
            "item_id", "from_state", "to_state"
        ):
            history.setdefault(item_id, []).append((from_state, to_state))
        assert set(history) == {model.pk for model in self.items}
        for model in self.items:
            rows = history[model.pk]
            assert len(rows) == model.history
            assert rows[0][0] == ""
            assert rows[0][1] in (ItemState.DRAFT, ItemState.ACTIVE)
            for (_, previous_to), (from_state, to_state) in pairwise(rows):
                assert from_state == previous_to
                assert can_transition(from_state, to_state), (from_state, to_state)
            assert rows[-1][1] == model.state


@pytest.mark.django_db
def test_random_inventory_operations_keep_stock_and_history_consistent(account):
    # Given an account, when random sequences of operations run, then every step's checks hold.
    run_state_machine_as_test(
        InventoryMachine,
        settings=settings(
            max_examples=20,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
            print_blob=True,
        ),
    )
