"""Connect the demo shop to a loopback V&R dealer site and list its catalogue there."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_vr.models import VRBrandMapping, VRCategoryMapping, VRConnection
from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

NAME = "Vintage & Rare (sandbox)"
PORT = 8775
# Our demo categories -> the sandbox's V&R category ids (as the form's categ_level_0/1 choices).
CATEGORIES = {
    "Electric Guitars": ("51", "83"),
    "Acoustic Guitars": ("51", "85"),
    "Amps": ("52", "90"),
    "Basses": ("53", "95"),
    "Effects and Pedals": ("54", "99"),
    "Parts": ("55", "98"),
}
BRANDS = {"Hofner": "Höfner"}


class Command(BaseCommand):
    help = (
        f"Give the demo account a V&R connection to the loopback dealer site on port {PORT} (run by `make run`), "
        "with category mappings, and list every active demo item on it. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars", help="Account slug (default: the demo account).")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        connection, created = VRConnection.objects.get_or_create(
            account=owner,
            name=NAME,
            defaults={
                "username": DEFAULT_USERNAME,
                "password": DEFAULT_PASSWORD,
                "base_url": f"http://127.0.0.1:{PORT}",
                "step_timeout_seconds": 15,
                "pull_offset_seconds": 45,
            },
        )
        for category, (level_0, level_1) in CATEGORIES.items():
            VRCategoryMapping.objects.get_or_create(
                account=owner,
                connection=connection,
                category=category,
                defaults={"level_0": level_0, "level_1": level_1},
            )
        for brand, vr_brand in BRANDS.items():
            VRBrandMapping.objects.get_or_create(
                account=owner, connection=connection, brand=brand, defaults={"vr_brand": vr_brand}
            )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.base_url}")
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE)
            .exclude(listings__connection=connection)
            .values_list("pk", flat=True)
        )
        if fresh:
            result = listings_publish(
                account=owner, item_ids=fresh, actor=Actor(source=Source.COMMAND), connection_ids=[connection.pk]
            )
            self.stdout.write(f"Listing {len(result.done)} item(s) on V&R (the worker fills the forms in Chromium).")
        else:
            self.stdout.write("Every active demo item was listed on V&R before; nothing changed.")
