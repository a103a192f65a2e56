"""Billing operations: the only code that writes plans' assignments, subscriptions, usage and events.

Each runs in a transaction, locks the subscription row it changes, writes an audit row
(SubscriptionChange) when the plan or status changes, and calls Stripe with idempotency
keys for anything it creates.
"""

from .plans import DEFAULT_PLANS, default_plan, plan_assign, plan_get, plan_stripe_prices_set, plans_ensure
from .subscriptions import (
    PlanChangeResult,
    SyncOutcome,
    checkout_start,
    plan_change,
    portal_start,
    subscription_cancel,
    subscription_sync,
    subscriptions_resync,
)
from .usage import overage_report_all, overage_report_day, usage_record, usage_rollup, usage_rollup_account
from .webhooks import stripe_event_process, stripe_event_receive, stripe_events_retry

__all__ = [
    "DEFAULT_PLANS",
    "PlanChangeResult",
    "SyncOutcome",
    "checkout_start",
    "default_plan",
    "overage_report_all",
    "overage_report_day",
    "plan_assign",
    "plan_change",
    "plan_get",
    "plan_stripe_prices_set",
    "plans_ensure",
    "portal_start",
    "stripe_event_process",
    "stripe_event_receive",
    "stripe_events_retry",
    "subscription_cancel",
    "subscription_sync",
    "subscriptions_resync",
    "usage_record",
    "usage_rollup",
    "usage_rollup_account",
]
