"""Connect the demo shop to a loopback WooCommerce website and list its catalogue there too."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

DEMO_NAME = "Website (WooCommerce sandbox)"
DEMO_PORT = 8768


class Command(BaseCommand):
    help = (
        f"Give the demo account a WooCommerce connection pointing at the loopback shop (port {DEMO_PORT}, run by "
        "`make run`) and list every active demo item on all its connections. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars", help="Account slug (default: the demo account).")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        connection, created = WooCommerceConnection.objects.get_or_create(
            account=owner,
            name=DEMO_NAME,
            defaults={
                "store_url": f"http://127.0.0.1:{DEMO_PORT}",
                "consumer_key": DEFAULT_KEY,
                "consumer_secret": DEFAULT_SECRET,
                "key_permissions": "read_write",
                "priority": 60,
                "pull_offset_seconds": 15,
                "timeout_seconds": 5,
                "category_ids": {"Electric Guitars": [17], "Amplifiers": [18], "Effects": [19]},
            },
        )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.store_url}")
        # Only items never listed on this shop, and only here: a second run keeps what staff decided.
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE)
            .exclude(listings__connection=connection)
            .values_list("pk", flat=True)
        )
        if fresh:
            result = listings_publish(
                account=owner, item_ids=fresh, actor=Actor(source=Source.COMMAND), connection_ids=[connection.pk]
            )
            self.stdout.write(f"Listing {len(result.done)} item(s) (the worker publishes them once the sandboxes run).")
        else:
            self.stdout.write("Every active demo item was listed on the website before; nothing changed.")
        self.stdout.write(
            "Sell one on the website and watch it end on Reverb: "
            ".venv/bin/python manage.py woocommerce_simulate_sale --sku DEMO-001"
        )
