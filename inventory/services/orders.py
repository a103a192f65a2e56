"""Orders: recorded once, reserving stock on creation, committing or releasing it after."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account

from ..errors import InsufficientStock, ItemNotSellable, OrderStateError
from ..models import (
    Item,
    LockStatus,
    MovementKind,
    Order,
    OrderLine,
    OrderStatus,
    StockLock,
)
from ..states import ItemState
from .actor import Actor
from .items import _apply_transition
from .stock import _write_movement

# --- Orders ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LineSpec:
    item_id: int
    quantity: int
    unit_price: Decimal | None = None


def order_create(
    *,
    account: Account,
    actor: Actor,
    channel: str,
    external_id: str,
    placed_at: datetime,
    lines: Sequence[LineSpec],
    details: Mapping[str, object] | None = None,
) -> tuple[Order, bool]:
    """Record an order once and reserve (lock) its stock. Returns (order, created).

    Recording the same channel order again returns the first one untouched, so replays
    of a webhook or a pull are harmless. Raises ItemNotSellable / InsufficientStock
    (nothing written) when an item is not active or has too few units available.
    """
    if not lines:
        raise ValidationError({"lines": "An order needs at least one line."})
    existing = Order.objects.filter(account=account, channel=channel, external_id=external_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            order = Order(
                account=account, channel=channel, external_id=external_id, placed_at=placed_at, **(details or {})
            )
            order.full_clean(validate_unique=False)
            order.save(force_insert=True)
            quantities: dict[int, int] = {}
            for spec in lines:
                if spec.quantity < 1:
                    raise ValidationError({"lines": "Each line needs a quantity of at least 1."})
                quantities[spec.item_id] = quantities.get(spec.item_id, 0) + spec.quantity
            items = {
                item.pk: item
                for item in Item.objects.select_for_update().filter(account=account, pk__in=quantities).order_by("pk")
            }
            missing = set(quantities) - set(items)
            if missing:
                raise ValidationError({"lines": f"No item with id {sorted(missing)} in this account."})
            for item_id, wanted in quantities.items():
                item = items[item_id]
                if item.state != ItemState.ACTIVE:
                    raise ItemNotSellable(
                        f"{item.sku} is {item.state}; only active items can be sold.", sku=item.sku, state=item.state
                    )
                if item.quantity_available < wanted:
                    raise InsufficientStock(
                        f"{item.sku}: {wanted} ordered but only {item.quantity_available} available.",
                        sku=item.sku,
                        available=item.quantity_available,
                        ordered=wanted,
                    )
            subtotal = Decimal("0")
            for spec in lines:
                item = items[spec.item_id]
                price = item.price if spec.unit_price is None else spec.unit_price
                line = OrderLine.objects.create(
                    order=order, item=item, quantity=spec.quantity, unit_price=price, sku=item.sku, title=item.title
                )
                subtotal += price * spec.quantity
                StockLock.objects.create(account=account, order_line=line, item=item, quantity=spec.quantity)
                _write_movement(
                    item,
                    actor,
                    MovementKind.LOCKED,
                    locked_delta=spec.quantity,
                    order_line=line,
                    reason=f"order {order}",
                )
            if not order.subtotal:
                order.subtotal = subtotal
                order.total = subtotal + order.shipping + order.tax
                order.save(update_fields=["subtotal", "total"])
            return order, True
    except IntegrityError:
        # Another process recorded the same order at the same moment: theirs stands.
        existing = Order.objects.filter(account=account, channel=channel, external_id=external_id).first()
        if existing is None:
            raise
        return existing, False


def order_complete(*, order_id: int, actor: Actor) -> Order:
    """The sale went through: commit the locked stock, and mark items with nothing left sold.

    Completing a completed order changes nothing.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.COMPLETED:
            return order
        if order.status == OrderStatus.CANCELLED:
            raise OrderStateError(f"Order {order} was cancelled and cannot be completed.")
        locks = _open_locks(order)
        now = timezone.now()
        sold_out = []
        for lock in locks:
            item = lock.item
            _write_movement(
                item,
                actor,
                MovementKind.COMMITTED,
                on_hand_delta=-lock.quantity,
                locked_delta=-lock.quantity,
                order_line=lock.order_line,
                reason=f"order {order}",
            )
            lock.status, lock.closed_at = LockStatus.COMMITTED, now
            lock.save(update_fields=["status", "closed_at"])
            if item.quantity_on_hand == 0 and item.state == ItemState.ACTIVE:
                sold_out.append(item)
        _apply_transition(sold_out, ItemState.SOLD, actor, f"sold: order {order}")
        order.status = OrderStatus.COMPLETED
        order.save(update_fields=["status", "updated_at"])
    return order


def order_cancel(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Cancel an order: release its reserved stock, or return sold units to stock.

    A sold item whose sale is cancelled goes back to active. Cancelling twice changes nothing.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.CANCELLED:
            return order
        now = timezone.now()
        note = f"order {order} cancelled" + (f": {reason}" if reason else "")
        if order.status == OrderStatus.OPEN:
            for lock in _open_locks(order):
                _write_movement(
                    lock.item,
                    actor,
                    MovementKind.RELEASED,
                    locked_delta=-lock.quantity,
                    order_line=lock.order_line,
                    reason=note,
                )
                lock.status, lock.closed_at = LockStatus.RELEASED, now
                lock.save(update_fields=["status", "closed_at"])
        else:
            lines = list(order.lines.order_by("item_id"))
            items = {
                i.pk: i
                for i in Item.objects.select_for_update().filter(pk__in=[line.item_id for line in lines]).order_by("pk")
            }
            back_on_sale = []
            for line in lines:
                item = items[line.item_id]
                _write_movement(
                    item, actor, MovementKind.RETURNED, on_hand_delta=line.quantity, order_line=line, reason=note
                )
                if item.state == ItemState.SOLD and item not in back_on_sale:
                    back_on_sale.append(item)
            _apply_transition(back_on_sale, ItemState.ACTIVE, actor, note)
        order.status = OrderStatus.CANCELLED
        order.save(update_fields=["status", "updated_at"])
    return order


def _open_locks(order: Order) -> list[StockLock]:
    """The order's open locks with their items row-locked, in item primary-key order."""
    locks = list(
        StockLock.objects.filter(order_line__order=order, status=LockStatus.OPEN)
        .select_related("order_line")
        .order_by("item_id", "pk")
    )
    items = {
        i.pk: i for i in Item.objects.select_for_update().filter(pk__in={lock.item_id for lock in locks}).order_by("pk")
    }
    for lock in locks:
        lock.item = items[lock.item_id]
    return locks
