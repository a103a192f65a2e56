"""The plan rows: their defaults, finding one by code, and giving an account a plan by hand."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from accounts.models import Account

from ..errors import BillingStateError
from ..models import Plan, PlanCode, Subscription, SubscriptionStatus
from .audit import subscription_changed, subscription_for_update

log = logging.getLogger(__name__)

# The plans a fresh install starts with (the data migration writes the same rows). Platform
# staff edit prices, limits and Stripe price ids in the admin; the code only knows the codes.
DEFAULT_PLANS: dict[str, dict] = {
    PlanCode.FREE: {
        "name": "Free",
        "description": "For trying the back office with a small shop.",
        "position": 0,
        "monthly_price": Decimal("0.00"),
        "max_active_listings": 25,
        "max_channels": 2,
        "max_staff_users": 2,
        "api_requests_per_minute": 30,
        "pdf_documents": True,
        "api_access": True,
    },
    PlanCode.PRO: {
        "name": "Pro",
        "description": "For a shop listing on three channels, with bulk tools and imports.",
        "position": 1,
        "monthly_price": Decimal("29.00"),
        "max_active_listings": 300,
        "max_channels": 3,
        "max_staff_users": 5,
        "api_requests_per_minute": 120,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
    },
    PlanCode.BUSINESS: {
        "name": "Business",
        "description": "Every channel, the full-rate API; listings above the plan cost a cent a day, not an upgrade.",
        "position": 2,
        "monthly_price": Decimal("79.00"),
        "max_active_listings": 2000,
        "max_channels": None,
        "max_staff_users": 20,
        "api_requests_per_minute": 600,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
        "overage_meter_event_name": "active_listing_overage",
        "overage_price_per_listing_day": Decimal("0.0100"),
    },
    PlanCode.ADMIN: {
        "name": "Admin (internal)",
        "description": "Internal accounts of the platform: unlimited, never sold.",
        "position": 99,
        "is_public": False,
        "monthly_price": Decimal("0.00"),
        "max_active_listings": None,
        "max_channels": None,
        "max_staff_users": None,
        "api_requests_per_minute": None,
        "bulk_operations": True,
        "listing_import": True,
        "pdf_documents": True,
        "analytics": True,
        "api_access": True,
    },
}


def plans_ensure() -> None:
    """Create any default plan that is missing. Existing rows are never changed."""
    for code, fields in DEFAULT_PLANS.items():
        try:
            with transaction.atomic():
                Plan.objects.get_or_create(code=code, defaults=fields)
        except IntegrityError:  # created by a concurrent caller
            pass


def plan_get(code: str) -> Plan:
    """The plan with this code. FREE and ADMIN are relied on by the code: if one is missing
    (a wiped table), the default row is put back rather than failing every request."""
    try:
        return Plan.objects.get(code=code)
    except Plan.DoesNotExist:
        if code not in DEFAULT_PLANS:
            raise
        log.warning("billing: plan %r was missing and has been re-created with its defaults", code)
        plans_ensure()
        return Plan.objects.get(code=code)


def default_plan() -> Plan:
    """The plan of an account that has no subscription row (BILLING_DEFAULT_PLAN)."""
    try:
        return plan_get(settings.BILLING_DEFAULT_PLAN)
    except Plan.DoesNotExist as error:
        codes = ", ".join(Plan.objects.order_by("position").values_list("code", flat=True))
        raise ImproperlyConfigured(
            f"BILLING_DEFAULT_PLAN={settings.BILLING_DEFAULT_PLAN!r} is not a plan code; use one of {codes}."
        ) from error


def plan_assign(*, account: Account, plan: Plan, user=None, source: str = "admin") -> Subscription:
    """Put an account on a plan without Stripe: FREE, or a plan given by platform staff (ADMIN).

    Refused while a Stripe subscription is live: change or cancel that one instead, or
    the mirror would disagree with what Stripe bills.
    """
    with transaction.atomic():
        subscription, before = subscription_for_update(account)
        live = subscription.stripe_subscription_id and subscription.status not in (
            SubscriptionStatus.CANCELED,
            SubscriptionStatus.INCOMPLETE_EXPIRED,
        )
        if live:
            raise BillingStateError(
                f"{account} pays for {subscription.plan} through Stripe ({subscription.stripe_subscription_id}, "
                f"{subscription.status}). Change or cancel that subscription instead of assigning a plan.",
                stripe_subscription_id=subscription.stripe_subscription_id,
            )
        subscription.plan = plan
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.past_due_since = None
        subscription.stripe_subscription_id = ""
        subscription.cancel_at_period_end = False
        subscription.current_period_start = subscription.current_period_end = None
        subscription.save()
        subscription_changed(subscription, before=before, source=source, user=user)
    return subscription


def plan_stripe_prices_set(prices: dict[str, tuple[str, str]]) -> list[Plan]:
    """Point plans at their Stripe prices: {plan code: (monthly price id, overage price id or "")}."""
    changed = []
    with transaction.atomic():
        for code, (price_id, overage_price_id) in prices.items():
            plan = Plan.objects.select_for_update().get(code=code)
            plan.stripe_price_id = price_id
            plan.stripe_overage_price_id = overage_price_id
            plan.full_clean()
            plan.save(update_fields=["stripe_price_id", "stripe_overage_price_id"])
            changed.append(plan)
    return changed
