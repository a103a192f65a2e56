"""Connect the demo shop to a loopback Etsy and list the vintage part of its catalogue there."""

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account
from channels_etsy import mappers
from channels_etsy.models import EtsyConnection
from channels_etsy.sandbox import (
    DEFAULT_KEYSTRING,
    DEFAULT_SHARED_SECRET,
    READINESS_STATE_ID,
    RETURN_POLICY_ID,
    SHIPPING_PROFILE_ID,
    SHOP_ID,
)
from inventory.models import Item, ItemPhoto, Source
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.states import ItemState

from .etsy_sandbox import DEMO_ACCESS_TOKEN, DEMO_REFRESH_TOKEN, DEMO_WEBHOOK_SECRET

NAME = "Etsy vintage shop (sandbox)"
PORT = 8770
DEMO_TAXONOMY_ID = 1234


class Command(BaseCommand):
    help = (
        f"Give the demo account an Etsy connection pointing at the loopback Etsy (port {PORT}, run by `make run`) "
        "and list the demo items Etsy takes (at least 20 years old, with a photo) there. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--account", default="demo-guitars", help="Account slug (default: the demo account).")

    @transaction.atomic
    def handle(self, *args, account: str, **options):
        owner = Account.objects.filter(slug=account).first()
        if owner is None:
            raise CommandError(f"No account {account!r}: run `manage.py create_demo` first.")
        base = f"http://127.0.0.1:{PORT}"
        connection, created = EtsyConnection.objects.get_or_create(
            account=owner,
            name=NAME,
            defaults={
                "keystring": DEFAULT_KEYSTRING,
                "shared_secret": DEFAULT_SHARED_SECRET,
                "access_token": DEMO_ACCESS_TOKEN,
                "refresh_token": DEMO_REFRESH_TOKEN,
                "webhook_secret": DEMO_WEBHOOK_SECRET,
                "shop_id": SHOP_ID,
                "shipping_profile_id": SHIPPING_PROFILE_ID,
                "return_policy_id": RETURN_POLICY_ID,
                "readiness_state_id": READINESS_STATE_ID,
                "default_taxonomy_id": DEMO_TAXONOMY_ID,
                "api_base_url": base,
                "authorize_url": f"{base}/oauth/connect",
                "token_url": f"{base}/v3/public/oauth/token",
                "pull_offset_seconds": 15,
                "timeout_seconds": 5,
            },
        )
        self.stdout.write(f"{'created' if created else 'kept'}: {connection} -> {connection.api_base_url}")
        candidates = Item.objects.filter(account=owner, state=ItemState.ACTIVE).exclude(listings__connection=connection)
        vintage = []
        for item in candidates:
            years = mappers.year_range(item.year)
            if years and date.today().year - years[1] >= mappers.VINTAGE_YEARS:
                if not item.photos.exists():  # Etsy activates only with a photo: the sandbox serves one
                    ItemPhoto.objects.create(item=item, url=f"{base}/_sandbox/photos/{item.sku}.jpg")
                vintage.append(item.pk)
        if vintage:
            result = listings_publish(
                account=owner, item_ids=vintage, connection_ids=[connection.pk], actor=Actor(source=Source.COMMAND)
            )
            self.stdout.write(f"Listing {len(result.done)} vintage item(s) on the Etsy sandbox shop.")
        else:
            self.stdout.write("No vintage demo item left to list on Etsy (staff decisions are kept).")
        self.stdout.write(
            f'Sell one there: curl -X POST {base}/_sandbox/sell -d \'{{"sku": "<a listed SKU>"}}\' (a signed '
            "order.paid webhook follows; the pull catches it without one too)."
        )
