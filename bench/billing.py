"""What billing adds to the hot paths, on PostgreSQL and Redis: the listing gate, the API's
plan check and rate counter, and a Stripe webhook (verify, store, re-read from the sandbox).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_billing .venv/bin/python bench/billing.py

It migrates its own database, makes one account, and prints p50/p95 in milliseconds. It is
not a test: it prints figures.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

N = 300


def _ms(samples: list[float]) -> str:
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    return f"p50 {statistics.median(samples) * 1000:6.2f} ms   p95 {p95 * 1000:6.2f} ms"


def _time(fn, n: int = N) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        sys.exit("Set DATABASE_URL=postgres://... (the figures are for PostgreSQL).")
    call_command("migrate", verbosity=0)
    cache.clear()
    from accounts.models import Account
    from accounts.services import account_create, staff_user_create
    from billing.models import Plan
    from billing.sandbox import StripeSandbox, sign_payload
    from billing.services import checkout_start, plan_assign, plans_ensure
    from inventory.models import Item
    from inventory.services import Actor, item_create

    plans_ensure()
    slug = f"bench-billing-{int(time.time())}"
    account = account_create(name="Bench Billing", slug=slug)
    user = staff_user_create(account=account, username=slug, password="bench-password-123456")
    Plan.objects.filter(code="pro").update(max_active_listings=1_000_000, api_requests_per_minute=1_000_000)
    plan_assign(account=account, plan=Plan.objects.get(code="pro"))
    actor = Actor(source="bench")

    def create(state):
        return lambda i: item_create(
            account=account, actor=actor, fields={"title": f"Bench {state} {i}", "price": Decimal("10")}, state=state
        )

    create("draft")(0)  # warm up
    drafts = _time(create("draft"))
    actives = _time(create("active"))
    print(f"item_create draft (no gate)           {_ms(drafts)}")
    print(
        f"item_create active (gate: lock+count) {_ms(actives)}   active items: {Item.objects.filter(account=account, state='active').count()}"
    )

    api = APIClient()
    api.force_authenticate(user)
    api.get("/api/v1/billing/plans/")
    with_billing = _time(lambda i: api.get("/api/v1/billing/plans/"))
    plain = dict(settings.REST_FRAMEWORK)
    plain["DEFAULT_PERMISSION_CLASSES"] = ["accounts.api.permissions.IsAccountMember"]
    plain["DEFAULT_THROTTLE_CLASSES"] = []
    with override_settings(REST_FRAMEWORK=plain):
        api.get("/api/v1/billing/plans/")
        without = _time(lambda i: api.get("/api/v1/billing/plans/"))
    print(f"GET /api/v1/billing/plans/ with plan check + rate counter {_ms(with_billing)}")
    print(f"GET /api/v1/billing/plans/ without them                   {_ms(without)}")

    with (
        StripeSandbox() as sandbox,
        override_settings(
            STRIPE_SECRET_KEY="sk_test_bench", STRIPE_WEBHOOK_SECRET="whsec_bench", STRIPE_API_BASE=sandbox.url
        ),
    ):
        sandbox.add_price("price_bench_pro", 2900)
        Plan.objects.filter(code="pro").update(stripe_price_id="price_bench_pro")
        buyer = account_create(name="Bench Buyer", slug=f"{slug}-buyer")
        url = checkout_start(
            account=buyer,
            plan=Plan.objects.get(code="pro"),
            user=None,
            success_url="https://x.test/ok",
            cancel_url="https://x.test/no",
        )
        session_id = url.rsplit("/", 1)[-1]
        subscription = sandbox.complete_checkout(session_id)
        client = Client()

        def deliver(i):
            payload = sandbox.event_payload("customer.subscription.updated", subscription)
            response = client.post(
                "/billing/stripe/webhook/",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign_payload(payload, "whsec_bench"),
            )
            assert response.status_code == 200, response.content

        webhooks = _time(deliver, 100)
        print(f"Stripe webhook (verify, store, re-read, mirror) {_ms(webhooks)}")
    Plan.objects.filter(code="pro").update(max_active_listings=300, api_requests_per_minute=120, stripe_price_id="")
    Account.objects.filter(slug__startswith=slug).count()


if __name__ == "__main__":
    main()
