"""Stock value, listings per shop and orders by status."""

from __future__ import annotations

from django.db.models import (
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from ...models import (
    ChannelListing,
    DesiredState,
    Item,
    ListingState,
    Order,
    OrderStatus,
)
from ...selectors import inventory_summary
from .base import MANUAL, MONEY, ZERO, AnalyticsFilter, money, ratio

# --- Stock and listings ------------------------------------------------------------------


def stock_by_state(*, user, f: AnalyticsFilter) -> list[dict]:
    """Items, units and value (at price and at cost) per state; with a channel, of the items
    live on it (in-shop: items not live anywhere)."""
    items = Item.objects.for_user(user)
    if f.channel:
        live = ChannelListing.objects.filter(item_id=OuterRef("pk"), actual_state=ListingState.LIVE)
        items = items.filter(
            ~Exists(live) if f.channel == MANUAL else Exists(live.filter(connection__channel=f.channel))
        )
    summary = inventory_summary(items=items)
    return [
        {
            "state": state,
            "items": figures["count"],
            "units": figures["units"],
            "value": money(figures["value"]),
            "cost_value": money(figures["cost_value"]),
        }
        for state, figures in summary["by_state"].items()
    ]


def listings_of(user, f: AnalyticsFilter) -> QuerySet[ChannelListing]:
    listings = ChannelListing.objects.for_user(user).order_by()
    if f.channel == MANUAL:
        return listings.none()
    return listings.filter(connection__channel=f.channel) if f.channel else listings


def stock_by_connection(*, user, f: AnalyticsFilter) -> list[dict]:
    """What is for sale on each shop now: live listings, available units and their value at the
    listing's price (its override, else the item's) and at cost. An item on three shops counts
    on each of them."""
    available = ExpressionWrapper(F("item__quantity_on_hand") - F("item__quantity_locked"), output_field=IntegerField())
    price = Coalesce("price_override", "item__price")
    rows = (
        listings_of(user, f)
        .filter(actual_state=ListingState.LIVE)
        .values("connection_id", "connection__name", "connection__channel", "item__currency")
        .annotate(
            listings=Count("*"),
            units=Coalesce(Sum(available), 0),
            value=Coalesce(Sum(ExpressionWrapper(price * available, output_field=MONEY)), ZERO, output_field=MONEY),
            cost_value=Coalesce(
                Sum(ExpressionWrapper(F("item__cost") * available, output_field=MONEY)), ZERO, output_field=MONEY
            ),
        )
        .order_by("-value", "connection_id")
    )
    return [
        {
            "connection_id": row["connection_id"],
            "shop": row["connection__name"],
            "channel": row["connection__channel"],
            "currency": row["item__currency"],
            "listings": row["listings"],
            "units": row["units"],
            "value": money(row["value"]),
            "cost_value": money(row["cost_value"]),
        }
        for row in rows
    ]


def platform_distribution(*, user, f: AnalyticsFilter) -> list[dict]:
    """Live listings per shop, with its share of all live listings and what is not live yet."""
    rows = list(
        listings_of(user, f)
        .values("connection_id", "connection__name", "connection__channel")
        .annotate(
            live=Count("pk", filter=Q(actual_state=ListingState.LIVE)),
            pending=Count(
                "pk",
                filter=Q(desired_state=DesiredState.LIVE)
                & ~Q(actual_state__in=[ListingState.LIVE, ListingState.ERROR]),
            ),
            in_error=Count("pk", filter=Q(actual_state=ListingState.ERROR)),
        )
        .order_by("-live", "connection_id")
    )
    total = sum(row["live"] for row in rows)
    return [
        {
            "connection_id": row["connection_id"],
            "shop": row["connection__name"],
            "channel": row["connection__channel"],
            "live": row["live"],
            "share": ratio(row["live"], total),
            "pending": row["pending"],
            "in_error": row["in_error"],
        }
        for row in rows
    ]


# --- Orders ------------------------------------------------------------------------------


def orders_by_status(*, user, f: AnalyticsFilter) -> list[dict]:
    """Every order placed in the period (cancelled ones too) per status and currency: count,
    order totals, how many shipped, and how many are the open losing side of a double sale."""
    orders = Order.objects.for_user(user).filter(placed_at__gte=f.start, placed_at__lt=f.end).order_by()
    if f.channel:
        orders = orders.filter(channel=f.channel)
    rows = (
        orders.values("status", "currency")
        .annotate(
            orders=Count("*"),
            total=Coalesce(Sum("total"), ZERO, output_field=MONEY),
            shipped=Count("pk", filter=Q(shipped_at__isnull=False)),
            double_sale_open=Count("pk", filter=Q(conflict__status="open")),
        )
        .order_by(
            Case(
                *(When(status=value, then=Value(i)) for i, value in enumerate(OrderStatus.values)),
                output_field=IntegerField(),
            ),
            "currency",
        )
    )
    return [
        {
            "status": row["status"],
            "currency": row["currency"],
            "orders": row["orders"],
            "total": money(row["total"]),
            "shipped": row["shipped"],
            "double_sale_open": row["double_sale_open"],
        }
        for row in rows
    ]
