"""Connect the demo shop to the loopback Amazon and offer its catalogue there."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_amazon.models import AmazonConnection, AmazonItemAttributes
from channels_amazon.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, DEFAULT_SELLER_ID
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

NAME = "Amazon US (sandbox)"
PORT = 8771
# The ASIN of the models' own sandbox case; the loopback Amazon knows every well-formed ASIN.
DEMO_ASIN = "B07N4M94X4"


class Command(BaseCommand):
    help = (
        f"Give the demo account an Amazon connection to the loopback SP-API on port {PORT} (run by `make run`), an "
        "ASIN for each active demo item that has none, and list them there. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        base = f"http://127.0.0.1:{PORT}"
        connection, created = AmazonConnection.objects.get_or_create(
            account=owner,
            name=NAME,
            defaults={
                "seller_id": DEFAULT_SELLER_ID,
                "lwa_client_id": DEFAULT_CLIENT_ID,
                "lwa_client_secret": DEFAULT_CLIENT_SECRET,
                "refresh_token": DEFAULT_REFRESH_TOKEN,
                "api_base_url": base,
                "token_url": f"{base}/auth/o2/token",
                "default_product_type": "GUITARS",
                "pull_interval_seconds": 300,
                "timeout_seconds": 5,
            },
        )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.api_host}")
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE)
            .exclude(listings__connection=connection)
            .values_list("pk", flat=True)
        )
        for item_id in fresh:
            AmazonItemAttributes.objects.get_or_create(
                item_id=item_id, defaults={"account": owner, "asin": DEMO_ASIN, "product_type": "GUITARS"}
            )
        if fresh:
            result = listings_publish(
                account=owner, item_ids=fresh, actor=Actor(source=Source.COMMAND), connection_ids=[connection.pk]
            )
            self.stdout.write(f"Offering {len(result.done)} item(s) on the Amazon sandbox.")
        self.stdout.write("Sell one there: .venv/bin/python manage.py amazon_simulate_sale --sku DEMO-001")
