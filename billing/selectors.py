"""Reading billing: which plan applies to an account now, what it uses, what it could buy.

`billing_state` is the single answer to "which plan's limits apply": the subscribed plan
while paid (or within the payment grace period), the FREE plan's limits once the grace
period is over or the subscription ended. Nothing here writes to the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account

from .models import (
    ENDED_STATUSES,
    LIMIT_FIELDS,
    PAID_STATUSES,
    PAYMENT_DUE_STATUSES,
    Feature,
    Limit,
    Plan,
    PlanCode,
    Subscription,
    SubscriptionStatus,
    UsagePeriod,
)

STATE_CACHE_SECONDS = 60
BANNER_CACHE_SECONDS = 36 * 3600  # refreshed by every sync and by the periodic roll-up


class Restriction:
    """Why the FREE plan's limits apply instead of the subscribed plan's."""

    NONE = ""
    PAYMENT_OVERDUE = "payment_overdue"
    SUBSCRIPTION_ENDED = "subscription_ended"
    NOT_PAID_YET = "not_paid_yet"


@dataclass(frozen=True)
class BillingState:
    """An account's billing as it stands now."""

    account_id: int
    plan: Plan  # the plan whose limits and features apply now
    subscribed_plan: Plan  # the plan the account is on
    status: str
    restriction: str
    past_due_since: datetime | None
    grace_ends_at: datetime | None
    stripe_customer_id: str = ""
    stripe_subscription_id: str = ""
    cancel_at_period_end: bool = False
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None

    @property
    def in_grace_period(self) -> bool:
        return self.status in PAYMENT_DUE_STATUSES and not self.restriction

    @property
    def has_live_stripe_subscription(self) -> bool:
        return bool(self.stripe_subscription_id) and self.status not in ENDED_STATUSES


def _plan(code: str) -> Plan:
    from .services.plans import plan_get

    return plan_get(code)


def billing_state(account: Account | int, *, now: datetime | None = None) -> BillingState:
    """Which plan applies to the account now, and why (one query, two when on the default plan)."""
    account_id = getattr(account, "pk", account)
    now = now or timezone.now()
    subscription = Subscription.objects.select_related("plan").filter(account_id=account_id).first()
    if subscription is None:
        from .services.plans import default_plan

        plan = default_plan()
        return BillingState(account_id, plan, plan, SubscriptionStatus.ACTIVE, Restriction.NONE, None, None)

    subscribed = subscription.plan
    status = subscription.status
    grace_ends_at = None
    restriction = Restriction.NONE
    if status in PAYMENT_DUE_STATUSES:
        grace_ends_at = subscription.past_due_since + timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS)
        if now >= grace_ends_at:
            restriction = Restriction.PAYMENT_OVERDUE
    elif status in ENDED_STATUSES or status == SubscriptionStatus.PAUSED:
        restriction = Restriction.SUBSCRIPTION_ENDED
    elif status not in PAID_STATUSES:  # incomplete: the first payment has not gone through
        restriction = Restriction.NOT_PAID_YET
    applies = _plan(PlanCode.FREE) if restriction and subscribed.code != PlanCode.FREE else subscribed
    return BillingState(
        account_id=account_id,
        plan=applies,
        subscribed_plan=subscribed,
        status=status,
        restriction=restriction,
        past_due_since=subscription.past_due_since,
        grace_ends_at=grace_ends_at,
        stripe_customer_id=subscription.stripe_customer_id,
        stripe_subscription_id=subscription.stripe_subscription_id,
        cancel_at_period_end=subscription.cancel_at_period_end,
        current_period_start=subscription.current_period_start,
        current_period_end=subscription.current_period_end,
    )


def _state_key(account_id: int) -> str:
    return f"billing:state:{account_id}"


def billing_state_cached(account_id: int) -> BillingState:
    """`billing_state` cached for up to a minute, for per-request checks (API access, rate).

    Forgotten whenever the subscription changes; never kept past the end of a grace period.
    """
    state = cache.get(_state_key(account_id))
    if state is None:
        state = billing_state(account_id)
        billing_state_remember(state)
    return state


def billing_state_remember(state: BillingState) -> None:
    """Cache a state just read from the database (the gates do, so API requests find it warm)."""
    seconds = STATE_CACHE_SECONDS
    if state.grace_ends_at and not state.restriction:
        seconds = max(1, min(seconds, int((state.grace_ends_at - timezone.now()).total_seconds())))
    cache.set(_state_key(state.account_id), state, seconds)


def billing_state_forget(account_id: int) -> None:
    cache.delete(_state_key(account_id))


# --- The admin banner: read on every admin page, so it is kept in the cache, never queried.


def _banner_key(account_id: int) -> str:
    return f"billing:banner:{account_id}"


def banner_refresh(account_id: int) -> None:
    """Store (or clear) what the admin banner shows for the account: a payment owed. The state
    just read is remembered too, so the admin's other per-page plan checks (the analytics
    section of the index) find it warm."""
    state = billing_state(account_id)
    billing_state_remember(state)
    if state.status in PAYMENT_DUE_STATUSES:
        cache.set(
            _banner_key(account_id),
            {
                "plan": state.subscribed_plan.name,
                "free_plan": _plan(PlanCode.FREE).name,
                "past_due_since": state.past_due_since,
                "grace_ends_at": state.grace_ends_at,
            },
            BANNER_CACHE_SECONDS,
        )
    else:
        cache.delete(_banner_key(account_id))


def banner_for(account_id: int | None) -> dict | None:
    """The payment banner of an account, from the cache only (no query on admin pages)."""
    if not account_id:
        return None
    banner = cache.get(_banner_key(account_id))
    if banner is None:
        return None
    return {**banner, "grace_over": timezone.now() >= banner["grace_ends_at"]}


# --- Usage ---------------------------------------------------------------------------------


def active_listing_count(account_id: int) -> int:
    """Items for sale: one COUNT on the (account, state) index."""
    # Imported here: inventory calls the billing gates, so billing must not import inventory at load.
    from inventory.models import Item
    from inventory.states import ItemState

    return Item.objects.filter(account_id=account_id, state=ItemState.ACTIVE).count()


def connected_channel_count(account_id: int) -> int:
    """Marketplaces the account has an enabled connection to (two eBay shops are one channel).

    0 where the channel engine (inventory.ChannelConnection) is not installed.
    """
    try:
        connection = apps.get_model("inventory", "ChannelConnection")
    except LookupError:
        return 0
    return connection.objects.filter(account_id=account_id, enabled=True).values("channel").distinct().count()


def staff_user_count(account_id: int) -> int:
    from accounts.models import User

    return User.objects.filter(account_id=account_id, is_active=True, is_superuser=False).count()


USAGE_OF: dict[str, Callable[[int], int]] = {
    Limit.ACTIVE_LISTINGS: active_listing_count,
    Limit.CHANNELS: connected_channel_count,
    Limit.STAFF_USERS: staff_user_count,
}

# Counters kept in the cache between roll-ups (no database write per request or per PDF).
CACHED_COUNTERS = ("api_requests", "sync_runs", "pdfs_generated")


def counter_key(name: str, account_id: int) -> str:
    return f"billing:count:{name}:{account_id}"


def usage_period_bounds(state: BillingState, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The billing period containing `now`: Stripe's current period, else the calendar month (UTC)."""
    now = now or timezone.now()
    start, end = state.current_period_start, state.current_period_end
    if start and end and start <= now < end:
        return start, end
    month = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (month + timedelta(days=32)).replace(day=1)
    return month, following


def upgrade_for_limit(plan: Plan, limit: str, needed: int) -> Plan | None:
    """The first plan on sale, after `plan`, whose limit allows `needed` (or that allows overage)."""
    field = LIMIT_FIELDS[limit]
    candidates = Plan.objects.filter(is_public=True, position__gt=plan.position).exclude(pk=plan.pk)
    fits = Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__gte": needed})
    if limit == Limit.ACTIVE_LISTINGS:
        fits |= ~Q(overage_meter_event_name="")
    return candidates.filter(fits).order_by("position", "monthly_price").first()


def upgrade_for_feature(plan: Plan, feature: str) -> Plan | None:
    return (
        Plan.objects.filter(is_public=True, **{Feature(feature).value: True})
        .exclude(pk=plan.pk)
        .order_by("position", "monthly_price")
        .first()
    )


def upgrade_for_rate(plan: Plan) -> Plan | None:
    """The first plan on sale after `plan` with API access and a higher (or no) request rate."""
    rate = plan.api_requests_per_minute or 0
    return (
        Plan.objects.filter(is_public=True, api_access=True, position__gt=plan.position)
        .filter(Q(api_requests_per_minute__isnull=True) | Q(api_requests_per_minute__gt=rate))
        .order_by("position", "monthly_price")
        .first()
    )


def plans_for_sale() -> list[Plan]:
    return list(Plan.objects.filter(is_public=True).order_by("position", "monthly_price"))


def _percent(usage: int, allowed: int | None) -> int | None:
    if allowed is None:
        return None
    if allowed == 0:
        return 100 if usage else 0
    return min(100, round(usage * 100 / allowed))


def billing_overview(account: Account | int) -> dict:
    """Plan, status and usage against limits, for the billing page and the API."""
    account_id = getattr(account, "pk", account)
    state = billing_state(account_id)
    plan = state.plan
    start, end = usage_period_bounds(state)
    period = UsagePeriod.objects.filter(account_id=account_id, period_start=start).first()
    pending = cache.get_many([counter_key(name, account_id) for name in CACHED_COUNTERS])
    counters = {
        name: (getattr(period, name, 0) or 0) + int(pending.get(counter_key(name, account_id)) or 0)
        for name in CACHED_COUNTERS
    }
    # Sync runs and orders are rows the database counts now; only the per-request counters wait
    # for the 10-minute roll-up (the page says when it last ran).
    counters["orders_imported"] = orders_imported_count(account_id, start, end)
    counters["sync_runs"] = sync_run_count(account_id, start, end) or 0
    limits = []
    for limit in Limit:
        usage = USAGE_OF[limit](account_id)
        allowed = plan.limit_of(limit)
        peak = None
        if limit == Limit.ACTIVE_LISTINGS:
            peak = max(usage, period.peak_active_listings if period else 0)
        elif limit == Limit.CHANNELS:
            peak = max(usage, period.peak_channels if period else 0)
        limits.append(
            {
                "limit": limit.value,
                "label": limit.label,
                "usage": usage,
                "allowed": allowed,
                "peak_this_period": peak,
                "percent": _percent(usage, allowed),
                "over": allowed is not None and usage > allowed,
                "overage_billed": limit == Limit.ACTIVE_LISTINGS and plan.allows_listing_overage,
                "note": _limit_note(limit, account_id, usage),
            }
        )
    return {
        "state": state,
        "plan": plan,
        "subscribed_plan": state.subscribed_plan,
        "period_start": start,
        "period_end": end,
        "limits": limits,
        "features": [{"feature": f.value, "label": f.label, "included": plan.has(f)} for f in Feature],
        "counters": counters,
        "api_requests_per_minute": plan.api_requests_per_minute if plan.api_access else 0,
        "rolled_up_at": period.updated_at if period else None,
    }


def orders_imported_count(account_id: int, start: datetime, end: datetime) -> int:
    """Orders that came from channels in the period (manual sales are not usage)."""
    try:
        order = apps.get_model("inventory", "Order")
    except LookupError:
        return 0
    return (
        order.objects.filter(account_id=account_id, created_at__gte=start, created_at__lt=end)
        .exclude(channel="manual")
        .count()
    )


def sync_run_count(account_id: int, start: datetime, end: datetime) -> int | None:
    """Pulls, pushes, audits and imports in the period (None where the channel engine is not installed)."""
    try:
        sync_run = apps.get_model("inventory", "SyncRun")
    except LookupError:
        return None
    return sync_run.objects.filter(account_id=account_id, started_at__gte=start, started_at__lt=end).count()


def _limit_note(limit: str, account_id: int, usage: int) -> str:
    """What the plan counts, in words, where the figure alone misleads."""
    if limit == Limit.ACTIVE_LISTINGS:
        return "Items for sale (active), whether or not they are live on a channel yet: the plan counts what you offer."
    if limit == Limit.CHANNELS:
        try:
            connection = apps.get_model("inventory", "ChannelConnection")
        except LookupError:
            return ""
        shops = connection.objects.filter(account_id=account_id, enabled=True).count()
        if shops > usage:
            return f"Marketplaces, not shops: your {shops} connected shops are on {usage} marketplace{'s' if usage != 1 else ''}."
    return ""


def invoice_list(account: Account | int, *, limit: int = 12) -> list[dict]:
    """The account's latest Stripe invoices, newest first (read from Stripe; [] without a customer).

    Raises StripeUnavailable / StripeNotConfigured when Stripe cannot answer.
    """
    from . import client

    account_id = getattr(account, "pk", account)
    customer = Subscription.objects.filter(account_id=account_id).values_list("stripe_customer_id", flat=True).first()
    if not customer:
        return []
    invoices = client.invoice_list(customer=customer, limit=limit)
    return [
        {
            "id": invoice["id"],
            "number": invoice.get("number") or invoice["id"],
            "status": invoice.get("status"),
            "created": datetime.fromtimestamp(int(invoice["created"]), tz=UTC),
            "total": _money(invoice.get("total"), invoice.get("currency")),
            "amount_due": _money(invoice.get("amount_due"), invoice.get("currency")),
            "currency": (invoice.get("currency") or "").upper(),
            "hosted_invoice_url": invoice.get("hosted_invoice_url"),
            "invoice_pdf": invoice.get("invoice_pdf"),
        }
        for invoice in invoices["data"]
    ]


ZERO_DECIMAL_CURRENCIES = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)


def _money(minor_units, currency) -> str:
    """Stripe amounts are in the currency's smallest unit (cents), except zero-decimal currencies."""
    amount = int(minor_units or 0)
    if (currency or "").lower() in ZERO_DECIMAL_CURRENCIES:
        return str(amount)
    return f"{amount / 100:.2f}"
