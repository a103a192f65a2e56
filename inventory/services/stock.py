"""Stock on hand and the ledger: every change is a ledger row, written under the item's row lock."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ..errors import InsufficientStock
from ..models import (
    Item,
    MovementKind,
    OrderLine,
    StockMovement,
)
from .actor import Actor
from .listings import listings_mark_changed

# --- Stock ----------------------------------------------------------------------------


def _write_movement(
    item: Item,
    actor: Actor,
    kind: str,
    *,
    on_hand_delta: int = 0,
    locked_delta: int = 0,
    order_line: OrderLine | None = None,
    reason: str = "",
) -> StockMovement:
    """Apply a stock change to a locked item and write its ledger row."""
    on_hand = item.quantity_on_hand + on_hand_delta
    locked = item.quantity_locked + locked_delta
    if on_hand < 0 or locked < 0 or locked > on_hand:
        raise InsufficientStock(
            f"{item.sku}: this change would leave {on_hand} on hand with {locked} reserved by open orders. "
            "Stock can never go below what open orders have reserved.",
            sku=item.sku,
            on_hand=item.quantity_on_hand,
            locked=item.quantity_locked,
        )
    if item.pk is not None and (on_hand_delta or locked_delta):
        Item.objects.filter(pk=item.pk).update(
            quantity_on_hand=on_hand, quantity_locked=locked, updated_at=timezone.now()
        )
    item.quantity_on_hand, item.quantity_locked = on_hand, locked
    return StockMovement.objects.create(
        account_id=item.account_id,
        item=item,
        kind=kind,
        on_hand_delta=on_hand_delta,
        locked_delta=locked_delta,
        on_hand_after=on_hand,
        locked_after=locked,
        order_line=order_line,
        user_id=actor.user_id,
        source=actor.source,
        reason=reason[:500],
    )


def _set_on_hand(item: Item, quantity: int, actor: Actor, reason: str) -> None:
    delta = quantity - item.quantity_on_hand
    if delta:
        kind = MovementKind.RECEIVED if delta > 0 else MovementKind.ADJUSTED
        _write_movement(item, actor, kind, on_hand_delta=delta, reason=reason)


def stock_adjust(*, item_id: int, actor: Actor, delta: int, reason: str) -> Item:
    """Receive (delta > 0) or write off (delta < 0) units of an item, with a ledger row."""
    if delta == 0:
        raise ValidationError({"delta": "Give a non-zero number of units to add or remove."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the stock changes (e.g. 'received from supplier', 'damaged')."})
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item_id)
        kind = MovementKind.RECEIVED if delta > 0 else MovementKind.ADJUSTED
        _write_movement(item, actor, kind, on_hand_delta=delta, reason=reason)
        listings_mark_changed([item.pk])
    return item
