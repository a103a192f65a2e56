"""A buyer checks out on the running Shopify sandbox (for the demo): order, stock down, signed webhooks."""

import os

import requests
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Sell a product on a running shopify_sandbox, as a buyer on the website would. Writes nothing here."

    def add_arguments(self, parser):
        parser.add_argument("--sku", required=True, help="Sell the product for sale with this SKU.")
        parser.add_argument("--quantity", type=int, default=1)
        parser.add_argument("--financial-status", default="PAID", help="PAID (default), PENDING, AUTHORIZED...")
        parser.add_argument("--no-webhook", action="store_true", help="Create the order without the webhooks.")
        parser.add_argument(
            "--sandbox-url",
            default=os.environ.get("SHOPIFY_SANDBOX_URL", "http://127.0.0.1:8767"),
            help="Where shopify_sandbox runs.",
        )

    def handle(self, *args, **options):
        root = options["sandbox_url"].rstrip("/").split("/admin/")[0]
        body = {
            "sku": options["sku"],
            "quantity": options["quantity"],
            "financial_status": options["financial_status"],
            "deliver_webhook": not options["no_webhook"],
        }
        try:
            response = requests.post(f"{root}/_sandbox/sales", json=body, timeout=15)
        except requests.RequestException as error:
            raise CommandError(f"No Shopify sandbox at {root}: {error.__class__.__name__}. Is it running?") from None
        answer = response.json() if response.content else {}
        if response.status_code != 201:
            raise CommandError(f"The sandbox refused the sale: {answer.get('error') or response.status_code}")
        order = answer["order"]
        self.stdout.write(f"Sold {options['sku']} on Shopify: order {order['name']} ({order['id']}).")
