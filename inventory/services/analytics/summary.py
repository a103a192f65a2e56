"""Summarised figures: each figure of an account and filter stored with the time it was computed.

Live, at 100,000 items and 50,000 orders, a figure costs 0.1-1 s (a year of sales is most of
the order lines; the "now" figures read every live listing with its item), and the dashboard
needs twelve of them. So `figures_get` answers from `AnalyticsSummary` rows younger than
settings.ANALYTICS_SUMMARY_MAX_AGE, computes the missing or older ones live and stores them,
and says how old the oldest figure it used is (`as_of`). Beat's
`inventory.analytics_summaries_refresh` (every 5 minutes) recomputes the figures read in the
last day, a preset period ("last 30 days") moved on to today, so what people look at is
usually a few minutes old and never older than the maximum age. `fresh=True` (the
dashboard's "Refresh now", the API's `?fresh=1`) recomputes them on demand.

A stored figure is exactly the live figure as of `computed_at`: it is the same function's
answer, kept with its decimals, dates and durations. Summaries belong to one account (keyed
and row-level-secured by it); a platform superuser, whose figures span every account, is
always answered live.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from ...models import AnalyticsSummary
from .base import PERIODS, AnalyticsFilter
from .sales import sales_by_channel, sales_over_time, sell_through, top_sellers
from .stock import orders_by_status, platform_distribution, stock_by_connection, stock_by_state
from .sync import sale_end_everywhere, sync_health

log = logging.getLogger(__name__)

FIGURES: dict[str, Callable[..., Any]] = {
    "sales_by_channel": lambda user, f: sales_by_channel(user=user, f=f),
    "sales_over_time": lambda user, f: sales_over_time(user=user, f=f),
    "top_brands": lambda user, f: top_sellers(user=user, f=f, by="brand"),
    "top_categories": lambda user, f: top_sellers(user=user, f=f, by="category"),
    "top_items": lambda user, f: top_sellers(user=user, f=f, by="item"),
    "sell_through": lambda user, f: sell_through(user=user, f=f),
    "stock_by_state": lambda user, f: stock_by_state(user=user, f=f),
    "stock_by_connection": lambda user, f: stock_by_connection(user=user, f=f),
    "platforms": lambda user, f: platform_distribution(user=user, f=f),
    "orders_by_status": lambda user, f: orders_by_status(user=user, f=f),
    "sync_health": lambda user, f: sync_health(user=user, f=f),
    "sale_end_everywhere": lambda user, f: sale_end_everywhere(user=user, f=f),
}
TOP_FIGURES = {"brand": "top_brands", "category": "top_categories", "item": "top_items"}
READ_MARK = dt.timedelta(minutes=1)  # read_at is only moved when older: one UPDATE a minute at most
REFRESH_WINDOW = dt.timedelta(days=1)  # beat refreshes what was read this recently...
FORGET_AFTER = dt.timedelta(days=2)  # ...and deletes what nobody read for this long


def max_age() -> dt.timedelta:
    return dt.timedelta(seconds=settings.ANALYTICS_SUMMARY_MAX_AGE)


@dataclass(frozen=True)
class Summarised:
    """Figures by name, and how old they are: `as_of` is when the oldest of them was computed."""

    figures: dict[str, Any]
    as_of: dt.datetime
    summarised: bool  # False: computed live for this answer (a superuser, or summaries switched off)

    @property
    def age_seconds(self) -> int:
        return max(0, int((timezone.now() - self.as_of).total_seconds()))


@dataclass(frozen=True)
class AccountReader:
    """Who beat computes an account's figures for: `for_user` sees exactly that account's rows,
    as it does for any of the account's own (non-superuser) people."""

    account: Any
    is_authenticated: bool = True
    is_superuser: bool = False

    @property
    def account_id(self) -> int:
        return self.account.pk


# --- Filters as keys ----------------------------------------------------------------------


def filter_key(f: AnalyticsFilter) -> str:
    return f"{f.start_date.isoformat()}..{f.end_date.isoformat()}|{f.channel or ''}|{f.bucket}"


def filter_from_key(key: str) -> AnalyticsFilter:
    dates, channel, bucket = key.split("|")
    start, end = dates.split("..")
    return AnalyticsFilter(
        start_date=dt.date.fromisoformat(start),
        end_date=dt.date.fromisoformat(end),
        channel=channel or None,
        bucket=bucket,
    )


def filter_period(params: Mapping[str, str]) -> str:
    """The preset a filter's parameters ask for ("30d" when they give no dates), "" for dates."""
    if (params.get("start") or "").strip() or (params.get("end") or "").strip():
        return ""
    period = (params.get("period") or "").strip() or "30d"
    return period if period in PERIODS else ""


def filter_moved_to(f: AnalyticsFilter, period: str, today: dt.date) -> AnalyticsFilter:
    """A preset period ending `today` (the same channel and bucket); dates stay as they are."""
    if not period:
        return f
    return AnalyticsFilter(
        start_date=today - dt.timedelta(days=PERIODS[period] - 1), end_date=today, channel=f.channel, bucket=f.bucket
    )


# --- Stored values ------------------------------------------------------------------------


def pack(value: Any) -> Any:
    """JSON for a figure's answer, its decimals, datetimes, dates and durations tagged."""
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$seconds": value.total_seconds()}
    if isinstance(value, dict):
        return {key: pack(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [pack(item) for item in value]
    return value


def unpack(value: Any) -> Any:
    if isinstance(value, list):
        return [unpack(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (tag, text), *_ = value.items()
            if tag == "$decimal":
                return Decimal(text)
            if tag == "$datetime":
                return dt.datetime.fromisoformat(text)
            if tag == "$date":
                return dt.date.fromisoformat(text)
            if tag == "$seconds":
                return dt.timedelta(seconds=text)
        return {key: unpack(item) for key, item in value.items()}
    return value


# --- Reading and refreshing ------------------------------------------------------------


def summarisable(user) -> bool:
    """An account's own person (a superuser's figures span every account: always live)."""
    return (
        settings.ANALYTICS_SUMMARY_MAX_AGE > 0
        and user.is_authenticated
        and not user.is_superuser
        and user.account_id is not None
    )


def _store(
    account_id: int,
    f: AnalyticsFilter,
    period: str,
    computed: dict[str, Any],
    now: dt.datetime,
    read_at: Mapping[str, dt.datetime] | None = None,
) -> None:
    """Insert or replace these figures; `read_at` (beat's refresh) keeps when each was last
    read, so a figure nobody looks at any more is not refreshed for ever."""
    AnalyticsSummary.objects.bulk_create(
        [
            AnalyticsSummary(
                account_id=account_id,
                figure=name,
                filter_key=filter_key(f),
                period=period,
                rows=pack(rows),
                computed_at=now,
                read_at=read_at[name] if read_at else now,
            )
            for name, rows in computed.items()
        ],
        update_conflicts=True,
        unique_fields=["account", "filter_key", "figure"],
        update_fields=["rows", "computed_at", "read_at", "period"],
    )


def figures_get(*, user, f: AnalyticsFilter, names: Iterable[str], period: str = "", fresh: bool = False) -> Summarised:
    """These figures (names of FIGURES) for the user and filter: stored ones younger than the
    maximum age, the others computed now and stored. `period` is the preset the filter came
    from ("" for dates), so beat can move it to today; `fresh` recomputes every one."""
    names = list(names)
    now = timezone.now()
    if not summarisable(user):
        return Summarised({name: FIGURES[name](user, f) for name in names}, now, summarised=False)
    stored = (
        {}
        if fresh
        else {
            row.figure: row
            for row in AnalyticsSummary.objects.filter(
                account_id=user.account_id, filter_key=filter_key(f), figure__in=names, computed_at__gte=now - max_age()
            ).only("id", "figure", "rows", "computed_at", "read_at")
        }
    )
    computed = {name: FIGURES[name](user, f) for name in names if name not in stored}
    if computed:
        _store(user.account_id, f, period, computed, now)
    unread = [row.pk for row in stored.values() if row.read_at < now - READ_MARK]
    if unread:
        AnalyticsSummary.objects.filter(pk__in=unread).update(read_at=now)
    figures = {name: computed[name] if name in computed else unpack(stored[name].rows) for name in names}
    as_of = min([row.computed_at for row in stored.values()], default=now)
    return Summarised(figures, as_of, summarised=True)


def summaries_refresh(*, now: dt.datetime | None = None, older_than: dt.timedelta | None = None) -> int:
    """Recompute every summary read in the last day whose figure is older than `older_than`
    (default: 4 minutes, so a refresh made on demand is not redone), moving preset periods on
    to today; forget those unread for two days. Returns how many figures it computed."""
    from accounts.models import Account
    from accounts.rls import account_scope

    now = now or timezone.now()
    older_than = dt.timedelta(minutes=4) if older_than is None else older_than
    AnalyticsSummary.objects.filter(read_at__lt=now - FORGET_AFTER).delete()
    groups: dict[tuple[int, str, str], dict[str, dt.datetime]] = defaultdict(dict)
    # Oldest first: if the task runs out of time, the next run carries on with the rest.
    for account_id, key, period, figure, read_at in (
        AnalyticsSummary.objects.filter(read_at__gte=now - REFRESH_WINDOW, computed_at__lt=now - older_than)
        .order_by("computed_at", "id")
        .values_list("account_id", "filter_key", "period", "figure", "read_at")
    ):
        groups[(account_id, key, period)][figure] = read_at
    today = timezone.localdate(now)
    accounts = Account.objects.in_bulk({account_id for account_id, _key, _period in groups})
    done = 0
    for (account_id, key, period), figures in groups.items():
        account = accounts.get(account_id)
        if account is None:
            continue
        f = filter_moved_to(filter_from_key(key), period, today)
        reader = AccountReader(account)
        with account_scope(account_id):
            computed = {name: FIGURES[name](reader, f) for name in figures if name in FIGURES}
            _store(account_id, f, period, computed, now, read_at=figures)
            if filter_key(f) != key:  # yesterday's "last 30 days": today's replaces it
                AnalyticsSummary.objects.filter(account_id=account_id, filter_key=key, figure__in=figures).delete()
        done += len(computed)
    log.info("analytics summaries: %d figures in %d filters refreshed", done, len(groups))
    return done
