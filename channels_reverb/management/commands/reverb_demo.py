"""Connect the demo shop to two loopback Reverb shops and list its catalogue on both."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

# name -> (sandbox port, pull offset seconds): two shops, so a sale on one ends the other.
DEMO_SHOPS = {"Reverb main shop (sandbox)": (8765, 0), "Reverb outlet (sandbox)": (8766, 30)}


class Command(BaseCommand):
    help = (
        "Give the demo account two Reverb connections pointing at loopback sandboxes (ports 8765 and 8766, "
        "run by `make run`) and list every active demo item on both. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars", help="Account slug (default: the demo account).")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        for priority, (name, (port, offset)) in enumerate(DEMO_SHOPS.items(), 1):
            connection, created = ReverbConnection.objects.get_or_create(
                account=owner,
                name=name,
                defaults={
                    "api_token": DEFAULT_TOKEN,
                    "base_url": f"http://127.0.0.1:{port}/api",
                    "priority": priority,
                    "pull_offset_seconds": offset,
                    "timeout_seconds": 5,
                },
            )
            self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.base_url}")
        # Only items never listed on these shops: a second run must not override what staff
        # decided since (a delisted item stays delisted). The sandboxes keep their state on disk.
        connections = ReverbConnection.objects.filter(account=owner, name__in=list(DEMO_SHOPS))
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE)
            .exclude(listings__connection__in=connections)
            .values_list("pk", flat=True)
        )
        if fresh:
            result = listings_publish(account=owner, item_ids=fresh, actor=Actor(source=Source.COMMAND))
            self.stdout.write(
                f"Listing {len(result.done)} item(s) on both sandbox shops (the worker publishes them once the "
                "sandboxes run)."
            )
        else:
            self.stdout.write("Every active demo item was listed before; nothing changed (staff decisions are kept).")
        self.stdout.write(
            "Sell one on the main shop and watch it end on the outlet: "
            ".venv/bin/python manage.py reverb_simulate_sale --sku DEMO-001"
        )
