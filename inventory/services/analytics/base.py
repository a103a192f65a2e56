"""Filters of every figure (period, channel, bucket) and the database pieces they share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import (
    Aggregate,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
)
from django.utils import timezone

from ...channels import channel_names

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


def interval(later, earlier) -> ExpressionWrapper:
    return ExpressionWrapper(F(later) - F(earlier), output_field=DurationField())


def money(value) -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal("0.01"))


def ratio(part, whole, places: str = "0.0001") -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part or 0) / Decimal(whole)).quantize(Decimal(places))


def days(duration: dt.timedelta | None) -> Decimal | None:
    if duration is None:
        return None
    return (Decimal(duration.total_seconds()) / Decimal(86400)).quantize(Decimal("0.1"))


def seconds_of(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.1"))
