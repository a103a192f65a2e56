"""Sales analytics: the figures of the dashboard and of /api/v1/analytics/, read-only.

Every figure is one or a few aggregate queries (GROUP BY in the database, percentiles with
PostgreSQL's percentile_cont); nothing here iterates over items or orders in Python. The only
Python loops are over the handful of result rows (channels, connections, time buckets) to
join two small answers or fill empty buckets.

What counts as a sale: an order placed in the period that is not cancelled and is not the
losing side of an unsettled double sale (the same rule as `selectors.sales_today`). Revenue
is the lines' quantity x unit price (goods only: shipping and tax are not the shop's takings
from the item). Margin is that revenue minus the items' cost, over the lines whose item has a
cost; `costed_units` says how many units that covers.

Every figure is scoped with `for_user` (the user's account; all accounts for a platform
superuser) and works for whatever channels settings.CHANNELS registers, plus "manual" (sales
made in the shop or through the API).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from ..channels import channel_names
from ..models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    DesiredState,
    Item,
    ListingState,
    Order,
    OrderLine,
    OrderStatus,
    SyncKind,
    SyncRun,
    SyncStatus,
)
from ..selectors import inventory_summary

MANUAL = "manual"  # sales made in the shop or through the API: Order.channel's default
MONEY = DecimalField(max_digits=16, decimal_places=2)
ZERO = Decimal("0.00")
PERIODS = {"7d": 7, "30d": 30, "90d": 90, "365d": 365}
BUCKETS = ("day", "week", "month")
MAX_DAYS = 366 * 5
TOP_LIMIT = 10


# --- Filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnalyticsFilter:
    """The period (whole days in the shop's time zone, both ends included) and an optional channel."""

    start_date: dt.date
    end_date: dt.date
    channel: str | None = None  # a registry name, "manual", or None for every channel
    bucket: str = "day"

    @property
    def start(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.start_date, dt.time.min))

    @property
    def end(self) -> dt.datetime:
        """Exclusive: midnight after the last day."""
        return timezone.make_aware(dt.datetime.combine(self.end_date + dt.timedelta(days=1), dt.time.min))

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    def as_dict(self) -> dict:
        return {
            "start": self.start_date.isoformat(),
            "end": self.end_date.isoformat(),
            "channel": self.channel or "",
            "bucket": self.bucket,
        }


def analytics_channels() -> list[str]:
    """The channel names a filter accepts: every registered channel, then in-shop sales."""
    return [*channel_names(), MANUAL]


FILTER_PARAMS = ("period", "start", "end", "channel", "bucket")


def analytics_filter_parse(
    params: Mapping[str, str], *, today: dt.date | None = None, also_allowed: tuple[str, ...] = ()
) -> AnalyticsFilter:
    """Read `period` (7d, 30d, 90d, 365d), or `start`/`end` (YYYY-MM-DD), `channel` and `bucket`.

    Raises ValidationError with one message per bad field, each saying what is accepted; a
    parameter it does not know (a typo such as `chanel`) is refused rather than ignored.
    """
    today = today or timezone.localdate()
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(params) - set(FILTER_PARAMS) - set(also_allowed))
    if unknown:
        errors["unknown"] = [
            f"Unknown parameter(s) {', '.join(unknown)}: the filters are {', '.join(FILTER_PARAMS + also_allowed)}."
        ]
    period = (params.get("period") or "").strip()
    start_text, end_text = (params.get("start") or "").strip(), (params.get("end") or "").strip()
    start = end = None
    if period and period not in PERIODS:
        errors["period"] = [f"Unknown period {period!r}: use one of {', '.join(PERIODS)}, or start and end dates."]
    if start_text or end_text:
        if period:
            errors.setdefault("period", []).append("Give either period or start/end dates, not both.")
        for name, text in (("start", start_text), ("end", end_text)):
            if not text:
                errors[name] = [f"{name} is required with {'end' if name == 'start' else 'start'} (YYYY-MM-DD)."]
                continue
            try:
                value = dt.date.fromisoformat(text)
            except ValueError:
                errors[name] = [f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. {today.isoformat()}."]
                continue
            if name == "start":
                start = value
            else:
                end = value
        if start and end:
            if start > end:
                errors["end"] = [f"end ({end}) is before start ({start}): swap them."]
            elif (end - start).days + 1 > MAX_DAYS:
                errors["end"] = [f"A period is at most {MAX_DAYS} days; this one is {(end - start).days + 1}."]
    elif period in PERIODS or not period:
        end = today
        start = today - dt.timedelta(days=PERIODS.get(period or "30d") - 1)
    channel = (params.get("channel") or "").strip() or None
    if channel is not None and channel not in analytics_channels():
        errors["channel"] = [f"Unknown channel {channel!r}: use one of {', '.join(analytics_channels())}."]
    bucket = (params.get("bucket") or "").strip()
    if bucket and bucket not in BUCKETS:
        errors["bucket"] = [f"Unknown bucket {bucket!r}: use day, week or month."]
    if errors:
        raise ValidationError(errors)
    if not bucket:
        days = (end - start).days + 1
        bucket = "day" if days <= 31 else "week" if days <= 190 else "month"
    return AnalyticsFilter(start_date=start, end_date=end, channel=channel, bucket=bucket)


# --- Database helpers --------------------------------------------------------------------


class PercentileCont(Aggregate):
    """PostgreSQL's continuous percentile (an ordered-set aggregate); NULL on other databases."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)

    def as_sql(self, compiler, connection, **extra_context):
        if connection.vendor != "postgresql":
            return "NULL", []
        return super().as_sql(compiler, connection, **extra_context)


class Seconds(Func):
    """An interval in seconds (EXTRACT(EPOCH ...) on PostgreSQL)."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)", **extra_context)

    def as_sql(self, compiler, connection, template=None, **extra_context):
        if connection.vendor != "postgresql" and template is None:
            # SQLite keeps datetimes as text; a duration there is microseconds (Django's convention).
            return super().as_sql(compiler, connection, template="(%(expressions)s) / 1000000.0", **extra_context)
        return super().as_sql(compiler, connection, template=template, **extra_context)


def _interval(later, earlier) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def _money(value) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


def _ratio(part, whole, places: str = "0.0001") -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part or 0) / Decimal(whole)).quantize(Decimal(places))


def _days(duration: dt.timedelta | None) -> Decimal | None:
    if duration is None:
        return None
    return (Decimal(duration.total_seconds()) / Decimal(86400)).quantize(Decimal("0.1"))


def _seconds(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.1"))


# --- Base querysets ----------------------------------------------------------------------


def sales_orders(*, user, f: AnalyticsFilter) -> QuerySet[Order]:
    """The orders that count as sales in the period (and channel)."""
    orders = (
        Order.objects.for_user(user)
        .filter(placed_at__gte=f.start, placed_at__lt=f.end)
        .exclude(status=OrderStatus.CANCELLED)
        .exclude(conflict__status="open")
    )
    return orders.filter(channel=f.channel) if f.channel else orders


def sales_lines(*, user, f: AnalyticsFilter) -> QuerySet[OrderLine]:
    """The lines of those orders (the join goes through the (account, placed_at) index)."""
    return OrderLine.objects.filter(order__in=sales_orders(user=user, f=f)).order_by()


def _line_figures() -> dict:
    revenue = ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY)
    costed = Q(item__cost__isnull=False)
    return {
        "orders": Count("order_id", distinct=True),
        "units": Coalesce(Sum("quantity"), 0),
        "revenue": Coalesce(Sum(revenue), ZERO, output_field=MONEY),
        "costed_units": Coalesce(Sum("quantity", filter=costed), 0),
        "costed_revenue": Coalesce(Sum(revenue, filter=costed), ZERO, output_field=MONEY),
        "cost": Coalesce(
            Sum(ExpressionWrapper(F("quantity") * F("item__cost"), output_field=MONEY), filter=costed),
            ZERO,
            output_field=MONEY,
        ),
    }


def _with_margin(row: dict) -> dict:
    revenue, units = _money(row["revenue"]), row["units"]
    margin = _money(row["costed_revenue"]) - _money(row["cost"])
    row.update(
        revenue=revenue,
        cost=_money(row["cost"]),
        costed_revenue=_money(row["costed_revenue"]),
        average_sale_price=_money(revenue / units) if units else None,
        margin=margin if row["costed_units"] else None,
        margin_rate=_ratio(margin, _money(row["costed_revenue"])) if row["costed_units"] else None,
    )
    return row


# --- Sales -------------------------------------------------------------------------------


def sales_by_channel(*, user, f: AnalyticsFilter) -> list[dict]:
    """Per channel and currency: orders, units, revenue, average sale price, margin, and the
    average days from the item's first listing (on any channel) to the sale."""
    rows = (
        sales_lines(user=user, f=f)
        .values("order__channel", "order__currency")
        .annotate(**_line_figures())
        .order_by("-revenue", "order__channel")
    )
    days = _days_to_sell(user=user, f=f)
    return [
        _with_margin(
            {
                "channel": row["order__channel"],
                "currency": row["order__currency"],
                "orders": row["orders"],
                "units": row["units"],
                "revenue": row["revenue"],
                "costed_units": row["costed_units"],
                "costed_revenue": row["costed_revenue"],
                "cost": row["cost"],
                "average_days_to_sell": _days(days.get((row["order__channel"], row["order__currency"]))),
            }
        )
        for row in rows
    ]


def _days_to_sell(*, user, f: AnalyticsFilter) -> dict[tuple[str, str], dt.timedelta]:
    """Mean time from the item's first listing to the sale, per (channel, currency), over the
    sale lines whose item was listed before it sold.

    On PostgreSQL the first listing dates are one grouped derived table joined to the lines
    (a hash join); a correlated subquery per line cost ~0.5 s at 50,000 orders.
    """
    lines = sales_lines(user=user, f=f).values("order__channel", "order__currency", "order__placed_at", "item_id")
    first = ChannelListing.objects.for_user(user).order_by().values("item_id").annotate(first=Min("created_at"))
    if db_connection.vendor != "postgresql":
        listed_at = first.filter(item_id=OuterRef("item_id")).values("first")
        rows = (
            lines.annotate(listed_at=Subquery(listed_at))
            .filter(listed_at__lte=F("order__placed_at"))
            .values("order__channel", "order__currency")
            .annotate(took=Avg(_interval("order__placed_at", "listed_at")))
            .values_list("order__channel", "order__currency", "took")
        )
        return {(channel, currency): took for channel, currency, took in rows}
    lines_sql, lines_params = lines.query.sql_with_params()
    first_sql, first_params = first.values("item_id", "first").query.sql_with_params()
    sql = (
        f"SELECT s.channel, s.currency, AVG(s.placed_at - l.first) FROM ({lines_sql}) AS s(channel, currency, "
        f"placed_at, item_id) JOIN ({first_sql}) AS l(item_id, first) ON l.item_id = s.item_id "
        "WHERE l.first <= s.placed_at GROUP BY s.channel, s.currency"
    )
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [*lines_params, *first_params])
        return {(channel, currency): took for channel, currency, took in cursor.fetchall()}


def sales_over_time(*, user, f: AnalyticsFilter) -> list[dict]:
    """Orders, units and revenue per day / week / month of the period (empty buckets included)."""
    tz = timezone.get_current_timezone()
    rows = (
        sales_lines(user=user, f=f)
        .annotate(bucket=Trunc("order__placed_at", f.bucket, tzinfo=tz))
        .values("bucket", "order__currency")
        .annotate(
            orders=Count("order_id", distinct=True),
            units=Coalesce(Sum("quantity"), 0),
            revenue=Coalesce(
                Sum(ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY)), ZERO, output_field=MONEY
            ),
        )
        .order_by("bucket", "order__currency")
    )
    found = {(timezone.localtime(row["bucket"], tz).date(), row["order__currency"]): row for row in rows}
    currencies = sorted({currency for _day, currency in found}) or [_account_currency(user)]
    out = []
    for start in _bucket_starts(f):
        for currency in currencies:
            row = found.get((start, currency))
            out.append(
                {
                    "bucket": start.isoformat(),
                    "currency": currency,
                    "orders": row["orders"] if row else 0,
                    "units": row["units"] if row else 0,
                    "revenue": _money(row["revenue"]) if row else ZERO,
                }
            )
    return out


def _bucket_starts(f: AnalyticsFilter) -> list[dt.date]:
    day = f.start_date
    if f.bucket == "week":
        day -= dt.timedelta(days=day.weekday())
    elif f.bucket == "month":
        day = day.replace(day=1)
    starts = []
    while day <= f.end_date:
        starts.append(day)
        if f.bucket == "day":
            day += dt.timedelta(days=1)
        elif f.bucket == "week":
            day += dt.timedelta(days=7)
        else:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return starts


def _account_currency(user) -> str:
    return getattr(getattr(user, "account", None), "default_currency", None) or "USD"


TOP_DIMENSIONS = {
    "brand": ("item__brand",),
    "category": ("item__category",),
    "item": ("item_id",),
}


def top_sellers(*, user, f: AnalyticsFilter, by: str, limit: int = TOP_LIMIT) -> list[dict]:
    """The best brands, categories or items of the period by revenue (ties: units, then name or id)."""
    if by not in TOP_DIMENSIONS:
        raise ValidationError({"by": [f"Unknown ranking {by!r}: use brand, category or item."]})
    keys = TOP_DIMENSIONS[by]
    rows = (
        sales_lines(user=user, f=f)
        .values(*keys, "order__currency")
        .annotate(**_line_figures())
        .order_by("-revenue", "-units", keys[-1])[:limit]
    )
    rows = list(rows)
    # Items are grouped by id alone (a sort on sku and title too cost ~2x at 50,000 orders);
    # the ten winners' names are one more query.
    names = (
        {
            pk: (sku, title)
            for pk, sku, title in Item.objects.filter(pk__in=[r["item_id"] for r in rows]).values_list(
                "pk", "sku", "title"
            )
        }
        if by == "item"
        else {}
    )
    out = []
    for rank, row in enumerate(rows, start=1):
        entry = {"rank": rank, "currency": row["order__currency"]}
        if by == "item":
            sku, title = names.get(row["item_id"], ("", ""))
            entry.update(item_id=row["item_id"], sku=sku, name=title)
        else:
            entry["name"] = row[keys[0]]
        entry.update({k: row[k] for k in ("orders", "units", "revenue", "costed_units", "costed_revenue", "cost")})
        out.append(_with_margin(entry))
    return out


def sell_through(*, user, f: AnalyticsFilter) -> list[dict]:
    """Per channel: units sold in the period / (those units + units still for sale there now).

    Still for sale on a channel: available units of items with a live listing on it; in the
    shop ("manual"): available units of every active item. The "all" row counts each unit once.
    """
    sold = dict(
        sales_lines(user=user, f=f)
        .values("order__channel")
        .annotate(n=Sum("quantity"))
        .values_list("order__channel", "n")
    )
    available = ExpressionWrapper(F("item__quantity_on_hand") - F("item__quantity_locked"), output_field=IntegerField())
    live = ChannelListing.objects.for_user(user).filter(actual_state=ListingState.LIVE).order_by()
    if f.channel:
        live = live.filter(connection__channel=f.channel)
    on_sale = dict(
        live.values("connection__channel").annotate(n=Sum(available)).values_list("connection__channel", "n")
    )
    active = Item.objects.for_user(user).filter(state="active").order_by()
    item_available = ExpressionWrapper(F("quantity_on_hand") - F("quantity_locked"), output_field=IntegerField())
    shop_available = active.aggregate(n=Coalesce(Sum(item_available), 0))["n"]
    if f.channel is None or f.channel == MANUAL:
        on_sale[MANUAL] = shop_available
    names = [name for name in analytics_channels() if f.channel in (None, name)]
    rows = []
    for name in names:
        units_sold, still = sold.get(name) or 0, on_sale.get(name) or 0
        if not units_sold and not still:
            continue
        rows.append(
            {
                "channel": name,
                "units_sold": units_sold,
                "units_for_sale": still,
                "sell_through_rate": _ratio(units_sold, units_sold + still),
            }
        )
    if f.channel is None:
        total_sold = sum(sold.values())
        rows.append(
            {
                "channel": "all",
                "units_sold": total_sold,
                "units_for_sale": shop_available,
                "sell_through_rate": _ratio(total_sold, total_sold + shop_available),
            }
        )
    return rows


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
            "value": _money(figures["value"]),
            "cost_value": _money(figures["cost_value"]),
        }
        for state, figures in summary["by_state"].items()
    ]


def _listings(user, f: AnalyticsFilter) -> QuerySet[ChannelListing]:
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
        _listings(user, f)
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
            "value": _money(row["value"]),
            "cost_value": _money(row["cost_value"]),
        }
        for row in rows
    ]


def platform_distribution(*, user, f: AnalyticsFilter) -> list[dict]:
    """Live listings per shop, with its share of all live listings and what is not live yet."""
    rows = list(
        _listings(user, f)
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
            "share": _ratio(row["live"], total),
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
            "total": _money(row["total"]),
            "shipped": row["shipped"],
            "double_sale_open": row["double_sale_open"],
        }
        for row in rows
    ]


# --- Sync health -------------------------------------------------------------------------


def sync_health(*, user, f: AnalyticsFilter) -> list[dict]:
    """Per connection: push success rate in the period, how fast its listings were ended after
    a sale elsewhere (mean and p95 seconds from recording the sale to the confirmed end), the
    share of its orders that came by webhook rather than by a pull, its last successful pull
    and its open errors (listings in error, open alerts).

    One grouped query per figure (seven in all, whatever the number of connections).
    """
    connections = ChannelConnection.objects.for_user(user).order_by("priority", "pk")
    if f.channel == MANUAL:
        return []
    if f.channel:
        connections = connections.filter(channel=f.channel)
    ids = list(connections.values_list("pk", "name", "channel", "enabled"))
    if not ids:
        return []
    pks = [pk for pk, *_rest in ids]
    in_period = Q(started_at__gte=f.start, started_at__lt=f.end)
    runs = SyncRun.objects.filter(connection_id__in=pks).filter(in_period).order_by()
    pushes = {
        row["connection_id"]: row
        for row in runs.filter(kind=SyncKind.PUSH)
        .values("connection_id")
        .annotate(
            pushes=Count("*"),
            ok=Count("pk", filter=Q(status=SyncStatus.OK)),
            failed=Count("pk", filter=Q(status__in=[SyncStatus.FAILED, SyncStatus.PARTIAL])),
        )
    }
    pulled = dict(
        runs.filter(kind=SyncKind.PULL)
        .values("connection_id")
        .annotate(n=Sum("created"))
        .values_list("connection_id", "n")
    )
    last_pull = dict(
        SyncRun.objects.filter(connection_id__in=pks, kind=SyncKind.PULL, status=SyncStatus.OK)
        .order_by()
        .values("connection_id")
        .annotate(at=Max("finished_at"))
        .values_list("connection_id", "at")
    )
    recorded = dict(
        Order.objects.filter(connection_id__in=pks, created_at__gte=f.start, created_at__lt=f.end)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    seconds = Seconds(_interval("ended_at", "item__sold_recorded_at"))
    ends = {
        row["connection_id"]: row
        for row in ChannelListing.objects.filter(
            connection_id__in=pks,
            end_reason="sold_elsewhere",
            ended_at__isnull=False,
            item__sold_recorded_at__gte=f.start,
            item__sold_recorded_at__lt=f.end,
        )
        .order_by()
        .values("connection_id")
        .annotate(ended=Count("*"), mean=Avg(seconds), p95=PercentileCont(seconds, 0.95))
    }
    in_error = dict(
        ChannelListing.objects.filter(connection_id__in=pks, actual_state=ListingState.ERROR)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    alerts = dict(
        Alert.objects.filter(connection_id__in=pks, resolved_at__isnull=True)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("*"))
        .values_list("connection_id", "n")
    )
    rows = []
    for pk, name, channel_name, enabled in ids:
        push = pushes.get(pk, {"pushes": 0, "ok": 0, "failed": 0})
        total_orders, by_pull = recorded.get(pk, 0), min(pulled.get(pk) or 0, recorded.get(pk, 0))
        end = ends.get(pk, {"ended": 0, "mean": None, "p95": None})
        rows.append(
            {
                "connection_id": pk,
                "shop": name,
                "channel": channel_name,
                "enabled": enabled,
                "pushes": push["pushes"],
                "pushes_failed": push["failed"],
                "push_success_rate": _ratio(push["ok"], push["pushes"]),
                "ends_after_sale": end["ended"],
                "end_seconds_mean": _seconds(end["mean"]),
                "end_seconds_p95": _seconds(end["p95"]),
                "orders_recorded": total_orders,
                "orders_by_webhook": total_orders - by_pull,
                "orders_by_pull": by_pull,
                "webhook_share": _ratio(total_orders - by_pull, total_orders),
                "last_successful_pull": last_pull.get(pk),
                "listings_in_error": in_error.get(pk, 0),
                "open_alerts": alerts.get(pk, 0),
            }
        )
    return rows


def sale_end_everywhere(*, user, f: AnalyticsFilter) -> dict:
    """Over the sales recorded in the period whose other listings are all confirmed ended:
    how many, and mean / p95 seconds from recording the sale to the last confirmed end."""
    elsewhere = Q(listings__end_reason="sold_elsewhere", listings__desired_state=DesiredState.ENDED)
    items = Item.objects.for_user(user).filter(sold_recorded_at__gte=f.start, sold_recorded_at__lt=f.end)
    if f.channel:
        items = items.filter(sold_on__channel=f.channel) if f.channel != MANUAL else items.filter(sold_on=None)
    per_sale = (
        items.order_by()
        .annotate(
            last_end=Max("listings__ended_at", filter=elsewhere),
            not_ended=Count(
                "listings",
                filter=elsewhere & ~Q(listings__actual_state__in=[ListingState.ENDED, ListingState.SOLD]),
            ),
        )
        .filter(last_end__isnull=False, not_ended=0)
        .annotate(took=Seconds(_interval("last_end", "sold_recorded_at")))
    )
    figures = per_sale.aggregate(sales=Count("pk"), mean=Avg("took"), p95=PercentileCont("took", 0.95))
    return {
        "sales": figures["sales"],
        "end_seconds_mean": _seconds(figures["mean"]),
        "end_seconds_p95": _seconds(figures["p95"]),
    }


def analytics_overview(*, user, f: AnalyticsFilter) -> dict:
    """Every figure at once, as the dashboard shows them."""
    return {
        "filters": f.as_dict(),
        "sales_by_channel": sales_by_channel(user=user, f=f),
        "sales_over_time": sales_over_time(user=user, f=f),
        "top_brands": top_sellers(user=user, f=f, by="brand"),
        "top_categories": top_sellers(user=user, f=f, by="category"),
        "top_items": top_sellers(user=user, f=f, by="item"),
        "sell_through": sell_through(user=user, f=f),
        "stock_by_state": stock_by_state(user=user, f=f),
        "stock_by_connection": stock_by_connection(user=user, f=f),
        "platforms": platform_distribution(user=user, f=f),
        "orders_by_status": orders_by_status(user=user, f=f),
        "sync_health": sync_health(user=user, f=f),
        "sale_end_everywhere": sale_end_everywhere(user=user, f=f),
    }
