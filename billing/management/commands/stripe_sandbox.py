"""Run the loopback Stripe for the demo: checkout pages that "pay" and signed webhooks to this site."""

import time

from django.core.management.base import BaseCommand, CommandError

from billing.models import Plan
from billing.sandbox import StripeSandbox
from billing.services import plan_stripe_prices_set

SANDBOX_KEY = "sk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_demo"


class Command(BaseCommand):
    help = (
        "Start a loopback Stripe (no internet needed) for trying upgrades locally. Start the web process with the "
        "printed STRIPE_* variables; paying on the sandbox's checkout page sends signed webhooks to --webhook-url."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=12111)
        parser.add_argument("--webhook-url", default="http://127.0.0.1:8000/billing/stripe/webhook/")
        parser.add_argument(
            "--use-for-plans",
            action="store_true",
            help="Also point the plans' Stripe price ids at the sandbox's prices (changes the plan rows).",
        )

    def handle(self, *args, port: int, webhook_url: str, use_for_plans: bool, **options):
        sandbox = StripeSandbox(port=port, webhook_url=webhook_url, webhook_secret=SANDBOX_WEBHOOK_SECRET)
        prices = {}
        for plan in Plan.objects.filter(is_public=True, monthly_price__gt=0).order_by("position"):
            price_id = plan.stripe_price_id or f"price_sandbox_{plan.code}"
            sandbox.add_price(price_id, int(plan.monthly_price * 100), currency=plan.currency.lower())
            overage_id = ""
            if plan.allows_listing_overage:
                overage_id = plan.stripe_overage_price_id or f"price_sandbox_{plan.code}_overage"
                sandbox.add_price(overage_id, 1, currency=plan.currency.lower(), metered=True)
            prices[plan.code] = (price_id, overage_id)
        if not prices:
            raise CommandError("No paid plan on sale: nothing to sell in the sandbox.")
        try:
            sandbox.start()
        except OSError as error:
            raise CommandError(f"Port {port} is taken ({error}); pass --port.") from error
        if use_for_plans:
            plan_stripe_prices_set(prices)
            self.stdout.write(
                "Plans now use the sandbox prices: " + ", ".join(f"{c}={p}" for c, (p, _) in prices.items())
            )
        self.stdout.write(
            f"Stripe sandbox on {sandbox.url}. Start the web process with:\n"
            f"  STRIPE_API_BASE={sandbox.url} STRIPE_SECRET_KEY={SANDBOX_KEY} "
            f"STRIPE_WEBHOOK_SECRET={SANDBOX_WEBHOOK_SECRET}\n"
            f"Webhooks go to {webhook_url}. Ctrl-C stops."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            sandbox.stop()
