"""Refusals of the billing module. Each says what was hit, the usage, and what lifts it.

`status` is the HTTP status the API answers with (inventory/api/errors.py maps every
BillingError). Nothing here imports another app, so any app may import it.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html


class BillingError(Exception):
    code = "billing_error"
    status = 400

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details

    def admin_html(self) -> str:
        """The message for the admin, with a link to the account's billing page."""
        try:
            url = reverse("admin:billing_account_billing")
        except NoReverseMatch:  # the admin is not mounted (e.g. an API-only deployment)
            return self.message
        return format_html('{} <a href="{}">See plans and upgrade</a>.', self.message, url)


class PlanLimitReached(BillingError):
    """A growth step would go over the plan. Details: limit, allowed, usage, adding, plan, upgrade_*."""

    code = "plan_limit_reached"
    status = 402


class FeatureNotInPlan(BillingError):
    """The plan does not include a feature. Details: feature, plan, upgrade_*."""

    code = "feature_not_in_plan"
    status = 402


class RateLimitReached(BillingError):
    """The plan's API requests per minute are used up. Details: allowed, retry_after, upgrade_plan."""

    code = "rate_limit_reached"
    status = 429


class BillingStateError(BillingError):
    """The request does not fit the subscription's state (e.g. checkout while already subscribed)."""

    code = "billing_state"
    status = 409


class StripeNotConfigured(BillingError):
    code = "stripe_not_configured"
    status = 503


class StripeUnavailable(BillingError):
    """Stripe could not be reached or refused the call. Nothing was changed on our side."""

    code = "stripe_unavailable"
    status = 502


class InvalidWebhook(BillingError):
    """A webhook whose signature, age or body is wrong. Nothing is stored."""

    code = "invalid_webhook"
    status = 400
