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

from .base import (
    BUCKETS,
    FILTER_PARAMS,
    MANUAL,
    PERIODS,
    AnalyticsFilter,
    PercentileCont,
    analytics_channels,
    analytics_filter_parse,
)
from .sales import (
    TOP_DIMENSIONS,
    sales_by_channel,
    sales_lines,
    sales_orders,
    sales_over_time,
    sell_through,
    top_sellers,
)
from .stock import orders_by_status, platform_distribution, stock_by_connection, stock_by_state
from .summary import FIGURES, TOP_FIGURES, Summarised, figures_get, filter_period, summaries_refresh
from .sync import sale_end_everywhere, sync_health

__all__ = [
    "BUCKETS",
    "FIGURES",
    "FILTER_PARAMS",
    "MANUAL",
    "PERIODS",
    "TOP_DIMENSIONS",
    "TOP_FIGURES",
    "AnalyticsFilter",
    "PercentileCont",
    "Summarised",
    "analytics_channels",
    "analytics_filter_parse",
    "analytics_overview",
    "analytics_overview_summarised",
    "figures_get",
    "filter_period",
    "orders_by_status",
    "platform_distribution",
    "sale_end_everywhere",
    "sales_by_channel",
    "sales_lines",
    "sales_orders",
    "sales_over_time",
    "sell_through",
    "stock_by_connection",
    "stock_by_state",
    "summaries_refresh",
    "sync_health",
    "top_sellers",
]


def analytics_overview_summarised(*, user, f: AnalyticsFilter, period: str = "", fresh: bool = False) -> Summarised:
    """Every figure the dashboard shows, from the summaries (see summary.py): one query when
    they are all younger than settings.ANALYTICS_SUMMARY_MAX_AGE."""
    return figures_get(user=user, f=f, names=FIGURES, period=period, fresh=fresh)


def analytics_overview(*, user, f: AnalyticsFilter) -> dict:
    """Every figure at once, computed live."""
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
