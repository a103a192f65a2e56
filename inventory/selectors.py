"""Read-only queries over the inventory: lists, the summary and stock checks."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce

from .models import Item, ItemStateChange, LockStatus, OrderStatus, StockLock, StockMovement
from .states import ItemState


def item_list(*, user) -> QuerySet[Item]:
    """The items a user may see, newest first."""
    return Item.objects.for_user(user).order_by("-id")


def item_history(*, item: Item) -> QuerySet[ItemStateChange]:
    return item.state_changes.select_related("user").order_by("-created_at", "-id")


def inventory_summary(*, items: QuerySet[Item]) -> dict:
    """Counts, units and value (at price and at cost) per state, and the totals."""
    money = DecimalField(max_digits=16, decimal_places=2)
    rows = (
        items.order_by()
        .values("state")
        .annotate(
            count=Count("id"),
            units=Coalesce(Sum("quantity_on_hand"), 0),
            value=Coalesce(
                Sum(ExpressionWrapper(F("price") * F("quantity_on_hand"), output_field=money)),
                Decimal("0"),
                output_field=money,
            ),
            cost_value=Coalesce(
                Sum(ExpressionWrapper(F("cost") * F("quantity_on_hand"), output_field=money)),
                Decimal("0"),
                output_field=money,
            ),
        )
    )
    by_state = {
        state: {"count": 0, "units": 0, "value": Decimal("0.00"), "cost_value": Decimal("0.00")}
        for state in ItemState.values
    }
    for row in rows:
        by_state[row["state"]] = {k: row[k] for k in ("count", "units", "value", "cost_value")}
    totals = {k: sum(s[k] for s in by_state.values()) for k in ("count", "units", "value", "cost_value")}
    return {"by_state": by_state, "totals": totals}


@dataclass(frozen=True)
class StockProblem:
    kind: str
    item_id: int
    sku: str
    detail: str


def stock_problems(*, items: QuerySet[Item] | None = None) -> list[StockProblem]:
    """Everything wrong with stock: negative figures, locks that do not add up or are
    orphaned, and items whose ledger does not sum to their totals."""
    items = Item.objects.all() if items is None else items
    open_locked = StockLock.objects.filter(item=OuterRef("pk"), status=LockStatus.OPEN).order_by().values("item")
    ledger = StockMovement.objects.filter(item=OuterRef("pk")).order_by().values("item")
    annotated = items.order_by("pk").annotate(
        open_locks=Coalesce(
            Subquery(open_locked.annotate(s=Sum("quantity")).values("s"), output_field=IntegerField()), 0
        ),
        ledger_on_hand=Coalesce(
            Subquery(ledger.annotate(s=Sum("on_hand_delta")).values("s"), output_field=IntegerField()), 0
        ),
        ledger_locked=Coalesce(
            Subquery(ledger.annotate(s=Sum("locked_delta")).values("s"), output_field=IntegerField()), 0
        ),
    )
    suspicious = annotated.filter(
        Q(quantity_on_hand__lt=0)
        | Q(quantity_locked__lt=0)
        | Q(quantity_locked__gt=F("quantity_on_hand"))
        | ~Q(quantity_locked=F("open_locks"))
        | ~Q(quantity_on_hand=F("ledger_on_hand"))
        | ~Q(quantity_locked=F("ledger_locked"))
    ).values("pk", "sku", "quantity_on_hand", "quantity_locked", "open_locks", "ledger_on_hand", "ledger_locked")

    problems: list[StockProblem] = []
    for row in suspicious.iterator(chunk_size=2000):
        pk, sku, on_hand, locked = row["pk"], row["sku"], row["quantity_on_hand"], row["quantity_locked"]
        if on_hand < 0 or locked < 0 or locked > on_hand:
            problems.append(StockProblem("negative_stock", pk, sku, f"on hand {on_hand}, locked {locked}"))
        if locked != row["open_locks"]:
            problems.append(
                StockProblem(
                    "lock_mismatch", pk, sku, f"item says {locked} locked, open locks hold {row['open_locks']}"
                )
            )
        if on_hand != row["ledger_on_hand"] or locked != row["ledger_locked"]:
            problems.append(
                StockProblem(
                    "ledger_mismatch",
                    pk,
                    sku,
                    f"item on hand {on_hand} / locked {locked}, ledger sums to "
                    f"{row['ledger_on_hand']} / {row['ledger_locked']}",
                )
            )
    orphans = (
        StockLock.objects.filter(item__in=items.order_by().values("pk"), status=LockStatus.OPEN)
        .exclude(order_line__order__status=OrderStatus.OPEN)
        .select_related("item", "order_line__order")
    )
    for lock in orphans.iterator(chunk_size=2000):
        problems.append(
            StockProblem(
                "orphaned_lock",
                lock.item_id,
                lock.item.sku,
                f"lock {lock.pk} of {lock.quantity} is open but order {lock.order_line.order} is {lock.order_line.order.status}",
            )
        )
    return problems


def item_channel_counts(items: list[Item]) -> list[Item]:
    """Set `live_listings` and `connection_total` on the given items (a page's rows).

    Two queries whatever the page size: live listings grouped by item for these ids, and
    enabled connections grouped by account.
    """
    from .models import ChannelConnection, ChannelListing

    ids = [item.pk for item in items]
    live = dict(
        ChannelListing.objects.filter(item_id__in=ids, actual_state="live")
        .order_by()
        .values("item_id")
        .annotate(n=Count("*"))
        .values_list("item_id", "n")
    )
    totals = (
        dict(
            ChannelConnection.objects.filter(account_id__in={item.account_id for item in items}, enabled=True)
            .order_by()
            .values("account_id")
            .annotate(n=Count("*"))
            .values_list("account_id", "n")
        )
        if items
        else {}
    )
    for item in items:
        item.live_listings = live.get(item.pk, 0)
        item.connection_total = totals.get(item.account_id, 0)
    return items


def sale_end_seconds(item: Item) -> float | None:
    """Seconds from recording the sale to the last confirmed end on another channel, once all are ended."""
    from .models import ChannelListing, DesiredState, ListingState

    if item.sold_recorded_at is None:
        return None
    others = ChannelListing.objects.filter(item=item, desired_state=DesiredState.ENDED, end_reason="sold_elsewhere")
    if not others.exists() or others.exclude(actual_state__in=[ListingState.ENDED, ListingState.SOLD]).exists():
        return None
    last = max((ended for ended in others.values_list("ended_at", flat=True) if ended), default=None)
    return None if last is None else max((last - item.sold_recorded_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class ListingStatus:
    """One item's listing on one shop, as the admin shows it: name, state word, error."""

    connection_id: int
    shop: str
    channel: str
    state: str  # pending / live / ending / ended / sold / missing / error
    state_label: str
    wanted: str  # "" when converged, else the desired state ("live" / "ended")
    error: str


def item_listing_states(items: list[Item]) -> dict[int, list[ListingStatus]]:
    """Per item id, its listings with the shop's name (one query for a page's rows)."""
    from .models import ChannelListing, ListingState

    labels = dict(ListingState.choices)
    rows: dict[int, list[ListingStatus]] = {item.pk: [] for item in items}
    listings = (
        ChannelListing.objects.filter(item_id__in=list(rows))
        .select_related("connection")
        .only(
            "item_id",
            "desired_state",
            "actual_state",
            "needs_push",
            "relist_requested",
            "last_error",
            "connection__name",
            "connection__channel",
            "connection__priority",
        )
        .order_by("connection__priority", "connection_id")
    )
    for listing in listings:
        rows[listing.item_id].append(
            ListingStatus(
                connection_id=listing.connection_id,
                shop=listing.connection.name,
                channel=listing.connection.channel,
                state=listing.actual_state,
                state_label=labels.get(listing.actual_state, listing.actual_state),
                wanted="" if listing.converged else listing.desired_state,
                error=listing.last_error,
            )
        )
    return rows


@dataclass(frozen=True)
class ItemSale:
    """What the item page shows at the top once the item sold."""

    order: object | None  # the winning Order (None when it was marked sold by hand)
    shop: str
    sold_at: object | None
    ended_seconds: float | None
    still_ending: list[str]  # shops whose listing is not confirmed ended yet
    open_conflicts: list  # Conflicts (double sales) still open for this item


def item_sale(item: Item) -> ItemSale | None:
    """The sale of a sold (or shipped) item, with the double sales that came with it."""
    from .models import ChannelListing, Conflict, ConflictStatus, DesiredState, ListingState, Order

    conflicts = list(
        Conflict.objects.filter(item=item, status=ConflictStatus.OPEN, kind="double_sale").select_related(
            "winning_order__connection", "losing_order__connection"
        )
    )
    if item.sold_recorded_at is None and not conflicts:
        return None
    order = (
        Order.objects.filter(lines__item=item)
        .exclude(status=OrderStatus.CANCELLED)
        .exclude(pk__in=[c.losing_order_id for c in conflicts])
        .select_related("connection")
        .order_by("placed_at", "pk")
        .first()
    )
    still = list(
        ChannelListing.objects.filter(item=item, desired_state=DesiredState.ENDED)
        .exclude(actual_state__in=[ListingState.ENDED, ListingState.SOLD])
        .values_list("connection__name", flat=True)
    )
    shop = item.sold_on.name if item.sold_on_id else (order.connection.name if order and order.connection else "")
    return ItemSale(
        order=order,
        shop=shop or (order.channel if order else "by hand"),
        sold_at=item.sold_at,
        ended_seconds=sale_end_seconds(item),
        still_ending=still,
        open_conflicts=conflicts,
    )


# Multi-unit stock (2+ on hand) with this many units or fewer left to sell is "low";
# one-off items (1 on hand) are not, or every used guitar would be.
LOW_STOCK_UNITS = 2


def low_stock_items(items: QuerySet[Item]) -> QuerySet[Item]:
    return items.filter(state=ItemState.ACTIVE, quantity_on_hand__gte=2).filter(
        quantity_on_hand__lte=F("quantity_locked") + LOW_STOCK_UNITS
    )


def orders_to_ship(orders: QuerySet) -> QuerySet:
    """Paid orders that have not left yet (not the losing order of an unsettled double sale)."""
    return orders.filter(status=OrderStatus.COMPLETED, shipped_at__isnull=True).exclude(conflict__status="open")


@dataclass(frozen=True)
class Attention:
    double_sales: int
    listings_in_error: int
    items_to_review: int
    orders_to_ship: int
    low_stock: int
    open_alerts: int


def attention_today(*, user) -> Attention:
    """What needs a person today, counted in the user's account (one query per count)."""
    from .models import Alert, ChannelListing, Conflict, ConflictStatus, ListingState, Order

    items = Item.objects.for_user(user)
    return Attention(
        double_sales=Conflict.objects.for_user(user).filter(status=ConflictStatus.OPEN, kind="double_sale").count(),
        listings_in_error=ChannelListing.objects.for_user(user).filter(actual_state=ListingState.ERROR).count(),
        items_to_review=items.filter(needs_review=True).count(),
        orders_to_ship=orders_to_ship(Order.objects.for_user(user)).count(),
        low_stock=low_stock_items(items).count(),
        open_alerts=Alert.objects.for_user(user).filter(acknowledged_at__isnull=True).count(),
    )


def sales_today(*, user, now=None) -> list[dict]:
    """Today's orders per shop and currency: count and total, largest first (database aggregation)."""
    from django.utils import timezone

    from .models import Order

    now = now or timezone.now()
    start = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return list(
        Order.objects.for_user(user)
        .filter(placed_at__gte=start, placed_at__lte=now)
        .exclude(status=OrderStatus.CANCELLED)
        .exclude(conflict__status="open")  # the losing side of an unsettled double sale is not a sale
        .order_by()
        .values("connection__name", "channel", "currency")
        .annotate(orders=Count("*"), total=Sum("total"))
        .order_by("-total", "connection__name")
    )


def item_first_photos(items: list[Item]) -> dict[int, str]:
    """Per item id, the URL of its first photo (one query for a page's rows)."""
    from .models import ItemPhoto

    first: dict[int, str] = {}
    photos = ItemPhoto.objects.filter(item_id__in=[item.pk for item in items]).order_by("item_id", "position", "pk")
    for photo in photos:
        if photo.item_id not in first and photo.src:
            first[photo.item_id] = photo.src
    return first


URGENT_SEVERITIES = ("critical", "high")


def _urgent_key(account_id: int) -> str:
    return f"alerts:urgent:{account_id}"


def urgent_alert_count(account_id: int) -> int:
    """Open critical and high alerts of an account (the admin header's badge): one COUNT on the
    (account, resolved_at, severity) index, cached for ALERT_BADGE_SECONDS; alerts raised or
    resolved drop the cached figure (`urgent_alert_count_forget`)."""
    from django.conf import settings
    from django.core.cache import cache

    from .models import Alert

    key = _urgent_key(account_id)
    count = cache.get(key)
    if count is None:
        # An aggregate rather than .count(): the same single COUNT on the index, told apart from the
        # bounded row counts of the list pages (tests/test_admin_items.py checks those).
        count = Alert.objects.filter(
            account_id=account_id, resolved_at__isnull=True, severity__in=URGENT_SEVERITIES
        ).aggregate(n=Count("pk"))["n"]
        cache.set(key, count, getattr(settings, "ALERT_BADGE_SECONDS", 30))
    return count


def urgent_alert_count_forget(account_ids) -> None:
    from django.core.cache import cache

    cache.delete_many([_urgent_key(account_id) for account_id in set(account_ids)])


# Alerts that carry no listing or conflict name their subject in the dedupe key the services
# write ("pull-failing:<connection id>", "unmatched-order:<order id>"...): read the shop from it.
_KEY_CONNECTION = ("pull-failing", "listing-mismatch", "duplicate", "not-imported")
_KEY_ORDER = ("unmatched-order", "unsellable-sale")
_KEY_WEBHOOK = ("webhook-failed",)
_KEY_LISTING = ("listing-error", "listing-missing", "live-not-for-sale", "price-drift")
_KEY_IMPORTED_ITEM = ("imported",)


def alert_shops(alerts: list) -> dict[int, str]:
    """Per alert id, the name of the shop it is about ("" when it is about none). A few queries per page."""
    from .models import ChannelConnection, ChannelListing, Order, WebhookEvent

    wanted: dict[str, dict[int, list[int]]] = {
        "connection": {},
        "order": {},
        "webhook": {},
        "listing": {},
        "imported": {},
    }
    names: dict[int, str] = {}
    for alert in alerts:
        if alert.connection_id:
            names[alert.pk] = alert.connection.name
            continue
        if alert.listing_id:
            names[alert.pk] = alert.listing.connection.name
            continue
        if alert.conflict_id:
            conflict = alert.conflict
            sides = [
                o.connection.name if o.connection_id else o.channel
                for o in (conflict.winning_order, conflict.losing_order)
            ]
            names[alert.pk] = " / ".join(dict.fromkeys(sides))
            continue
        prefix, _, rest = alert.dedupe_key.partition(":")
        subject = rest.split(":", 1)[0]
        if not subject.isdigit():
            continue
        kind = next(
            (
                kind
                for kind, prefixes in (
                    ("connection", _KEY_CONNECTION),
                    ("order", _KEY_ORDER),
                    ("webhook", _KEY_WEBHOOK),
                    ("listing", _KEY_LISTING),
                    ("imported", _KEY_IMPORTED_ITEM),
                )
                if prefix in prefixes
            ),
            None,
        )
        if kind:
            wanted[kind].setdefault(int(subject), []).append(alert.pk)
    lookups = {
        "connection": lambda ids: ChannelConnection.objects.filter(pk__in=ids).values_list("pk", "name"),
        "order": lambda ids: Order.objects.filter(pk__in=ids, connection__isnull=False).values_list(
            "pk", "connection__name"
        ),
        "webhook": lambda ids: WebhookEvent.objects.filter(pk__in=ids).values_list("pk", "connection__name"),
        "listing": lambda ids: ChannelListing.objects.filter(pk__in=ids).values_list("pk", "connection__name"),
        "imported": lambda ids: ChannelListing.objects.filter(item_id__in=ids, imported=True).values_list(
            "item_id", "connection__name"
        ),
    }
    for kind, subjects in wanted.items():
        if not subjects:
            continue
        for pk, name in lookups[kind](list(subjects)):
            for alert_id in subjects[pk]:
                names[alert_id] = name
    return names
