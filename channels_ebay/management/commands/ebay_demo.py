"""Connect the demo shop to a loopback eBay and list its catalogue there."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_ebay.models import EbayConnection
from channels_ebay.sandbox import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
from inventory.models import Item, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.photos import photo_add
from inventory.states import ItemState

NAME = "eBay (sandbox)"
PORT = 8769
# Leaf categories of eBay US for the demo's categories.
CATEGORIES = {
    "Electric Guitars": "33034",
    "Acoustic Guitars": "33021",
    "Basses": "4713",
    "Amps": "38072",
    "Effects and Pedals": "41407",
}
PLACEHOLDER = "https://placehold.co/800x600.jpg"


class Command(BaseCommand):
    help = (
        f"Give the demo account an eBay connection pointing at the loopback eBay (port {PORT}, run by `make run`) "
        "and list every active demo item there. eBay needs a photo: demo items without one get a placeholder URL. "
        "Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        base = f"http://127.0.0.1:{PORT}"
        connection, created = EbayConnection.objects.get_or_create(
            account=owner,
            name=NAME,
            defaults={
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "api_base_url": base,
                "token_url": f"{base}/identity/v1/oauth2/token",
                "merchant_location_key": "main-warehouse",
                "fulfillment_policy_id": "6100001",
                "payment_policy_id": "6200001",
                "return_policy_id": "6300001",
                "category_ids": CATEGORIES,
                "priority": 40,
                "pull_offset_seconds": 45,
                "timeout_seconds": 5,
                "verification_token": "demo-verification-token-0123456789abcdef",
            },
        )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.api_base_url}")
        # Only items of a mapped category: eBay refuses a listing without a leaf category (25005).
        fresh = list(
            Item.objects.filter(account=owner, state=ItemState.ACTIVE, category__in=list(CATEGORIES))
            .exclude(listings__connection=connection)
            .values_list("pk", flat=True)
        )
        if not fresh:
            self.stdout.write("Every active demo item was listed on eBay before; nothing changed.")
            return
        actor = Actor(source=Source.COMMAND)
        for item in Item.objects.filter(pk__in=fresh, photos__isnull=True):
            photo_add(item_id=item.pk, actor=actor, url=f"{PLACEHOLDER}?text={item.sku}")
        result = listings_publish(account=owner, item_ids=fresh, actor=actor, connection_ids=[connection.pk])
        self.stdout.write(
            f"Listing {len(result.done)} item(s) on the sandbox eBay. Sell one: "
            f'curl -X POST {base}/_sandbox/sales -d \'{{"sku": "DEMO-001"}}\''
        )
