"""Orders: recorded once, reserving stock when created, committing or releasing it after.

The rule every path shares: when an item has nothing left to sell (all units sold or
reserved), it moves to `sold` and its listings on every other channel are ended; when a
sale is undone and units come back, it returns to `active` and is listed again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import Account
from config.database import planned_cursor

from ..channels import END_SOLD_ELSEWHERE, END_SOLD_HERE, channel_name_of
from ..errors import InsufficientStock, ItemNotSellable, OrderStateError
from ..models import (
    ChannelConnection,
    ChannelListing,
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
from .items import _apply_transition, _history_rows
from .listings import _enqueue_on_channels, listings_mark_changed
from .prepared import Prepared, update_by_pk
from .returning import (
    insert_rows,
    insert_statement,
    insert_values,
    insert_with_children,
    positional,
    rides_offered,
    rides_taken,
    update_by_pk_statement,
    update_returning,
    with_ctes,
)
from .stock import _movement, _write_movement, ever_multi_quantity, stock_alerts_check, stock_alerts_possible


@dataclass(frozen=True)
class LineSpec:
    item_id: int
    quantity: int
    unit_price: Decimal | None = None


# Looked for on every order a channel reports (prepared: see prepared.py).
_ORDER_OF_CONNECTION = Prepared(
    lambda connection_id, external_id: Order.objects.filter(
        connection_id=connection_id, external_id=external_id
    ).order_by("pk")[:1],
    connection_id=int,
    external_id=str,
)


def order_find(*, account: Account, channel: str, external_id: str, connection: ChannelConnection | None = None):
    if connection is not None:
        return _ORDER_OF_CONNECTION.first(connection_id=connection.pk, external_id=external_id)
    return Order.objects.filter(
        account=account, channel=channel, external_id=external_id, connection__isnull=True
    ).first()


def order_create(
    *,
    account: Account,
    actor: Actor,
    channel: str,
    external_id: str,
    placed_at: datetime,
    lines: Sequence[LineSpec],
    details: Mapping[str, object] | None = None,
    connection: ChannelConnection | None = None,
) -> tuple[Order, bool]:
    """Record an order once and reserve (lock) its stock. Returns (order, created).

    Recording the same order again returns the first one untouched, so replays of a
    webhook or a pull are harmless. Raises ItemNotSellable / InsufficientStock (nothing
    written) when an item is not active or has too few units available.
    """
    if not lines:
        raise ValidationError({"lines": "An order needs at least one line."})
    existing = order_find(account=account, channel=channel, external_id=external_id, connection=connection)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            order = _order_insert(account, channel, external_id, placed_at, details, connection)
            items = _lock_items(account, lines)
            _check_sellable(items, lines)
            _reserve(order, items, lines, actor)
            _after_sale(order, items.values(), actor)
            return order, True
    except IntegrityError:
        # Another process recorded the same order at the same moment: theirs stands.
        existing = order_find(account=account, channel=channel, external_id=external_id, connection=connection)
        if existing is None:
            raise
        return existing, False


def _order_insert(account, channel, external_id, placed_at, details, connection) -> Order:
    order = _order_new(account, channel, external_id, placed_at, details, connection)
    order.save(force_insert=True)
    return order


def _order_new(account, channel, external_id, placed_at, details, connection) -> Order:
    """The order, validated and not yet saved."""
    order = Order(
        account=account,
        channel=channel,
        external_id=external_id,
        placed_at=placed_at,
        connection=connection,
        **(details or {}),
    )
    # The account and connection are rows the caller holds: checking they exist is a query each.
    order.full_clean(exclude=["account", "connection"], validate_unique=False, validate_constraints=False)
    return order


# An order's one item, locked, with whether it ever had more than one unit (so a one-of-a-kind
# sale needs no stock-alert check after it; prepared: see prepared.py).
_ITEM_LOCKED = Prepared(
    lambda account_id, item_id: (
        Item.objects.select_for_update()
        .filter(account_id=account_id, pk=item_id)
        .annotate(multi_quantity=ever_multi_quantity())
    ),
    account_id=int,
    item_id=int,
)


def _lock_items(account: Account, lines: Sequence[LineSpec]) -> dict[int, Item]:
    wanted = {spec.item_id for spec in lines}
    for spec in lines:
        if spec.quantity < 1:
            raise ValidationError({"lines": "Each line needs a quantity of at least 1."})
    if len(wanted) == 1 and isinstance(next(iter(wanted)), int):  # most orders: one guitar
        found = _ITEM_LOCKED.all(account_id=account.pk, item_id=next(iter(wanted)))
    else:
        found = Item.objects.select_for_update().filter(account=account, pk__in=wanted).order_by("pk")
    items = {item.pk: item for item in found}
    missing = wanted - set(items)
    if missing:
        raise ValidationError({"lines": f"No item with id {sorted(missing)} in this account."})
    return items


def _check_sellable(items: Mapping[int, Item], lines: Sequence[LineSpec]) -> None:
    quantities: dict[int, int] = {}
    for spec in lines:
        quantities[spec.item_id] = quantities.get(spec.item_id, 0) + spec.quantity
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


def _reserve(order: Order, items: Mapping[int, Item], lines: Sequence[LineSpec], actor: Actor) -> None:
    subtotal = Decimal("0")
    for spec in lines:
        item = items[spec.item_id]
        price = item.price if spec.unit_price is None else spec.unit_price
        line = OrderLine.objects.create(
            order=order, item=item, quantity=spec.quantity, unit_price=price, sku=item.sku, title=item.title
        )
        subtotal += price * spec.quantity
        StockLock.objects.create(account_id=order.account_id, order_line=line, item=item, quantity=spec.quantity)
        _write_movement(
            item, actor, MovementKind.LOCKED, locked_delta=spec.quantity, order_line=line, reason=f"order {order}"
        )
    if not order.subtotal:
        order.subtotal = subtotal
        order.total = subtotal + order.shipping + order.tax
        order.save(update_fields=["subtotal", "total"])


def _sell(order: Order, items: Mapping[int, Item], lines: Sequence[LineSpec], actor: Actor, *, paid: bool) -> None:
    """Record a sale that has the stock (checked by the caller, items row-locked) in one pass.
    `order` is new and not yet saved: it is written with its lines.

    The same rows as reserving and then committing: one line and one lock per spec, a
    `locked` ledger row and, when paid, a `committed` one; but the order and its lines are one
    statement, each other kind of row is written in one statement, the lock is written as
    committed, and each item's quantities, state and sale are one UPDATE. The order row
    carries its status and totals already. When the sale ends the item's listings (one of a
    kind, on PostgreSQL), the locks, ledger, history and items ride with the listings' UPDATE
    as data-modifying CTEs: the whole sale is then three statements in its transaction.
    """
    now = timezone.now()
    on_hand_before = {item_id: item.quantity_on_hand for item_id, item in items.items()}
    order_lines = [
        OrderLine(
            item=items[spec.item_id],
            quantity=spec.quantity,
            unit_price=items[spec.item_id].price if spec.unit_price is None else spec.unit_price,
            sku=items[spec.item_id].sku,
            title=items[spec.item_id].title,
        )
        for spec in lines
    ]
    insert_with_children(order, order_lines, fk="order")
    locks = [
        StockLock(
            account_id=order.account_id,
            order_line=line,
            item_id=line.item_id,
            quantity=line.quantity,
            status=LockStatus.COMMITTED if paid else LockStatus.OPEN,
            closed_at=now if paid else None,
        )
        for line in order_lines
    ]
    movements = []
    for line in order_lines:
        item = items[line.item_id]
        steps = [(MovementKind.LOCKED, 0, line.quantity)]
        if paid:
            steps.append((MovementKind.COMMITTED, -line.quantity, -line.quantity))
        for kind, on_hand_delta, locked_delta in steps:
            movements.append(
                _movement(item, actor, kind, on_hand_delta, locked_delta, order_line=line, reason=f"order {order}")
            )
    sold_out = [item for item in items.values() if item.state == ItemState.ACTIVE and item.quantity_available <= 0]
    history = _history_rows(sold_out, ItemState.SOLD, actor, f"sold: order {order}")
    item_changes = {}
    for item in items.values():
        changes = {"quantity_on_hand": item.quantity_on_hand, "quantity_locked": item.quantity_locked}
        if item in sold_out:
            changes.update(state=ItemState.SOLD, state_changed_at=now, sold_on_id=order.connection_id)
            changes.update(sold_at=order.placed_at, sold_recorded_at=now)
        item_changes[item.pk] = {**changes, "updated_at": now}
        for name, value in changes.items():
            setattr(item, name, value)
        if stock_alerts_possible(item, on_hand_before[item.pk]):
            item_id = item.pk
            transaction.on_commit(lambda item_id=item_id: stock_alerts_check(item_id))
    new_rows = [rows for rows in (locks, movements, history) if rows]
    if sold_out and _end_carries_writes(order.connection_id):
        carried = [(insert_statement(type(rows[0]), len(rows)), insert_values(rows)) for rows in new_rows]
        carried += [update_by_pk_statement(Item, pk, changes) for pk, changes in item_changes.items()]
        _end_listings_for_sale([i.pk for i in sold_out], order.connection_id, order.account_id, carrying=carried)
    else:
        for rows in new_rows:
            insert_rows(rows)
        for pk, changes in item_changes.items():
            update_by_pk(Item, pk, **changes)
        if sold_out:
            _end_listings_for_sale([i.pk for i in sold_out], order.connection_id, order.account_id)
    still_selling = [item.pk for item in items.values() if item.quantity_available > 0]
    if still_selling:
        listings_mark_changed(still_selling)


def _after_sale(order: Order, items, actor: Actor) -> None:
    """Items with nothing left to sell move to sold and come off every other channel;
    multi-quantity items with units left get their new quantity pushed."""
    sold_out = [item for item in items if item.state == ItemState.ACTIVE and item.quantity_available <= 0]
    still_selling = [item.pk for item in items if item.quantity_available > 0]
    if sold_out:
        now = timezone.now()
        _apply_transition(sold_out, ItemState.SOLD, actor, f"sold: order {order}", follow_listings=False)
        Item.objects.filter(pk__in=[i.pk for i in sold_out]).update(
            sold_on=order.connection, sold_at=order.placed_at, sold_recorded_at=now
        )
        for item in sold_out:
            item.sold_on, item.sold_at, item.sold_recorded_at = order.connection, order.placed_at, now
        _end_listings_for_sale([i.pk for i in sold_out], order.connection_id, order.account_id)
    if still_selling:
        listings_mark_changed(still_selling)


def _end_carries_writes(selling_connection_id: int | None) -> bool:
    """Whether the listings' end (`_end_listings_for_sale`) is one statement that can carry the
    sale's other writes."""
    return selling_connection_id is not None and db.vendor == "postgresql"


def _end_listings_for_sale(
    item_ids: list[int],
    selling_connection_id: int | None,
    account_id: int,
    *,
    carrying: Sequence[tuple[str, list]] = (),
) -> None:
    """Every live listing of these items is to end: one UPDATE (it takes the rows' locks) that
    answers which listings still have to be ended on their channel, and on which channel.
    `carrying`: the sale's other writes, (SQL, positional params) each, which that UPDATE
    carries as data-modifying CTEs (only where `_end_carries_writes`)."""
    now = timezone.now()
    if _end_carries_writes(selling_connection_id):
        returned = _end_listings_statement(item_ids, selling_connection_id, now, carrying)
        _enqueue_on_channels(
            (
                (pk, channel_name_of(connection_id))
                for pk, state, connection_id in returned
                if state not in (ListingState.ENDED, ListingState.SOLD)
            ),
            account_id=account_id,
        )
        return
    if carrying:
        raise ValueError("only the one-statement end (_end_carries_writes) carries other writes")
    here = Q(connection_id=selling_connection_id)
    never_listed = Q(external_id="", actual_state__in=[ListingState.PENDING, ListingState.ERROR])
    changes = {
        "desired_state": DesiredState.ENDED,
        "desired_changed_at": now,
        "relist_requested": False,
        # The channel that sold it has already taken it off sale itself.
        "end_reason": Case(When(here, then=Value(END_SOLD_HERE)), default=Value(END_SOLD_ELSEWHERE)),
        "actual_state": Case(
            When(here, then=Value(ListingState.SOLD)),
            When(never_listed, then=Value(ListingState.ENDED)),
            default=F("actual_state"),
        ),
        "ended_at": Case(When(here | never_listed, then=Value(now)), default=F("ended_at")),
        "updated_at": now,
    }
    rows = ChannelListing.objects.filter(item_id__in=item_ids, desired_state=DesiredState.LIVE)
    returned = update_returning(rows, changes, ["pk", "actual_state", "connection_id"])
    _enqueue_on_channels(
        (
            (pk, channel_name_of(connection_id))
            for pk, state, connection_id in returned
            if state not in (ListingState.ENDED, ListingState.SOLD)
        ),
        account_id=account_id,
    )


# The UPDATE below, written out once: the ORM's compiling of its three CASE expressions was
# the largest CPU cost of recording a sale. The same statement as the ORM's (a SET
# expression reads the row as it was before the UPDATE, as there).
_END_FOR_SALE = (
    'UPDATE "inventory_channellisting" SET "desired_state" = %(ended)s, "desired_changed_at" = %(now)s,'
    ' "relist_requested" = false,'
    ' "end_reason" = CASE WHEN "connection_id" = %(here)s THEN %(sold_here)s ELSE %(sold_elsewhere)s END,'
    ' "actual_state" = CASE WHEN "connection_id" = %(here)s THEN %(sold)s'
    ' WHEN "external_id" = \'\' AND "actual_state" IN (%(pending)s, %(error)s) THEN %(ended_state)s'
    ' ELSE "actual_state" END,'
    ' "ended_at" = CASE WHEN "connection_id" = %(here)s'
    ' OR ("external_id" = \'\' AND "actual_state" IN (%(pending)s, %(error)s)) THEN %(now)s ELSE "ended_at" END,'
    ' "updated_at" = %(now)s'
    ' WHERE "item_id" = ANY(%(items)s) AND "desired_state" = %(live)s'
    ' RETURNING "id", "actual_state", "connection_id"'
)


_END_FOR_SALE_SQL, _END_FOR_SALE_NAMES = positional(_END_FOR_SALE)


def _end_listings_statement(
    item_ids: list[int], selling_connection_id: int, now: datetime, carrying: Sequence[tuple[str, list]] = ()
) -> list[tuple]:
    """The UPDATE, carrying the sale's other writes (`carrying`) and what rides with the sale's
    commit (the delivery's processed mark: sync.webhook_process), so the sale's transaction is
    that write's too."""
    values = {
        "ended": DesiredState.ENDED,
        "now": now,
        "here": selling_connection_id,
        "sold_here": END_SOLD_HERE,
        "sold_elsewhere": END_SOLD_ELSEWHERE,
        "sold": ListingState.SOLD,
        "pending": ListingState.PENDING,
        "error": ListingState.ERROR,
        "ended_state": ListingState.ENDED,
        "items": list(item_ids),
        "live": DesiredState.LIVE,
    }
    rides, ride_params = rides_offered()
    ctes = [(f"sale_{n}", statement) for n, (statement, _) in enumerate(carrying, 1)] + rides
    params = [p for _, more in carrying for p in more] + ride_params
    with planned_cursor(db) as cursor:
        cursor.execute(with_ctes(ctes, _END_FOR_SALE_SQL), [*params, *(values[name] for name in _END_FOR_SALE_NAMES)])
        returned = cursor.fetchall()
    rides_taken()
    return returned


def order_complete(*, order_id: int, actor: Actor) -> Order:
    """The sale went through: commit the locked stock. Completing twice changes nothing."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.COMPLETED:
            return order
        if order.status == OrderStatus.CANCELLED:
            raise OrderStateError(f"Order {order} was cancelled and cannot be completed.")
        locks = _open_locks(order)
        now = timezone.now()
        for lock in locks:
            _write_movement(
                lock.item,
                actor,
                MovementKind.COMMITTED,
                on_hand_delta=-lock.quantity,
                locked_delta=-lock.quantity,
                order_line=lock.order_line,
                reason=f"order {order}",
            )
            lock.status, lock.closed_at = LockStatus.COMMITTED, now
            lock.save(update_fields=["status", "closed_at"])
        _after_sale(order, list({lock.item_id: lock.item for lock in locks}.values()), actor)
        order.status = OrderStatus.COMPLETED
        order.save(update_fields=["status", "updated_at"])
    return order


def order_cancel(*, order_id: int, actor: Actor, reason: str = "") -> Order:
    """Cancel an order: release what it reserved, or return what it took to stock.

    An item that was sold out by this order goes back to active and is listed again.
    Cancelling twice changes nothing.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.CANCELLED:
            return order
        now = timezone.now()
        note = f"order {order} cancelled" + (f": {reason}" if reason else "")
        touched: dict[int, Item] = {}
        for lock in _held_locks(order):
            if lock.status == LockStatus.OPEN:
                _write_movement(
                    lock.item,
                    actor,
                    MovementKind.RELEASED,
                    locked_delta=-lock.quantity,
                    order_line=lock.order_line,
                    reason=note,
                )
                lock.status = LockStatus.RELEASED
            else:
                _write_movement(
                    lock.item,
                    actor,
                    MovementKind.RETURNED,
                    on_hand_delta=lock.quantity,
                    order_line=lock.order_line,
                    reason=note,
                )
                lock.status = LockStatus.RETURNED
            lock.closed_at = lock.closed_at or now
            lock.save(update_fields=["status", "closed_at"])
            touched[lock.item_id] = lock.item
        back_on_sale = [
            item for item in touched.values() if item.state == ItemState.SOLD and item.quantity_available > 0
        ]
        _apply_transition(back_on_sale, ItemState.ACTIVE, actor, note)
        if back_on_sale:
            Item.objects.filter(pk__in=[i.pk for i in back_on_sale]).update(
                sold_on=None, sold_at=None, sold_recorded_at=None
            )
        listings_mark_changed([pk for pk, item in touched.items() if item.state == ItemState.ACTIVE])
        order.status = OrderStatus.CANCELLED
        order.save(update_fields=["status", "updated_at"])
    return order


def order_ship(*, order_id: int, actor: Actor, carrier: str, tracking_number: str = "") -> Order:
    """The parcel left: record carrier and tracking, and move the order's sold items to shipped.

    Only a paid (completed) order ships. Shipping again corrects the carrier and tracking and
    keeps the first shipping time. Where the order's channel offers a `ship_order` step in its
    sync module (Reverb, Etsy, WooCommerce, Amazon), the tracking is pushed to it after commit.
    """
    carrier = carrier.strip()
    if not carrier:
        raise ValidationError({"carrier": "Say which carrier took the parcel."})
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status == OrderStatus.CANCELLED:
            raise OrderStateError(f"Order {order} was cancelled and cannot be shipped.")
        if order.status != OrderStatus.COMPLETED:
            raise OrderStateError(f"Order {order} is not paid yet: complete it before shipping.")
        first_time = order.shipped_at is None
        order.shipped_at = order.shipped_at or timezone.now()
        order.carrier, order.tracking_number = carrier[:60], tracking_number.strip()[:100]
        order.save(update_fields=["shipped_at", "carrier", "tracking_number", "updated_at"])
        if first_time:
            item_ids = sorted({line.item_id for line in order.lines.all() if line.item_id})
            sold = list(Item.objects.select_for_update().filter(pk__in=item_ids, state=ItemState.SOLD).order_by("pk"))
            _apply_transition(sold, ItemState.SHIPPED, actor, f"order {order} shipped with {order.carrier}")
        if order.connection_id and shipment_push_supported(order):
            from ..tasks import push_shipment_task, task_send  # the task module imports the services

            transaction.on_commit(lambda: task_send(push_shipment_task, args=[order.pk]))
    return order


def shipment_push_supported(order: Order) -> bool:
    """Does the order's channel offer a `ship_order` step (see inventory/channels.py)?"""
    from ..channels import channel

    if not order.connection_id or order.channel not in settings.CHANNELS:
        return False
    return callable(getattr(channel(order.channel), "ship_order", None))


def shipment_push(*, order_id: int) -> bool:
    """Tell the order's channel it shipped, with carrier and tracking. Returns whether it was pushed."""
    from ..channels import channel, specific_connection

    order = Order.objects.select_related("connection").get(pk=order_id)
    if order.shipped_at is None or not shipment_push_supported(order):
        return False
    connection = specific_connection(order.connection)
    channel(order.channel).ship_order(connection, order.external_id, order.carrier, order.tracking_number)
    return True


def _open_locks(order: Order) -> list[StockLock]:
    return _locks(order, [LockStatus.OPEN])


def _held_locks(order: Order) -> list[StockLock]:
    return _locks(order, [LockStatus.OPEN, LockStatus.COMMITTED])


def _locks(order: Order, statuses: list[str]) -> list[StockLock]:
    """The order's locks in the given statuses, with their items row-locked in primary-key order."""
    locks = list(
        StockLock.objects.filter(order_line__order=order, status__in=statuses)
        .select_related("order_line")
        .order_by("item_id", "pk")
    )
    items = {
        i.pk: i for i in Item.objects.select_for_update().filter(pk__in={lock.item_id for lock in locks}).order_by("pk")
    }
    for lock in locks:
        lock.item = items[lock.item_id]
    return locks


REDACTED = "(erased at the buyer's request)"


def orders_buyer_redact(
    *,
    connection_id: int,
    external_ids: Sequence[str] | None,
    name_placeholder: str = "",
    deliveries_topic_prefix: str = "",
) -> int:
    """Erase the buyer's personal data from a connection's orders (all of them when `external_ids`
    is None), as a marketplace's privacy rules require (Shopify's redact topics, eBay's account
    deletion). Amounts, lines and dates stay for the books. Stored webhook deliveries of those
    orders (topics starting with `deliveries_topic_prefix`) lose their payload too. Returns how
    many orders were erased."""
    blank = dict.fromkeys(Order.BUYER_AND_SHIPPING_FIELDS, "")
    if name_placeholder:
        blank["buyer_name"] = name_placeholder
    with transaction.atomic():
        orders = Order.objects.filter(connection_id=connection_id)
        if external_ids is not None:
            orders = orders.filter(external_id__in=list(external_ids))
        count = orders.update(**blank, updated_at=timezone.now())
        if deliveries_topic_prefix:
            from ..models import WebhookEvent

            events = WebhookEvent.objects.filter(connection_id=connection_id, topic__startswith=deliveries_topic_prefix)
            if external_ids is not None:
                wanted = {str(value) for value in external_ids}
                events = WebhookEvent.objects.filter(
                    pk__in=[e.pk for e in events.only("pk", "payload") if str((e.payload or {}).get("id")) in wanted]
                )
            events.update(payload={"redacted": REDACTED})
    return count
