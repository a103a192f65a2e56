"""A buyer checks out on the running Reverb sandbox (for the demo): order + orders/create webhook."""

import json
import os

import requests
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Sell a listing on a running reverb_sandbox, as a Reverb buyer would. Writes nothing here."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--sku", help="Sell the live listing with this SKU.")
        target.add_argument("--listing-id", help="Sell this Reverb listing.")
        parser.add_argument("--quantity", type=int, default=1)
        parser.add_argument("--status", default="paid", help="Order status: paid (default), unpaid, ...")
        parser.add_argument("--no-webhook", action="store_true", help="Create the order without the webhook.")
        parser.add_argument(
            "--sandbox-url",
            default=os.environ.get("REVERB_SANDBOX_URL", "http://127.0.0.1:8765"),
            help="Where reverb_sandbox runs (its /api suffix may be given or not).",
        )

    def handle(self, *args, **options):
        root = options["sandbox_url"].rstrip("/").removesuffix("/api")
        body = {
            "quantity": options["quantity"],
            "status": options["status"],
            "deliver_webhook": not options["no_webhook"],
        }
        if options["sku"]:
            body["sku"] = options["sku"]
        else:
            body["listing_id"] = options["listing_id"]
        try:
            response = requests.post(f"{root}/_sandbox/sales", json=body, timeout=15)
        except requests.RequestException as error:
            raise CommandError(
                f"No Reverb sandbox at {root}: {error.__class__.__name__}. Is reverb_sandbox running?"
            ) from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"message": response.text[:200]}
        if response.status_code != 201:
            raise CommandError(f"The sandbox refused the sale ({response.status_code}): {answer.get('message')}")
        self.stdout.write(
            f"Reverb order {answer['order_number']}: {answer['quantity']} x {answer['sku'] or answer['product_id']} "
            f"for {answer['total']['display']} ({answer['status']})."
        )
        if options["verbosity"] > 1:
            self.stdout.write(json.dumps(answer, indent=2))
