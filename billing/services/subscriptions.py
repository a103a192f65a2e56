"""Paid subscriptions through Stripe: checkout, portal, plan changes, cancel, and the mirror.

The account's Subscription row mirrors Stripe and is written only from a subscription
object Stripe just returned (a re-read, or the answer to our own update), under the row's
lock. Reading inside the lock orders concurrent syncs: whoever writes last also read
last, so an old event handled late cannot put back an old state.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Account

from .. import client
from ..errors import BillingStateError, StripeUnavailable
from ..models import (
    ENDED_STATUSES,
    PAYMENT_DUE_STATUSES,
    Limit,
    Plan,
    PlanCode,
    Subscription,
    SubscriptionStatus,
)
from ..selectors import USAGE_OF
from .audit import subscription_changed, subscription_for_update

log = logging.getLogger(__name__)

CHECKOUT_KEY_WINDOW_SECONDS = 600  # a double click within 10 minutes gets the same checkout page
PORTAL_KEY_WINDOW_SECONDS = 60


def _key(*parts: object, window: int | None = None) -> str:
    """An idempotency key: the same logical request within `window` seconds gets the same key."""
    if window:
        parts = (*parts, int(time.time() // window))
    return ":".join(str(part) for part in parts)[:255]


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _is_live(subscription: Subscription) -> bool:
    return bool(subscription.stripe_subscription_id) and subscription.status not in ENDED_STATUSES


def _sellable(plan: Plan) -> None:
    if plan.code == PlanCode.FREE:
        raise BillingStateError(
            "The Free plan needs no checkout. To leave a paid plan, cancel it: it stays active until the period ends."
        )
    if not plan.is_public:
        raise BillingStateError(f"{plan.name} is not for sale.", plan=plan.code)
    if not plan.stripe_price_id:
        raise BillingStateError(
            f"{plan.name} cannot be bought yet: its Stripe price id is not set. "
            "A platform admin sets it in Admin > Billing > Plans.",
            plan=plan.code,
        )


def _customer_ensure(subscription: Subscription, *, email: str) -> str:
    """The account's Stripe customer, created once (idempotency key per account). Row is locked."""
    if subscription.stripe_customer_id:
        return subscription.stripe_customer_id
    account = subscription.account
    customer = client.customer_create(
        name=account.name,
        email=email,
        metadata={"account_id": str(account.pk), "account_slug": account.slug},
        idempotency_key=_key("customer-create", "account", account.pk),
    )
    subscription.stripe_customer_id = customer["id"]
    subscription.save(update_fields=["stripe_customer_id", "updated_at"])
    return subscription.stripe_customer_id


def checkout_start(*, account: Account, plan: Plan, user, success_url: str, cancel_url: str) -> str:
    """Start Stripe Checkout for the account's first paid plan. Returns the page's URL.

    The subscription is linked when Stripe reports the checkout completed (webhook).
    """
    client.stripe_client()  # says what to configure before anything else
    _sellable(plan)
    with transaction.atomic():
        subscription, _before = subscription_for_update(account)
        if _is_live(subscription):
            raise BillingStateError(
                f"You already subscribe to {subscription.plan.name} ({subscription.get_status_display()}). "
                "Change the plan instead (Billing > Change plan, or POST /api/v1/billing/change-plan/).",
                action="change_plan",
                plan=subscription.plan.code,
            )
        customer = _customer_ensure(subscription, email=getattr(user, "email", "") or "")
        line_items = [{"price": plan.stripe_price_id, "quantity": 1}]
        if plan.allows_listing_overage and plan.stripe_overage_price_id:
            line_items.append({"price": plan.stripe_overage_price_id})
        metadata = {"account_id": str(account.pk), "plan": plan.code}
        session = client.checkout_session_create(
            customer=customer,
            line_items=line_items,
            success_url=success_url,
            cancel_url=cancel_url,
            client_reference_id=str(account.pk),
            metadata=metadata,
            idempotency_key=_key(
                "checkout", account.pk, plan.code, _digest(success_url, cancel_url), window=CHECKOUT_KEY_WINDOW_SECONDS
            ),
        )
    return session["url"]


def portal_start(*, account: Account, return_url: str) -> str:
    """A Stripe Billing Portal session (payment methods, invoices, cancel). Returns its URL."""
    subscription = Subscription.objects.filter(account=account).first()
    if subscription is None or not subscription.stripe_customer_id:
        raise BillingStateError(
            "There are no payment details yet: choose a paid plan first (Billing > Upgrade).", action="checkout"
        )
    session = client.portal_session_create(
        customer=subscription.stripe_customer_id,
        return_url=return_url,
        idempotency_key=_key("portal", account.pk, _digest(return_url), window=PORTAL_KEY_WINDOW_SECONDS),
    )
    return session["url"]


@dataclass
class PlanChangeResult:
    subscription: Subscription
    warnings: list[str] = field(default_factory=list)


def plan_change(*, account: Account, plan: Plan, user=None, source: str = "admin") -> PlanChangeResult:
    """Move a paying account to another paid plan now, with proration, through Stripe.

    Downgrading below current usage is allowed and delists nothing; the answer warns that
    new listings are blocked until usage is under the new limit.
    """
    _sellable(plan)
    with transaction.atomic():
        subscription, before = subscription_for_update(account)
        if not _is_live(subscription):
            raise BillingStateError(
                f"There is no paid subscription to change: start a checkout for {plan.name} instead.",
                action="checkout",
            )
        if subscription.plan_id == plan.pk and not subscription.cancel_at_period_end:
            raise BillingStateError(f"You are already on {plan.name}.", plan=plan.code)
        remote = client.subscription_retrieve(subscription.stripe_subscription_id)
        plan_prices = set(Plan.objects.exclude(stripe_price_id="").values_list("stripe_price_id", flat=True))
        overage_prices = set(
            Plan.objects.exclude(stripe_overage_price_id="").values_list("stripe_overage_price_id", flat=True)
        )
        items = list(remote["items"]["data"])
        base = next((item for item in items if item["price"]["id"] in plan_prices), None)
        if base is None:
            raise BillingStateError(
                f"Stripe subscription {remote['id']} has no price of a known plan; "
                "set the plans' Stripe price ids in Admin > Billing > Plans.",
            )
        changes: list[dict] = [{"id": base["id"], "price": plan.stripe_price_id, "quantity": 1}]
        for item in items:
            price = item["price"]["id"]
            if price in overage_prices and price != plan.stripe_overage_price_id:
                changes.append({"id": item["id"], "deleted": True})
        if plan.stripe_overage_price_id and not any(i["price"]["id"] == plan.stripe_overage_price_id for i in items):
            changes.append({"price": plan.stripe_overage_price_id})
        updated = client.subscription_update(
            remote["id"],
            params={
                "items": changes,
                "proration_behavior": "create_prorations",
                "cancel_at_period_end": False,
                "metadata": {"account_id": str(account.pk), "plan": plan.code},
            },
            idempotency_key=_key("plan-change", remote["id"], plan.code, window=CHECKOUT_KEY_WINDOW_SECONDS),
        )
        _mirror(subscription, updated)
        subscription_changed(subscription, before=before, source=source, user=user)
    return PlanChangeResult(subscription, warnings=_usage_warnings(account, plan))


def subscription_cancel(*, account: Account, user=None, source: str = "admin") -> Subscription:
    """Cancel at the end of the paid period (the plan stays until then; nothing is delisted after)."""
    with transaction.atomic():
        subscription, before = subscription_for_update(account)
        if not _is_live(subscription):
            raise BillingStateError("There is no paid subscription to cancel.")
        if subscription.cancel_at_period_end:
            return subscription
        updated = client.subscription_update(
            subscription.stripe_subscription_id,
            params={"cancel_at_period_end": True},
            idempotency_key=_key("cancel", subscription.stripe_subscription_id, window=CHECKOUT_KEY_WINDOW_SECONDS),
        )
        _mirror(subscription, updated)
        subscription_changed(subscription, before=before, source=source, user=user)
    return subscription


def _usage_warnings(account: Account, plan: Plan) -> list[str]:
    warnings = []
    for limit in Limit:
        allowed = plan.limit_of(limit)
        if allowed is None or (limit == Limit.ACTIVE_LISTINGS and plan.allows_listing_overage):
            continue
        usage = USAGE_OF[limit](account.pk)
        if usage > allowed:
            warnings.append(
                f"You have {usage} {limit.label}; {plan.name} allows {allowed}. Nothing is removed or delisted, "
                f"but no new {limit.label} can be added until you are under {allowed}."
            )
    return warnings


# --- The mirror ------------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    text: str
    account_id: int | None = None
    changed: bool = False


def subscription_sync(
    *,
    stripe_subscription_id: str,
    customer_id: str = "",
    account_id: int | None = None,
    source: str,
) -> SyncOutcome:
    """Re-read a Stripe subscription and mirror it onto its account's row.

    The row is found by subscription id, else by customer id, else by `account_id` (from a
    checkout we started, whose customer must match). A subscription other than the one an
    account already has live is ignored (an old one, still sending events).
    """
    with transaction.atomic():
        subscription = (
            Subscription.objects.select_for_update()
            .select_related("plan", "account")
            .filter(stripe_subscription_id=stripe_subscription_id)
            .first()
        )
        if subscription is None and customer_id:
            subscription = (
                Subscription.objects.select_for_update()
                .select_related("plan", "account")
                .filter(stripe_customer_id=customer_id)
                .first()
            )
        if subscription is None and account_id is not None:
            subscription = (
                Subscription.objects.select_for_update()
                .select_related("plan", "account")
                .filter(account_id=account_id)
                .first()
            )
        if subscription is None:
            return SyncOutcome(f"ignored: no account has customer {customer_id or '-'} or {stripe_subscription_id}")
        if account_id is not None and subscription.account_id != account_id:
            return SyncOutcome(f"ignored: {stripe_subscription_id} belongs to another account than the checkout said")
        before = (subscription.plan, subscription.status)
        try:
            remote = client.subscription_retrieve(stripe_subscription_id)
        except StripeUnavailable as error:
            if error.details.get("stripe_code") != "resource_missing":
                raise  # Stripe unreachable: the event is retried
            return SyncOutcome(f"ignored: Stripe has no subscription {stripe_subscription_id}", subscription.account_id)
        if subscription.stripe_customer_id and remote["customer"] != subscription.stripe_customer_id:
            return SyncOutcome(
                f"ignored: {stripe_subscription_id} is for customer {remote['customer']}, "
                f"the account has {subscription.stripe_customer_id}",
                subscription.account_id,
            )
        other = subscription.stripe_subscription_id
        # Another subscription replaces the account's only when that one has ended and this one has not.
        if other and other != stripe_subscription_id and (_is_live(subscription) or remote["status"] in ENDED_STATUSES):
            return SyncOutcome(
                f"ignored: {stripe_subscription_id} ({remote['status']}) is not the account's subscription {other}",
                subscription.account_id,
            )
        _mirror(subscription, remote)
        change = subscription_changed(subscription, before=before, source=source)
    return SyncOutcome(
        f"{subscription.account.slug}: {subscription.plan.code} {subscription.status}"
        + (f" (was {before[0].code} {before[1]})" if change else " (unchanged)"),
        subscription.account_id,
        changed=change is not None,
    )


def _timestamp(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _mirror(subscription: Subscription, remote) -> None:
    """Copy a Stripe subscription object onto the (locked) row and save it."""
    status = remote["status"]
    if status not in SubscriptionStatus.values:
        raise ValueError(f"Stripe sent an unknown subscription status {status!r}")
    items = list(remote["items"]["data"])
    prices = [item["price"]["id"] for item in items]
    plan = Plan.objects.filter(stripe_price_id__in=prices).first()
    if plan is None:
        log.error("billing: subscription %s has no price of a known plan (%s)", remote["id"], prices)
        raise BillingStateError(
            f"Stripe subscription {remote['id']} has no price of a known plan ({', '.join(prices) or 'none'}); "
            "set the plans' Stripe price ids in Admin > Billing > Plans.",
        )
    # Since API version 2025-03-31 the period lives on the items; older versions have it on top.
    first = items[0] if items else {}
    period_start = first.get("current_period_start") or remote.get("current_period_start")
    period_end = first.get("current_period_end") or remote.get("current_period_end")
    now = timezone.now()
    subscription.plan = plan
    subscription.status = status
    subscription.stripe_subscription_id = remote["id"]
    subscription.stripe_customer_id = subscription.stripe_customer_id or remote["customer"]
    subscription.current_period_start = _timestamp(period_start)
    subscription.current_period_end = _timestamp(period_end)
    subscription.cancel_at_period_end = bool(remote.get("cancel_at_period_end"))
    if status in PAYMENT_DUE_STATUSES:
        subscription.past_due_since = subscription.past_due_since or now
    else:
        subscription.past_due_since = None
    subscription.synced_at = now
    subscription.save()


def subscriptions_resync(*, source: str = "nightly re-read") -> list[SyncOutcome]:
    """Re-read every live Stripe subscription: catches webhooks that never arrived."""
    outcomes = []
    ids = (
        Subscription.objects.exclude(stripe_subscription_id="")
        .exclude(status__in=ENDED_STATUSES)
        .values_list("stripe_subscription_id", "stripe_customer_id")
    )
    for subscription_id, customer_id in list(ids):
        try:
            outcomes.append(
                subscription_sync(stripe_subscription_id=subscription_id, customer_id=customer_id, source=source)
            )
        except Exception as error:  # one account's failure must not stop the others
            log.exception("billing: re-reading %s failed", subscription_id)
            outcomes.append(SyncOutcome(f"failed: {subscription_id}: {error}"))
    return outcomes
