"""The admin index as a working view: what needs attention today, and today's sales per shop."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.humanize.templatetags.humanize import intcomma
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from .selectors import attention_today, sales_today


def dashboard_context(request) -> dict:
    user = request.user
    if not user.is_authenticated or (user.account_id is None and not user.is_superuser):
        return {}
    counts = attention_today(user=user)
    items = reverse("admin:inventory_item_changelist")
    tiles = [
        (
            "Double sales",
            counts.double_sales,
            reverse("admin:inventory_conflict_changelist") + "?status__exact=open&kind__exact=double_sale",
            "Settle them first: one buyer must be cancelled and refunded.",
        ),
        (
            "Listings in error",
            counts.listings_in_error,
            reverse("admin:inventory_channellisting_changelist") + "?state=error",
            "A shop refused or could not be reached: open one to see why, then retry.",
        ),
        (
            "Orders to ship",
            counts.orders_to_ship,
            reverse("admin:inventory_order_changelist") + "?progress=to_ship",
            "Paid and not shipped yet.",
        ),
        (
            "Items to review",
            counts.items_to_review,
            items + "?needs_review__exact=1",
            "Imported from a shop: check them, then mark them reviewed.",
        ),
        ("Low stock", counts.low_stock, items + "?stock=low", "Multi-unit stock with 2 or fewer left."),
        (
            "Open alerts",
            counts.open_alerts,
            reverse("admin:inventory_alert_changelist") + "?state=open",
            "Everything the sync raised that nobody has acknowledged.",
        ),
    ]
    sales = [
        {
            "shop": row["connection__name"] or ("In the shop" if row["channel"] == "manual" else row["channel"]),
            "orders": row["orders"],
            "total": _money(row["total"], row["currency"]),
        }
        for row in sales_today(user=user)
    ]
    return {
        "dashboard_tiles": [
            {"label": label, "count": n, "url": url, "help": help_text, "slug": label.lower().replace(" ", "-")}
            for label, n, url, help_text in tiles
        ],
        "sales_today": sales,
        "orders_url": reverse("admin:inventory_order_changelist"),
    }


def _money(amount, currency: str) -> str:
    """Money with two decimals and thousands separators, whatever the database hands back
    (SQLite sums decimals as floats)."""
    value = Decimal(str(amount or 0)).quantize(Decimal("0.01"))
    return f"{intcomma(f'{value:.2f}')}\N{NO-BREAK SPACE}{currency}"


# --- Analytics: the figures of services/analytics.py, charted and linked ------------------

DASH = "\N{EN DASH}"  # a figure that cannot be computed (nothing sold, no costs)
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_BOTTOM = 760, 190, 56, 22
BAR_ROW, BAR_LABEL, BAR_WIDTH = 20, 124, 180


def analytics_context(request) -> dict:
    """The analytics section of the admin index: filters, figures as SVG charts and tables,
    each number a link to the admin list it counts. Empty for users without an account."""
    from django.core.exceptions import ValidationError

    from billing.models import Feature
    from billing.selectors import billing_state_cached

    from .services import analytics as figures

    user = request.user
    if not user.is_authenticated or (user.account_id is None and not user.is_superuser):
        return {}
    # Showing figures is not growth: the cached plan (what the header banner uses) is enough here.
    if user.account_id is not None and not billing_state_cached(user.account_id).plan.has(Feature.ANALYTICS):
        return {
            "analytics_locked": "Sales analytics is not in your plan: Pro and Business include it.",
            "billing_url": reverse("admin:billing_account_billing"),
        }
    errors: dict = {}
    params = request.GET
    try:
        f = figures.analytics_filter_parse(params, also_allowed=("fresh",))
    except ValidationError as error:
        errors = error.message_dict
        params = {}
        f = figures.analytics_filter_parse(params)
    summarised = figures.analytics_overview_summarised(
        user=user, f=f, period=figures.filter_period(params), fresh=bool(params.get("fresh"))
    )
    data = summarised.figures
    links = _Links(f)
    currency = _main_currency(data["sales_by_channel"], user)
    sales = [row for row in data["sales_by_channel"] if row["currency"] == currency]
    series = [row for row in data["sales_over_time"] if row["currency"] == currency]
    totals = _sales_totals(sales)
    live_total = sum(row["live"] for row in data["platforms"])
    overall = next((row for row in data["sell_through"] if row["channel"] in ("all", f.channel)), None)
    ended = data["sale_end_everywhere"]
    return {
        "analytics": {
            "filters": f,
            "errors": [f"{field}: {' '.join(messages)}" for field, messages in errors.items()],
            "as_of": _as_of(summarised),
            "refresh_url": reverse("admin:index")
            + "?"
            + urlencode({**{k: v for k, v in request.GET.items() if k != "fresh"}, "fresh": "1"}),
            "periods": [
                (f"Last {days} days", links.index(period=key), f.days == days and f.end_date == timezone.localdate())
                for key, days in figures.PERIODS.items()
            ],
            "channels": [(name, channel_label(name)) for name in figures.analytics_channels()],
            "currency": currency,
            "other_currencies": sorted({row["currency"] for row in data["sales_by_channel"]} - {currency}),
            "kpis": [
                ("Revenue", _money(totals["revenue"], currency), links.orders()),
                ("Orders", intcomma(totals["orders"]), links.orders()),
                ("Units sold", intcomma(totals["units"]), links.orders()),
                ("Average sale", _money_or_dash(totals["average_sale_price"], currency), links.orders()),
                ("Margin", _margin_text(totals, currency), links.orders()),
                ("Sell-through", _percent(overall["sell_through_rate"]) if overall else DASH, links.orders()),
                ("Live listings", intcomma(live_total), links.listings(state="live")),
                (
                    "Ended everywhere (p95)",
                    _duration(ended["end_seconds_p95"]),
                    links.items(state__exact="sold", **links.recorded()),
                ),
            ],
            "revenue_chart": _column_chart(series, f, links, currency),
            "sales_rows": [
                {
                    **row,
                    "label": channel_label(row["channel"]),
                    "url": links.orders(channel=row["channel"]),
                    "revenue_text": _money(row["revenue"], row["currency"]),
                    "asp_text": _money_or_dash(row["average_sale_price"], row["currency"]),
                    "margin_text": _margin_text(row, row["currency"]),
                }
                for row in data["sales_by_channel"]
            ],
            "sales_bars": _bar_chart(
                [
                    (
                        channel_label(r["channel"]),
                        r["revenue"],
                        _money(r["revenue"], currency),
                        links.orders(r["channel"]),
                    )
                    for r in sales
                ]
            ),
            "top": [
                ("Brands", "Brand", _top_rows(data["top_brands"], lambda r: links.items(brand=r["name"]), currency)),
                (
                    "Categories",
                    "Category",
                    _top_rows(data["top_categories"], lambda r: links.items(category=r["name"]), currency),
                ),
                (
                    "Items",
                    "Item",
                    _top_rows(
                        data["top_items"],
                        lambda r: reverse("admin:inventory_item_change", args=[r["item_id"]]),
                        currency,
                    ),
                ),
            ],
            "sell_through": [
                {
                    **row,
                    "label": "All channels" if row["channel"] == "all" else channel_label(row["channel"]),
                    "rate": _percent(row["sell_through_rate"]),
                    "url": links.orders(None if row["channel"] == "all" else row["channel"]),
                    "stock_url": links.listings(state="live", channel=row["channel"])
                    if row["channel"] not in ("all", figures.MANUAL)
                    else links.items(state__exact="active"),
                }
                for row in data["sell_through"]
            ],
            "stock_states": [
                {
                    **row,
                    "url": links.items(state__exact=row["state"]),
                    "value_text": _money(row["value"], currency),
                    "cost_text": _money(row["cost_value"], currency),
                }
                for row in data["stock_by_state"]
            ],
            "stock_bars": _bar_chart(
                [
                    (
                        row["state"].title(),
                        row["value"],
                        _money(row["value"], currency),
                        links.items(state__exact=row["state"]),
                    )
                    for row in data["stock_by_state"]
                ]
            ),
            "stock_shops": [
                {
                    **row,
                    "url": links.listings(state="live", shop=row["connection_id"]),
                    "value_text": _money(row["value"], row["currency"]),
                    "cost_text": _money(row["cost_value"], row["currency"]),
                }
                for row in data["stock_by_connection"]
            ],
            "platform_bars": _bar_chart(
                [
                    (
                        row["shop"],
                        row["live"],
                        f"{intcomma(row['live'])} ({_percent(row['share'])})",
                        links.listings(state="live", shop=row["connection_id"]),
                    )
                    for row in data["platforms"]
                ]
            ),
            "platforms": [
                {
                    **row,
                    "share_text": _percent(row["share"]),
                    "live_url": links.listings(state="live", shop=row["connection_id"]),
                    "pending_url": links.listings(state="pending", shop=row["connection_id"]),
                    "error_url": links.listings(state="error", shop=row["connection_id"]),
                }
                for row in data["platforms"]
            ],
            "order_statuses": [
                {
                    **row,
                    "url": links.orders(status__exact=row["status"], all_orders=True),
                    "total_text": _money(row["total"], row["currency"]).removesuffix(f"\N{NO-BREAK SPACE}{currency}"),
                }
                for row in data["orders_by_status"]
            ],
            "sync_rows": [
                {
                    **row,
                    "label": channel_label(row["channel"]),
                    "push_rate": _percent(row["push_success_rate"]),
                    "pushes_url": links.runs(row["connection_id"], kind__exact="push"),
                    "failed_url": links.runs(row["connection_id"], kind__exact="push", status__in="failed,partial"),
                    "end_mean": _duration(row["end_seconds_mean"]),
                    "end_p95": _duration(row["end_seconds_p95"]),
                    "webhook_text": _percent(row["webhook_share"]),
                    "orders_url": links.orders(row["channel"], connection__id__exact=row["connection_id"]),
                    "pull_url": links.runs(row["connection_id"], period=False, kind__exact="pull", status__exact="ok"),
                    "error_url": links.listings(state="error", shop=row["connection_id"]),
                    "alerts_url": reverse("admin:inventory_alert_changelist")
                    + "?"
                    + urlencode({"state": "open", "connection__id__exact": row["connection_id"]}),
                }
                for row in data["sync_health"]
            ],
            "ended": {
                **ended,
                "mean": _duration(ended["end_seconds_mean"]),
                "p95": _duration(ended["end_seconds_p95"]),
            },
        }
    }


def _as_of(summarised) -> str:
    """How old the figures are: "Figures as of 14:05 (3 min ago)" (the summaries, summary.py)."""
    if not summarised.summarised:
        return "Figures computed live for this page."
    minutes = summarised.age_seconds // 60
    ago = "just now" if minutes < 1 else f"{minutes} min ago"
    when = timezone.localtime(summarised.as_of)
    return f"Figures as of {when:%H:%M} ({ago}); refreshed every 5 minutes while people look at them."


def channel_label(name: str) -> str:
    from .channels import channel

    if name == "manual":
        return "In the shop"
    try:
        return getattr(channel(name), "LABEL", name)
    except LookupError:  # a channel no longer configured: its old orders keep their name
        return name


class _Links:
    """URLs of the admin lists behind each figure, with the period and channel applied."""

    def __init__(self, f):
        self.f = f

    def index(self, **params) -> str:
        query = {"channel": self.f.channel or "", **params}
        return reverse("admin:index") + "?" + urlencode({k: v for k, v in query.items() if v})

    def _period(self, field: str) -> dict:
        return {f"{field}__gte": self.f.start.isoformat(), f"{field}__lt": self.f.end.isoformat()}

    def recorded(self) -> dict:
        return self._period("sold_recorded_at")

    def orders(self, channel: str | None = None, *, all_orders: bool = False, **params) -> str:
        query = {} if all_orders else {"progress": "sales"}
        channel = channel or self.f.channel
        if channel:
            query["channel__exact"] = channel
        query.update(self._period("placed_at"), **params)
        return reverse("admin:inventory_order_changelist") + "?" + urlencode(query)

    def items(self, **params) -> str:
        return reverse("admin:inventory_item_changelist") + "?" + urlencode(params)

    def listings(self, *, channel: str | None = None, **params) -> str:
        channel = channel or self.f.channel
        if channel and channel != "manual" and "shop" not in params:
            params["channel"] = channel
        return reverse("admin:inventory_channellisting_changelist") + "?" + urlencode(params)

    def runs(self, connection_id: int, *, period: bool = True, **params) -> str:
        query = {"shop": connection_id, **params}
        if period:
            query.update(self._period("started_at"))
        return reverse("admin:inventory_syncrun_changelist") + "?" + urlencode(query)


def _main_currency(rows: list[dict], user) -> str:
    """The currency with the most revenue (the charts are drawn in one currency)."""
    by_currency: dict[str, Decimal] = {}
    for row in rows:
        by_currency[row["currency"]] = by_currency.get(row["currency"], Decimal("0")) + row["revenue"]
    if by_currency:
        return max(by_currency, key=lambda c: by_currency[c])
    account = getattr(user, "account", None)
    return getattr(account, "default_currency", None) or "USD"


def _sales_totals(rows: list[dict]) -> dict:
    totals = {k: sum(r[k] for r in rows) for k in ("orders", "units", "costed_units")}
    for key in ("revenue", "costed_revenue", "cost"):
        totals[key] = sum((r[key] for r in rows), Decimal("0"))
    totals["average_sale_price"] = totals["revenue"] / totals["units"] if totals["units"] else None
    totals["margin"] = totals["costed_revenue"] - totals["cost"] if totals["costed_units"] else None
    totals["margin_rate"] = (
        totals["margin"] / totals["costed_revenue"] if totals["costed_units"] and totals["costed_revenue"] else None
    )
    return totals


def _top_rows(rows: list[dict], url, currency: str) -> list[dict]:
    """Money in the main currency without its code (the column header names it)."""
    return [
        {
            **row,
            "url": url(row),
            "revenue_text": _money(row["revenue"], row["currency"]).removesuffix(f"\N{NO-BREAK SPACE}{currency}"),
            "label": row["name"] or "(none)",
        }
        for row in rows
    ]


def _column_chart(series: list[dict], f, links: _Links, currency: str) -> dict:
    """Revenue per bucket as SVG columns: geometry here, drawing in the template."""
    import datetime as dt

    plot_w, plot_h = CHART_WIDTH - CHART_LEFT - 8, CHART_HEIGHT - CHART_BOTTOM - 10
    top = max((row["revenue"] for row in series), default=Decimal("0")) or Decimal("1")
    n = max(len(series), 1)
    step = plot_w / n
    width = max(step * 0.8, 1)
    columns = []
    for i, row in enumerate(series):
        start = dt.date.fromisoformat(row["bucket"])
        end = _bucket_end(start, f.bucket)
        h = float(row["revenue"] / top) * plot_h
        columns.append(
            {
                "x": round(CHART_LEFT + i * step + (step - width) / 2, 1),
                "y": round(10 + plot_h - h, 1),
                "w": round(width, 1),
                "h": round(h, 1),
                "tip": f"{start:%d %b %Y}: {_money(row['revenue'], currency)}, {row['orders']} orders",
                "url": reverse("admin:inventory_order_changelist")
                + "?"
                + urlencode(
                    {
                        "progress": "sales",
                        **({"channel__exact": f.channel} if f.channel else {}),
                        "placed_at__gte": _midnight(start).isoformat(),
                        "placed_at__lt": _midnight(end).isoformat(),
                    }
                ),
            }
        )
    every = max(1, round(n / 6))
    labels = [
        {
            "x": round(CHART_LEFT + i * step + step / 2, 1),
            "text": dt.date.fromisoformat(row["bucket"]).strftime("%d %b"),
        }
        for i, row in enumerate(series)
        if i % every == 0
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "right": CHART_WIDTH - 8,
        "top_y": 10,
        "base_y": 10 + plot_h,
        "label_y": CHART_HEIGHT - 6,
        "middle_x": CHART_WIDTH // 2,
        "middle_y": CHART_HEIGHT // 2,
        "top_text": _short_money(top if series and any(r["revenue"] for r in series) else Decimal("0")),
        "columns": columns,
        "labels": labels,
        "empty": not any(row["revenue"] for row in series),
    }


def _bar_chart(rows: list[tuple[str, object, str, str]]) -> dict:
    """Horizontal bars (label, value, value text, link), longest = BAR_WIDTH."""
    top = max((value for _l, value, _t, _u in rows), default=0) or 1
    bars = []
    for i, (label, value, text, url) in enumerate(rows):
        w = float(value) / float(top) * BAR_WIDTH
        bars.append(
            {
                "y": i * BAR_ROW,
                "text_y": i * BAR_ROW + 14,
                "label": label if len(label) <= 18 else label[:17] + "\N{HORIZONTAL ELLIPSIS}",
                "w": round(max(w, 1 if value else 0), 1),
                "value_x": round(BAR_LABEL + max(w, 0) + 6, 1),
                "text": text,
                "url": url,
            }
        )
    return {
        "bars": bars,
        "height": max(len(rows), 1) * BAR_ROW,
        "width": BAR_LABEL + BAR_WIDTH + 120,
        "label_x": BAR_LABEL - 8,
        "bar_x": BAR_LABEL,
    }


def _bucket_end(start, bucket: str):
    import datetime as dt

    if bucket == "day":
        return start + dt.timedelta(days=1)
    if bucket == "week":
        return start + dt.timedelta(days=7)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _midnight(day):
    import datetime as dt

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _money_or_dash(amount, currency: str) -> str:
    return DASH if amount is None else _money(amount, currency)


def _margin_text(row: dict, currency: str) -> str:
    if row.get("margin") is None:
        return DASH + " (no costs)"
    rate = row.get("margin_rate")
    return _money(row["margin"], currency) + (f" ({_percent(rate)})" if rate is not None else "")


def _percent(rate) -> str:
    return DASH if rate is None else f"{Decimal(rate) * 100:.1f}\N{NO-BREAK SPACE}%"


def _duration(seconds) -> str:
    if seconds is None:
        return DASH
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f}\N{NO-BREAK SPACE}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}\N{NO-BREAK SPACE}min"
    return f"{seconds / 3600:.1f}\N{NO-BREAK SPACE}h"


def _short_money(amount: Decimal) -> str:
    value = float(amount)
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:,.0f}"
