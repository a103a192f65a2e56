"""Factories for test data. Items are made through the services so stock and history add up."""

from decimal import Decimal

import factory

from accounts.models import Account
from inventory.models import ChannelListing, ListingState
from inventory.services import Actor, item_create


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        django_get_or_create = ["slug"]

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")


BRANDS = ["Fender", "Gibson", "Gretsch", "Martin", "Vox", "Marshall", "Boss", "Ibanez"]
CATEGORIES = ["Electric Guitars", "Acoustic Guitars", "Amps", "Effects and Pedals", "Basses"]


def make_item(account, *, n: int = 0, quantity: int = 1, state: str = "active", **fields):
    """An item made the way the shop makes one (service, history row, ledger row)."""
    defaults = {
        "title": f"Test guitar {n}",
        "brand": BRANDS[n % len(BRANDS)],
        "model": f"Model {n}",
        "category": CATEGORIES[n % len(CATEGORIES)],
        "price": Decimal("100.00") + n,
        "storage_location": f"A-{n % 10:02d}",
    }
    defaults.update(fields)
    return item_create(account=account, actor=Actor(source="test"), fields=defaults, quantity=quantity, state=state)


def make_live_listing(item, connection, external_id: str):
    """A listing the channel holds live, as a publish that went through leaves it."""
    return ChannelListing.objects.create(
        account=item.account,
        item=item,
        connection=connection,
        external_id=external_id,
        desired_state="live",
        actual_state=ListingState.LIVE,
    )
