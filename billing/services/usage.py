"""Usage: cheap counters on hot paths, a periodic roll-up into UsagePeriod, daily overage to Stripe.

Hot paths (an API request, a PDF) only increment a cache counter; nothing writes the
database per request. The roll-up moves those counters into the period row and records
peaks of what is counted from the database (active listings, channels).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from django.apps import apps
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Account
from config.cache import incr_with_ttl

from .. import client
from ..models import OverageReport, Subscription, UsagePeriod
from ..selectors import (
    CACHED_COUNTERS,
    BillingState,
    active_listing_count,
    banner_refresh,
    billing_state,
    connected_channel_count,
    counter_key,
    orders_imported_count,
    sync_run_count,
    usage_period_bounds,
)

log = logging.getLogger(__name__)
COUNTER_TTL_SECONDS = 7 * 24 * 3600  # far longer than the roll-up interval


def usage_record(account_id: int | None, name: str, amount: int = 1) -> None:
    """Count something an account did (api_requests, sync_runs, pdfs_generated) in the cache.
    A cache failure is logged, never raised: usage counting must not break the work it counts."""
    if not account_id or amount <= 0:
        return
    if name not in CACHED_COUNTERS:
        raise ValueError(f"Unknown usage counter {name!r}; use one of {', '.join(CACHED_COUNTERS)}.")
    key = counter_key(name, account_id)
    try:
        incr_with_ttl(key, COUNTER_TTL_SECONDS, amount)
    except Exception:
        log.warning("billing: could not count %s for account %s", name, account_id, exc_info=True)


def _take_counters(account_id: int) -> dict[str, int]:
    """Read and subtract the cached counters (increments made meanwhile stay for next time)."""
    keys = {name: counter_key(name, account_id) for name in CACHED_COUNTERS}
    values = cache.get_many(list(keys.values()))
    taken = {}
    for name, key in keys.items():
        amount = int(values.get(key) or 0)
        if amount:
            cache.decr(key, amount)
            taken[name] = amount
    return taken


def _give_back(account_id: int, taken: dict[str, int]) -> None:
    for name, amount in taken.items():
        usage_record(account_id, name, amount)


def _model(label: str):
    """A model of an app that may not be installed yet (the channel engine's rows)."""
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def usage_rollup_account(account_id: int, *, now: datetime | None = None, state: BillingState | None = None) -> None:
    """Bring the account's current period row up to date."""
    now = now or timezone.now()
    state = state or billing_state(account_id, now=now)
    start, end = usage_period_bounds(state, now)
    active = active_listing_count(account_id)
    channels = connected_channel_count(account_id)
    orders = orders_imported_count(account_id, start, end)
    sync_runs = sync_run_count(account_id, start, end)
    taken = _take_counters(account_id)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    UsagePeriod.objects.get_or_create(
                        account_id=account_id, period_start=start, defaults={"period_end": end}
                    )
            except IntegrityError:
                pass
            updates = {
                "peak_active_listings": Greatest(F("peak_active_listings"), active),
                "peak_channels": Greatest(F("peak_channels"), channels),
                "orders_imported": orders,
                "updated_at": now,
            }
            for name, amount in taken.items():
                updates[name] = F(name) + amount
            if sync_runs is not None:
                updates["sync_runs"] = sync_runs
            UsagePeriod.objects.filter(account_id=account_id, period_start=start).update(**updates)
    except Exception:
        _give_back(account_id, taken)
        raise


ROLLUP_LOCK = "billing:usage-rollup-running"


def usage_rollup(*, now: datetime | None = None) -> int:
    """Roll up every account's usage and refresh the admin payment banners. Returns accounts done.

    One roll-up at a time (a cache lock): two would both take the same cached counters.
    """
    if not cache.add(ROLLUP_LOCK, 1, 15 * 60):
        log.info("billing: a usage roll-up is already running")
        return 0
    done = 0
    try:
        for account_id in Account.objects.order_by("pk").values_list("pk", flat=True):
            try:
                state = billing_state(account_id, now=now)
                usage_rollup_account(account_id, now=now, state=state)
                banner_refresh(account_id)
                done += 1
            except Exception:  # one account's failure must not stop the others
                log.exception("billing: usage roll-up failed for account %s", account_id)
    finally:
        cache.delete(ROLLUP_LOCK)
    return done


# --- BUSINESS overage -------------------------------------------------------------------------


def overage_report_day(*, account_id: int, day: date) -> OverageReport | None:
    """Report one day of active listings above the plan as a Stripe meter event, once.

    The count is taken when the report is first made (the daily check just after the day
    ends) and frozen in the row; a retry sends the same identifier and value, and Stripe
    deduplicates by identifier. Returns None when there is nothing to report.
    """
    state = billing_state(account_id)
    plan = state.plan
    if not plan.allows_listing_overage or not state.has_live_stripe_subscription or state.restriction:
        return None
    identifier = f"overage-{account_id}-{day.isoformat()}"
    with transaction.atomic():
        report = OverageReport.objects.select_for_update().filter(account_id=account_id, day=day).first()
        if report is None:
            active = active_listing_count(account_id)
            included = plan.max_active_listings or 0
            if active <= included:
                return None
            report = OverageReport.objects.create(
                account_id=account_id,
                day=day,
                active_listings=active,
                included_listings=included,
                quantity=active - included,
                meter_event_name=plan.overage_meter_event_name,
                identifier=identifier,
            )
            report = OverageReport.objects.select_for_update().get(pk=report.pk)
        if report.sent_at:
            return report
        end_of_day = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        try:
            client.meter_event_create(
                event_name=report.meter_event_name,
                customer=state.stripe_customer_id,
                value=report.quantity,
                identifier=report.identifier,
                timestamp=int(min(end_of_day, timezone.now()).timestamp()),
                idempotency_key=f"meter-event:{report.identifier}",
            )
        except Exception as error:
            report.last_error = str(getattr(error, "message", error))[:2000]
            report.save(update_fields=["last_error"])
            log.warning("billing: overage report %s not sent: %s", report.identifier, report.last_error)
            return report
        report.sent_at = timezone.now()
        report.last_error = ""
        report.save(update_fields=["sent_at", "last_error"])
    return report


def overage_report_all(*, day: date | None = None) -> list[OverageReport]:
    """Report yesterday's overage (or `day`'s) for every account on a plan that bills overage.

    Also re-sends reports of the last week that failed to send.
    """
    day = day or (timezone.now().astimezone(UTC).date() - timedelta(days=1))
    reports = []
    account_ids = (
        Subscription.objects.exclude(stripe_subscription_id="")
        .exclude(plan__overage_meter_event_name="")
        .values_list("account_id", flat=True)
    )
    for account_id in list(account_ids):
        report = overage_report_day(account_id=account_id, day=day)
        if report is not None:
            reports.append(report)
    unsent = OverageReport.objects.filter(sent_at__isnull=True, day__gte=day - timedelta(days=7), day__lt=day)
    for account_id, unsent_day in list(unsent.values_list("account_id", "day")):
        report = overage_report_day(account_id=account_id, day=unsent_day)
        if report is not None:
            reports.append(report)
    return reports
