"""Fixtures and helpers of the billing tests.

Stripe is the loopback sandbox (billing/sandbox.py) answering with Stripe's fixture shapes;
webhooks are signed exactly as Stripe signs them and verified by the real library.
"""

from __future__ import annotations

import json
import time

import pytest
from django.test import TestCase

from billing.models import Plan, Subscription
from billing.sandbox import StripeSandbox, sign_payload
from billing.services import checkout_start, plans_ensure, stripe_event_process, stripe_event_receive
from tests.factories import make_item

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
WEBHOOK_URL = "/billing/stripe/webhook/"
PRICES = {"pro": ("price_pro_monthly", 2900), "business": ("price_business_monthly", 7900)}
OVERAGE_PRICE = "price_business_listing_overage"

# Fixtures: star-imported by the billing test modules. Helpers are imported by name.
__all__ = ["_free_is_the_default_plan", "stripe_sandbox"]


@pytest.fixture(autouse=True)
def _free_is_the_default_plan(settings):
    """The product default: an account that never subscribed is on FREE (conftest sets ADMIN)."""
    settings.BILLING_DEFAULT_PLAN = "free"


@pytest.fixture
def stripe_sandbox(settings, db):
    """The loopback Stripe with PRO and BUSINESS prices, and the plans pointing at them."""
    plans_ensure()  # a transactional test before this one may have flushed the migration's rows
    with StripeSandbox() as sandbox:
        settings.STRIPE_SECRET_KEY = "sk_test_sandbox_key"
        settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
        settings.STRIPE_API_BASE = sandbox.url
        settings.STRIPE_MAX_NETWORK_RETRIES = 0
        for code, (price_id, amount) in PRICES.items():
            sandbox.add_price(price_id, amount)
            Plan.objects.filter(code=code).update(stripe_price_id=price_id)
        sandbox.add_price(OVERAGE_PRICE, 1, metered=True)
        Plan.objects.filter(code="business").update(stripe_overage_price_id=OVERAGE_PRICE)
        yield sandbox


def post_webhook(client, payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None):
    return client.post(
        WEBHOOK_URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload, secret, timestamp),
    )


def deliver(sandbox: StripeSandbox, event_type: str, obj: dict) -> dict:
    """Stripe delivers an event: store it and act on it (the webhook view's two steps)."""
    payload = sandbox.event_payload(event_type, obj)
    # Run the after-commit steps (cached plan forgotten, admin banner refreshed) as a commit would.
    with TestCase.captureOnCommitCallbacks(execute=True):
        event, created = stripe_event_receive(payload=payload.encode(), signature=sign_payload(payload, WEBHOOK_SECRET))
        if created:
            stripe_event_process(event.pk)
    return json.loads(payload)


def subscribe(sandbox: StripeSandbox, account, plan_code: str, user=None) -> Subscription:
    """The whole first purchase: checkout, the buyer pays, Stripe sends checkout.session.completed."""
    plan = Plan.objects.get(code=plan_code)
    url = checkout_start(
        account=account, plan=plan, user=user, success_url="https://shop.test/ok", cancel_url="https://shop.test/no"
    )
    session_id = url.rsplit("/", 1)[-1]
    sandbox.complete_checkout(session_id)
    deliver(sandbox, "checkout.session.completed", sandbox.session_public(session_id))
    return Subscription.objects.select_related("plan").get(account=account)


def activate_items(account, count: int, *, start: int = 0) -> list:
    return [make_item(account, n=start + n, sku=f"ACT-{account.pk}-{start + n}") for n in range(count)]


def now() -> int:
    return int(time.time())
