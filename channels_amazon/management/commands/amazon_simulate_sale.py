"""A buyer orders on the loopback Amazon (manage.py amazon_sandbox must be running)."""

import requests
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Sell units of a SKU on a running Amazon sandbox; the next pull (or the SQS consumer) reads the order."

    def add_arguments(self, parser):
        parser.add_argument("--sku", required=True)
        parser.add_argument("--quantity", type=int, default=1)
        parser.add_argument("--url", default="http://127.0.0.1:8771")

    def handle(self, *args, sku: str, quantity: int, url: str, **options):
        try:
            response = requests.post(f"{url}/_sandbox/sale", json={"sku": sku, "quantity": quantity}, timeout=5)
        except requests.RequestException as error:
            raise CommandError(f"The Amazon sandbox at {url} does not answer: run manage.py amazon_sandbox.") from error
        if response.status_code != 201:
            raise CommandError(f"The sandbox refused the sale: {response.text[:300]}")
        self.stdout.write(f"Amazon order {response.json()['orderId']} for {quantity} x {sku}.")
