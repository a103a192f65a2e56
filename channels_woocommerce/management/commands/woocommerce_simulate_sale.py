"""A buyer checks out on a running loopback WooCommerce shop (its signed order.created goes out)."""

import requests
from django.core.management.base import BaseCommand, CommandError

from .woocommerce_demo import DEMO_PORT


class Command(BaseCommand):
    help = "Sell a product on a running woocommerce_sandbox; the shop delivers order.created to its webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--sku", required=True)
        parser.add_argument("--quantity", type=int, default=1)
        parser.add_argument("--status", default="processing", help="pending, on-hold, processing, completed...")
        parser.add_argument("--sandbox-url", default=f"http://127.0.0.1:{DEMO_PORT}")

    def handle(self, *args, sku: str, quantity: int, status: str, sandbox_url: str, **options):
        try:
            answer = requests.post(
                f"{sandbox_url.rstrip('/')}/_sandbox/sales",
                json={"sku": sku, "quantity": quantity, "status": status},
                timeout=30,
            )
        except requests.RequestException as error:
            raise CommandError(f"The sandbox at {sandbox_url} does not answer: {error.__class__.__name__}.") from error
        if answer.status_code != 201:
            raise CommandError(f"The sandbox refused the sale: {answer.text}")
        order = answer.json()
        self.stdout.write(f"Order {order['id']} ({order['status']}) for {sku} placed on the website.")
