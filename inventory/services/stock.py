"""Stock on hand and the ledger: every change is a ledger row, written under the item's row lock."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..errors import InsufficientStock
from ..models import (
    AlertKind,
    Item,
    MovementKind,
    OrderLine,
    StockMovement,
)
from ..states import ItemState
from .actor import Actor
from .alerts import alert_raise, alerts_resolve_cause
from .listings import listings_mark_changed
from .prepared import Prepared

# --- Stock ----------------------------------------------------------------------------


def _movement(
    item: Item,
    actor: Actor,
    kind: str,
    on_hand_delta: int = 0,
    locked_delta: int = 0,
    *,
    order_line: OrderLine | None = None,
    reason: str = "",
) -> StockMovement:
    """A ledger row for a stock change of a locked item, unsaved; the item's quantities change in
    memory only (the caller writes the item and the rows, e.g. in one statement each)."""
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
    item.quantity_on_hand, item.quantity_locked = on_hand, locked
    return StockMovement(
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
    if item.pk is not None:
        item_id = item.pk
        transaction.on_commit(lambda: stock_alerts_check(item_id))
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


def ever_multi_quantity() -> Exists:
    """The ledger's answer to "did this item ever have more than one unit on hand", as an
    annotation: only such an item has low- and out-of-stock alerts (stock_alerts_check)."""
    return Exists(StockMovement.objects.filter(item_id=OuterRef("pk"), on_hand_after__gt=1))


def stock_alerts_possible(item: Item, on_hand_before: int) -> bool:
    """Whether a change that left `item` as it is could raise or resolve a stock alert. Not for
    an item that never had more than one unit (its `multi_quantity`, when it was read with
    ever_multi_quantity; unknown counts as possible) and had at most one before the change:
    it never had a stock alert and does not get one, so the check would only read it."""
    return on_hand_before > 1 or item.quantity_on_hand > 1 or getattr(item, "multi_quantity", True)


# The item with its account and the ledger's answer to "did it ever have more than one unit",
# in one query (prepared, see prepared.py).
_ITEM_WITH_MULTI_QUANTITY = Prepared(
    lambda item_id: (
        Item.objects.select_related("account").annotate(multi_quantity=ever_multi_quantity()).filter(pk=item_id)[:1]
    ),
    item_id=int,
)


def stock_alerts_check(item_id: int) -> str:
    """Raise or resolve the low-stock and out-of-stock alerts of a multi-quantity item.

    Multi-quantity means it ever had more than one unit on hand (its ledger says so): a
    one-of-a-kind guitar selling is a sale, not a stock problem. Returns what it decided.
    """
    item = _ITEM_WITH_MULTI_QUANTITY.first(item_id=item_id)
    if item is None:
        return "gone"
    threshold = item.low_stock_threshold if item.low_stock_threshold is not None else item.account.low_stock_threshold
    available = item.quantity_on_hand - item.quantity_locked
    low_key, out_key = f"low-stock:{item.pk}", f"out-of-stock:{item.pk}"
    # A multi-quantity item that sells its last unit moves to sold: that is out of stock too.
    stocked = item.state in (ItemState.ACTIVE, ItemState.SOLD)
    if not stocked or available > threshold:
        alerts_resolve_cause(
            account_id=item.account_id,
            dedupe_key__in=[low_key, out_key],
            resolution=f"{available} available now." if stocked else f"The item is {item.state}.",
        )
        return "fine"
    if not item.multi_quantity:
        return "one of a kind"
    if available <= 0:
        alerts_resolve_cause(account_id=item.account_id, dedupe_key=low_key, resolution="Now out of stock.")
        alert_raise(
            account_id=item.account_id,
            kind=AlertKind.OUT_OF_STOCK,
            dedupe_key=out_key,
            title=f"{item.sku} is out of stock",
            message=f"{item.title}: nothing left to sell. Receive more units to list it again.",
            item=item,
        )
        return "out"
    alerts_resolve_cause(account_id=item.account_id, dedupe_key=out_key, resolution=f"{available} available now.")
    alert_raise(
        account_id=item.account_id,
        kind=AlertKind.LOW_STOCK,
        dedupe_key=low_key,
        title=f"{item.sku} is running low: {available} left",
        message=f"{item.title}: {available} available to sell (alert at {threshold} or fewer).",
        item=item,
    )
    return "low"


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
