"""Connect the demo shop to a loopback Shopify store and list its catalogue there too."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_shopify.models import ShopifyConnection
from channels_shopify.sandbox import DEFAULT_SECRET, DEFAULT_TOKEN, LOCATION_ID, SHOP_DOMAIN
from channels_shopify.sync import DEFAULT_PRIORITY
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

DEMO_NAME = "Shop website (Shopify sandbox)"
DEMO_PORT = 8767


class Command(BaseCommand):
    help = (
        f"Give the demo account a Shopify connection pointing at the loopback store (port {DEMO_PORT}, run by "
        "`make run`) and list every active demo item there that was never listed on it. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars", help="Account slug (default: the demo account).")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        connection, created = ShopifyConnection.objects.get_or_create(
            account=owner,
            name=DEMO_NAME,
            defaults={
                "shop_domain": SHOP_DOMAIN,
                "access_token": DEFAULT_TOKEN,
                "webhook_secret": DEFAULT_SECRET,
                "location_id": LOCATION_ID,
                "api_url": f"http://127.0.0.1:{DEMO_PORT}",
                "priority": DEFAULT_PRIORITY,
                "pull_offset_seconds": 15,
                "timeout_seconds": 5,
            },
        )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.endpoint}")
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE)
            .exclude(listings__connection=connection)
            .values_list("pk", flat=True)
        )
        if fresh:
            result = listings_publish(
                account=owner, item_ids=fresh, actor=Actor(source=Source.COMMAND), connection_ids=[connection.pk]
            )
            self.stdout.write(f"Listing {len(result.done)} item(s) on the Shopify sandbox (the worker publishes them).")
        else:
            self.stdout.write("Every active demo item was listed there before; nothing changed.")
        self.stdout.write(
            "Sell one on the website and watch it end on Reverb: "
            ".venv/bin/python manage.py shopify_simulate_sale --sku DEMO-001"
        )
