"""Sales reported by channels: first sale wins, a double sale is caught, nothing is lost.

`sale_record` is what a webhook or a pull calls for each order a channel reports. It
records the order once (unique per connection and order number), and in one transaction
with the items row-locked: reserves or commits stock, marks items with nothing left sold
and ends their other listings. When the last unit was already taken by another order, the
order with the earlier channel timestamp wins (then the lower connection priority), and
the other is kept beside it in a Conflict with an alert for staff.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.utils import timezone

from ..channels import END_SOLD_HERE, ORDER_CANCELLED, ORDER_PAID, OrderSeen
from ..models import (
    AlertKind,
    ChannelConnection,
    ChannelListing,
    Conflict,
    DesiredState,
    Item,
    ListingState,
    LockStatus,
    MovementKind,
    Order,
    OrderLine,
    OrderStatus,
    StockLock,
)
from ..states import ItemState
from .actor import Actor
from .alerts import alert_raise
from .orders import (
    LineSpec,
    _lock_items,
    _order_new,
    _reserve,
    _sell,
    order_cancel,
    order_complete,
    order_find,
)
from .prepared import Prepared
from .stock import _write_movement, ever_multi_quantity

log = logging.getLogger(__name__)


@dataclass
class SaleOutcome:
    order: Order
    created: bool
    conflict: Conflict | None = None
    note: str = ""


def _details(seen: OrderSeen) -> dict:
    details = {name: getattr(seen, name) for name in (*Order.BUYER_AND_SHIPPING_FIELDS, "currency")}
    for name in ("subtotal", "shipping", "tax", "total"):
        value = getattr(seen, name)
        if value is not None:
            details[name] = value
    details["channel_updated_at"] = seen.updated_at
    details["buyer_email"] = details["buyer_email"] or ""
    details["ship_country"] = (details["ship_country"] or "")[:2]
    return details


# A sale's lines matched to items (prepared: see prepared.py).
_ITEM_OF_LISTING = Prepared(
    lambda connection_id, external_id: (
        ChannelListing.objects.filter(connection_id=connection_id, external_id=external_id)
        .order_by("pk")
        .values_list("item_id", flat=True)[:1]
    ),
    connection_id=int,
    external_id=str,
)
_ITEM_OF_SKU = Prepared(
    lambda account_id, sku: (
        Item.objects.filter(account_id=account_id, sku=sku).order_by("pk").values_list("pk", flat=True)[:1]
    ),
    account_id=int,
    sku=str,
)


# The usual webhook sale, one guitar whose listing on the channel is known: its item found by that
# listing and row-locked in one statement, with what the lock answers for _sell (orders._ITEM_LOCKED).
_ITEM_OF_LISTING_LOCKED = Prepared(
    lambda account_id, connection_id, external_id: (
        Item.objects.select_for_update()
        .filter(
            account_id=account_id,
            pk=Subquery(
                ChannelListing.objects.filter(connection_id=connection_id, external_id=external_id)
                .order_by("pk")
                .values("item_id")[:1]
            ),
        )
        .annotate(multi_quantity=ever_multi_quantity())
    ),
    account_id=int,
    connection_id=int,
    external_id=str,
)


def _lock_order_items(
    connection: ChannelConnection, seen: OrderSeen
) -> tuple[list[LineSpec], list[str], dict[int, Item] | None]:
    """The order's lines matched to items and those items row-locked (inside the sale's
    transaction): (lines, what matched nothing, the locked items or None when a line matched
    nothing). One line matched by its listing is found and locked in one statement; anything
    else (several lines, a SKU match, a listing we do not know) goes the long way."""
    if len(seen.lines) == 1 and seen.lines[0].external_listing_id and seen.lines[0].quantity >= 1:
        line = seen.lines[0]
        found = _ITEM_OF_LISTING_LOCKED.all(
            account_id=connection.account_id, connection_id=connection.pk, external_id=str(line.external_listing_id)
        )
        if found:
            [item] = found
            return [LineSpec(item_id=item.pk, quantity=line.quantity, unit_price=line.unit_price)], [], {item.pk: item}
    specs, unknown = _resolve_lines(connection, seen)
    if unknown or not specs:
        return specs, unknown, None
    return specs, unknown, _lock_items(connection.account, specs)


def _resolve_lines(connection: ChannelConnection, seen: OrderSeen) -> tuple[list[LineSpec], list[str]]:
    """Match the channel's lines to items: by the listing's id on that channel, else by SKU."""
    specs, unknown = [], []
    for line in seen.lines:
        item_id = None
        if line.external_listing_id:
            item_id = _ITEM_OF_LISTING.first(connection_id=connection.pk, external_id=str(line.external_listing_id))
        if item_id is None and line.sku:
            item_id = _ITEM_OF_SKU.first(account_id=connection.account_id, sku=str(line.sku))
        if item_id is None:
            unknown.append(line.sku or line.external_listing_id)
        else:
            specs.append(LineSpec(item_id=item_id, quantity=line.quantity, unit_price=line.unit_price))
    return specs, unknown


def sale_record(*, connection: ChannelConnection, seen: OrderSeen, actor: Actor | None = None) -> SaleOutcome:
    """Record an order a channel reported (new, or a status change of a known one)."""
    actor = actor or Actor(source=connection.channel)
    existing = order_find(
        account=connection.account, channel=connection.channel, external_id=seen.external_id, connection=connection
    )
    if existing is not None:
        return _status_changed(existing, seen, actor)

    def new(**status_and_totals) -> Order:
        details = {**_details(seen), **status_and_totals}
        return _order_new(connection.account, connection.channel, seen.external_id, seen.placed_at, details, connection)

    def insert(**status_and_totals) -> Order:
        order = new(**status_and_totals)
        order.save(force_insert=True)
        return order

    try:
        with transaction.atomic():
            # The items are row-locked before the order is inserted: a second delivery of the same
            # order waits here, then fails on the order's unique constraint (below) before writing.
            specs, unknown, items = _lock_order_items(connection, seen)
            if items is None:
                return _unmatched(insert(), connection, unknown)
            if seen.status == ORDER_CANCELLED:
                order = insert(status=OrderStatus.CANCELLED)
                _add_lines(order, items, specs)
                return SaleOutcome(order, True, note="cancelled before it was seen: nothing reserved")
            short = _short_items(items, specs)
            if not short:
                # Recorded once: a paid order is inserted completed, its stock taken in one pass.
                paid = seen.status == ORDER_PAID
                # The order is written with its lines (_sell).
                order = new(status=OrderStatus.COMPLETED if paid else OrderStatus.OPEN, **_totals(seen, items, specs))
                _sell(order, items, specs, actor, paid=paid)
                return SaleOutcome(order, True, note="sold" if paid else "reserved")
            return _double_sale(insert(), connection, items, specs, short, seen, actor)
    except IntegrityError:
        existing = order_find(
            account=connection.account, channel=connection.channel, external_id=seen.external_id, connection=connection
        )
        if existing is None:
            raise
        return SaleOutcome(existing, False, note="recorded by a concurrent delivery")


def _status_changed(order: Order, seen: OrderSeen, actor: Actor) -> SaleOutcome:
    if seen.updated_at and order.channel_updated_at and seen.updated_at < order.channel_updated_at:
        return SaleOutcome(order, False, note="older news than what we have: ignored")
    if seen.status == ORDER_PAID and order.status == OrderStatus.OPEN:
        order = order_complete(order_id=order.pk, actor=actor)
        note = "paid: stock committed"
    elif seen.status == ORDER_CANCELLED and order.status != OrderStatus.CANCELLED:
        order = order_cancel(order_id=order.pk, actor=actor, reason=f"cancelled on {order.connection or order.channel}")
        note = "cancelled: stock released"
    else:
        note = "no change"
    if seen.updated_at:
        Order.objects.filter(pk=order.pk).update(channel_updated_at=seen.updated_at)
    return SaleOutcome(order, False, note=note)


def _totals(seen: OrderSeen, items: dict[int, Item], specs: Sequence[LineSpec]) -> dict:
    """The order's subtotal and total when the channel did not say (as _reserve computes them)."""
    if seen.subtotal:
        return {}
    subtotal = sum(
        ((items[s.item_id].price if s.unit_price is None else s.unit_price) * s.quantity for s in specs), Decimal("0")
    )
    shipping, tax = seen.shipping or Decimal("0"), seen.tax or Decimal("0")
    return {"subtotal": subtotal, "total": subtotal + shipping + tax}


def _add_lines(order: Order, items: dict[int, Item], specs: Sequence[LineSpec]) -> None:
    for spec in specs:
        item = items[spec.item_id]
        OrderLine.objects.create(
            order=order,
            item=item,
            quantity=spec.quantity,
            unit_price=item.price if spec.unit_price is None else spec.unit_price,
            sku=item.sku,
            title=item.title,
        )


def _short_items(items: dict[int, Item], specs: Sequence[LineSpec]) -> list[Item]:
    """Items this order cannot have: not for sale, or fewer units available than ordered."""
    wanted: dict[int, int] = {}
    for spec in specs:
        wanted[spec.item_id] = wanted.get(spec.item_id, 0) + spec.quantity
    return [
        items[item_id]
        for item_id, quantity in wanted.items()
        if items[item_id].state != ItemState.ACTIVE or items[item_id].quantity_available < quantity
    ]


def _unmatched(order: Order, connection: ChannelConnection, unknown: list[str]) -> SaleOutcome:
    order.note = f"Lines not matched to any item: {', '.join(unknown) or 'no lines'}."
    order.save(update_fields=["note"])
    alert_raise(
        account_id=order.account_id,
        kind=AlertKind.REVIEW,
        dedupe_key=f"unmatched-order:{order.pk}",
        title=f"Order {order} on {connection.name} is for items this system does not know",
        message=order.note + " Link or import the listing, then settle the order by hand.",
    )
    return SaleOutcome(order, True, note="unmatched lines: kept for staff")


def _holder(item: Item, exclude_order: Order) -> StockLock | None:
    """The lock of the sale that took this item's last unit (the current winner)."""
    return (
        StockLock.objects.filter(item=item, status__in=[LockStatus.OPEN, LockStatus.COMMITTED])
        .exclude(order_line__order=exclude_order)
        .select_related("order_line__order__connection")
        .order_by("-order_line__order__placed_at", "-pk")
        .first()
    )


def _wins_over(new: Order, new_connection: ChannelConnection, old: Order) -> bool:
    if new.placed_at != old.placed_at:
        return new.placed_at < old.placed_at
    old_priority = old.connection.priority if old.connection else 0
    return (new_connection.priority, new.pk) < (old_priority, old.pk)


def _double_sale(order, connection, items, specs, short, seen, actor) -> SaleOutcome:
    """The last unit is gone. Keep both orders; the earlier channel timestamp wins."""
    item = short[0]
    holder = _holder(item, order)
    swap = (
        holder is not None
        and len(specs) == 1
        and holder.quantity >= specs[0].quantity
        and _wins_over(order, connection, holder.order_line.order)
    )
    if swap:
        previous = holder.order_line.order
        note = f"{order} was placed before {previous}: it wins the last unit"
        if holder.status == LockStatus.OPEN:
            _write_movement(
                item,
                actor,
                MovementKind.RELEASED,
                locked_delta=-holder.quantity,
                order_line=holder.order_line,
                reason=note,
            )
            holder.status = LockStatus.RELEASED
        else:
            _write_movement(
                item,
                actor,
                MovementKind.RETURNED,
                on_hand_delta=holder.quantity,
                order_line=holder.order_line,
                reason=note,
            )
            holder.status = LockStatus.RETURNED
        holder.closed_at = holder.closed_at or timezone.now()
        holder.save(update_fields=["status", "closed_at"])
        item.state = ItemState.ACTIVE  # in memory only: the item stays sold, now to this order
        _reserve(order, items, specs, actor)
        if seen.status == ORDER_PAID:
            for lock in StockLock.objects.filter(order_line__order=order, status=LockStatus.OPEN).select_related(
                "order_line"
            ):
                _write_movement(
                    item,
                    actor,
                    MovementKind.COMMITTED,
                    on_hand_delta=-lock.quantity,
                    locked_delta=-lock.quantity,
                    order_line=lock.order_line,
                    reason=f"order {order}",
                )
                lock.status, lock.closed_at = LockStatus.COMMITTED, timezone.now()
                lock.save(update_fields=["status", "closed_at"])
            order.status = OrderStatus.COMPLETED
            order.save(update_fields=["status"])
        item.state = ItemState.SOLD
        Item.objects.filter(pk=item.pk).update(
            sold_on=connection, sold_at=order.placed_at, sold_recorded_at=timezone.now()
        )
        # This channel sold it, so it has taken the listing off sale itself.
        ChannelListing.objects.filter(item=item, connection=connection).update(
            desired_state=DesiredState.ENDED,
            end_reason=END_SOLD_HERE,
            actual_state=ListingState.SOLD,
            ended_at=timezone.now(),
        )
        winner, loser = order, previous
    else:
        _add_lines(order, items, specs)
        winner = holder.order_line.order if holder is not None else None
        loser = order
        if seen.status == ORDER_PAID:
            order.status = OrderStatus.COMPLETED
            order.save(update_fields=["status"])
    if winner is None:
        # Nothing holds the stock (e.g. the item was archived or marked sold by hand): staff decide.
        alert_raise(
            account_id=order.account_id,
            kind=AlertKind.CONFLICT,
            dedupe_key=f"unsellable-sale:{order.pk}",
            title=f"{item.sku} sold on {connection.name} but it is {item.state} here",
            message=f"Order {order} could not take stock: {item.sku} has {item.quantity_available} available.",
            item=item,
        )
        return SaleOutcome(order, True, note="sold while not sellable here: kept for staff")
    conflict = Conflict.objects.create(account_id=order.account_id, item=item, winning_order=winner, losing_order=loser)
    alert_raise(
        account_id=order.account_id,
        kind=AlertKind.CONFLICT,
        dedupe_key=f"conflict:{conflict.pk}",
        title=f"Double sale of {item.sku}: {winner} and {loser}",
        message=(
            f"{winner} ({winner.placed_at:%Y-%m-%d %H:%M:%S} UTC) was first and keeps the item. "
            f"{loser} ({loser.placed_at:%Y-%m-%d %H:%M:%S} UTC) must be cancelled and refunded on its channel."
        ),
        item=item,
        conflict=conflict,
    )
    log.warning("double sale of %s: winner %s, loser %s", item.sku, winner, loser)
    return SaleOutcome(order, True, conflict=conflict, note="double sale: conflict opened")
