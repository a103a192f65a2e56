"""The gates the rest of the product asks before it grows: `can`, `require`, `check_limit`.

Only growth is gated: new listings, bulk listing, more channels or staff, API use. The
safety machinery (importing sales, ending items sold elsewhere, raising conflicts) never
calls these, whatever the plan or payment state. Going below a limit (downgrade, payment
overdue) never delists anything: it only stops new growth until usage is under the limit.

Usage:
    check_limit(account, "active_listings", adding=3)   # raises PlanLimitReached (HTTP 402)
    require(account, Feature.BULK_OPERATIONS)            # raises FeatureNotInPlan (HTTP 402)
    if can(account, Feature.ANALYTICS): ...
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from accounts.models import Account

from .errors import FeatureNotInPlan, PlanLimitReached
from .models import Feature, Limit, Plan
from .selectors import (
    USAGE_OF,
    BillingState,
    Restriction,
    billing_state,
    billing_state_remember,
    upgrade_for_feature,
    upgrade_for_limit,
)

__all__ = ["Feature", "Limit", "can", "check_channel_connect", "check_limit", "feature_refusal", "require"]


def _account_id(account: Account | int) -> int:
    return getattr(account, "pk", account)


def _state(account_id: int) -> BillingState:
    """The state from the database (gates decide on the truth), remembered for per-request checks."""
    state = billing_state(account_id)
    billing_state_remember(state)
    return state


def can(account: Account | int, feature: str) -> bool:
    """Does the plan that applies to the account now include `feature`?"""
    return _state(_account_id(account)).plan.has(feature)


def require(account: Account | int, feature: str) -> None:
    """Raise FeatureNotInPlan unless the plan that applies now includes `feature`."""
    state = _state(_account_id(account))
    if not state.plan.has(feature):
        raise feature_refusal(state, feature)


def feature_refusal(state: BillingState, feature: str) -> FeatureNotInPlan:
    """The refusal for a feature the current plan lacks: what lifts it, in words and fields."""
    label = Feature(feature).label
    if state.restriction and state.subscribed_plan.has(feature):
        return FeatureNotInPlan(
            f"{_restriction_text(state)} The {state.plan.name} plan does not include {label}. {_restore_text(state)}",
            **_details(state, state.subscribed_plan, feature=feature, action=_restore_action(state)),
        )
    upgrade = upgrade_for_feature(state.plan, feature)
    text = f"Your {state.plan.name} plan does not include {label}."
    if upgrade is not None:
        text += f" {upgrade.name} does ({_price(upgrade)}): upgrade in Billing."
    return FeatureNotInPlan(text, **_details(state, upgrade, feature=feature, action="upgrade"))


def check_limit(account: Account | int, limit: str, *, adding: int = 1) -> int | None:
    """Refuse (PlanLimitReached) if adding `adding` would go over the plan's `limit`.

    Returns the usage before adding, or None when the plan has no such limit. Inside a
    transaction the account row is locked until commit, so two growth steps of one
    account cannot both pass at the last free place (check-then-act under a lock).
    """
    limit = Limit(limit)
    account_id = _account_id(account)
    if adding <= 0:
        return None
    if transaction.get_connection().in_atomic_block:
        list(Account.objects.select_for_update().filter(pk=account_id).values_list("pk"))
    state = _state(account_id)
    plan = state.plan
    allowed = plan.limit_of(limit)
    if allowed is None:
        return None
    if limit == Limit.ACTIVE_LISTINGS and plan.allows_listing_overage:
        return None  # above the plan is billed as metered overage, not refused
    usage = USAGE_OF[limit](account_id)
    if usage + adding <= allowed:
        return usage
    raise _limit_refusal(state, limit, allowed=allowed, usage=usage, adding=adding)


def check_channel_connect(account: Account | int, channel: str) -> None:
    """For the channel apps, before a connection is added or enabled: refuse (PlanLimitReached)
    if it would connect one marketplace more than the plan allows. Another connection to a
    marketplace already connected (including the one being edited) adds no channel."""
    from django.apps import apps

    account_id = _account_id(account)
    connection = apps.get_model("inventory", "ChannelConnection")
    if not connection.objects.filter(account_id=account_id, channel=channel, enabled=True).exists():
        check_limit(account_id, Limit.CHANNELS, adding=1)


def _limit_refusal(state: BillingState, limit: Limit, *, allowed: int, usage: int, adding: int) -> PlanLimitReached:
    label = limit.label
    more = f"{adding} more" if adding > 1 else "another"
    if usage >= allowed:
        where = f"you have {usage}, so {more} cannot be added"
        if usage > allowed:
            where = (
                f"you have {usage}, which is above it: nothing has been delisted, but no new {label} "
                f"can be added until you are under {allowed}"
            )
    else:
        where = f"you have {usage}, so {adding} more would make {usage + adding}; at most {allowed - usage} fit"
    details = {"limit": limit.value, "limit_label": label, "allowed": allowed, "usage": usage, "adding": adding}
    if state.restriction:
        text = f"{_restriction_text(state)} The {state.plan.name} plan allows {allowed} {label}; {where}. "
        text += _restore_text(state)
        return PlanLimitReached(
            text, **details, **_details(state, state.subscribed_plan, limit=limit, action=_restore_action(state))
        )
    upgrade = upgrade_for_limit(state.plan, limit, usage + adding)
    text = f"Your {state.plan.name} plan allows {allowed} {label}; {where}."
    if upgrade is not None:
        text += f" Upgrade to {upgrade.name} ({_limit_text(upgrade, limit)}, {_price(upgrade)}) in Billing"
        text += ", or end listings you no longer sell." if limit == Limit.ACTIVE_LISTINGS else "."
    else:
        text += " No plan on sale allows more; contact support."
    return PlanLimitReached(text, **details, **_details(state, upgrade, limit=limit, action="upgrade"))


def _restriction_text(state: BillingState) -> str:
    free, paid = state.plan.name, state.subscribed_plan.name
    if state.restriction == Restriction.PAYMENT_OVERDUE:
        return (
            f"Your {paid} payment is overdue since {state.past_due_since:%Y-%m-%d} and the "
            f"{settings.BILLING_PAST_DUE_GRACE_DAYS}-day grace period ended on {state.grace_ends_at:%Y-%m-%d}, "
            f"so the {free} plan's limits apply."
        )
    if state.restriction == Restriction.SUBSCRIPTION_ENDED:
        return f"Your {paid} subscription has ended ({state.status}), so the {free} plan's limits apply."
    return f"Your {paid} subscription's first payment has not gone through yet, so the {free} plan's limits apply."


def _restore_action(state: BillingState) -> str:
    return "update_payment_method" if state.restriction == Restriction.PAYMENT_OVERDUE else "subscribe"


def _restore_text(state: BillingState) -> str:
    paid = state.subscribed_plan.name
    if state.restriction == Restriction.PAYMENT_OVERDUE:
        return f"Update your payment method (Billing > Manage payment) to restore {paid}."
    return f"Subscribe again in Billing to restore {paid}."


def _price(plan: Plan) -> str:
    return f"{plan.monthly_price} {plan.currency}/month"


def _limit_text(plan: Plan, limit: Limit) -> str:
    allowed = plan.limit_of(limit)
    if allowed is None:
        return f"unlimited {limit.label}"
    text = f"{allowed:,} {limit.label}"
    if limit == Limit.ACTIVE_LISTINGS and plan.allows_listing_overage:
        text += f", more at {plan.overage_price_per_listing_day.normalize()} {plan.currency} per listing per day"
    return text


def _details(state: BillingState, lifts: Plan | None, *, action: str, limit: Limit | None = None, feature=None):
    details = {
        "plan": state.plan.code,
        "plan_name": state.plan.name,
        "subscribed_plan": state.subscribed_plan.code,
        "status": state.status,
        "reason": state.restriction or ("feature_not_in_plan" if feature else "limit_reached"),
        "action": action,
        "upgrade_plan": lifts.code if lifts else None,
        "upgrade_plan_name": lifts.name if lifts else None,
        "upgrade_monthly_price": str(lifts.monthly_price) if lifts else None,
        "currency": lifts.currency if lifts else None,
    }
    if feature is not None:
        details["feature"] = Feature(feature).value
    if limit is not None:
        details["upgrade_allowed"] = lifts.limit_of(limit) if lifts else None
    if state.grace_ends_at:
        details["grace_ended_at"] = state.grace_ends_at.isoformat()
    return details
