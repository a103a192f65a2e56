"""Connect the demo shop to two loopback Reverb shops and list its catalogue on both."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN
from inventory.channels import ORDER_PAID, OrderLineSeen, OrderSeen
from inventory.models import Conflict, Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.selling import sale_record
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
            result = listings_publish(
                account=owner,
                item_ids=fresh,
                actor=Actor(source=Source.COMMAND),
                connection_ids=list(connections.values_list("pk", flat=True)),
            )
            self.stdout.write(
                f"Listing {len(result.done)} item(s) on both sandbox shops (the worker publishes them once the "
                "sandboxes run)."
            )
        else:
            self.stdout.write("Every active demo item was listed before; nothing changed (staff decisions are kept).")
        self._double_sale(owner)
        self.stdout.write(
            "Sell one on the main shop and watch it end on the outlet: "
            ".venv/bin/python manage.py reverb_simulate_sale --sku DEMO-001"
        )

    def _double_sale(self, owner) -> None:
        """One double sale for staff to see and settle: the same guitar bought on both shops 40 s apart
        (recorded as the channels would report it; made once, never again on a later run)."""
        if Conflict.objects.filter(account=owner).exists():
            return
        item = Item.objects.filter(account=owner, sku="DEMO-019", state=ItemState.ACTIVE).first()
        connections = list(
            ReverbConnection.objects.filter(account=owner, name__in=list(DEMO_SHOPS)).order_by("priority")
        )
        if item is None or len(connections) < 2:
            return
        first = timezone.now() - timedelta(minutes=20)
        for n, (connection, when, buyer) in enumerate(
            [(connections[0], first, "Jo Rivera"), (connections[1], first + timedelta(seconds=40), "Kim Novak")], 1
        ):
            sale_record(
                connection=connection,
                seen=OrderSeen(
                    external_id=f"DEMO-DOUBLE-{n}",
                    status=ORDER_PAID,
                    placed_at=when,
                    updated_at=when,
                    lines=(OrderLineSeen(sku=item.sku, external_listing_id="", quantity=1, unit_price=item.price),),
                    currency=item.currency,
                    total=item.price,
                    buyer_name=buyer,
                    ship_name=buyer,
                    ship_line1="1 Demo Street",
                    ship_city="Austin",
                    ship_region="TX",
                    ship_postal_code="78701",
                    ship_country="US",
                ),
            )
        self.stdout.write(f"Recorded a double sale of {item.sku} on both shops: see Conflicts in the admin.")
