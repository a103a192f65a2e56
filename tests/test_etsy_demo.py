"""The demo's Etsy shop: `etsy_demo` connects the demo account to the loopback Etsy and lists
only what Etsy takes (at least 20 years old), once."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from channels_etsy import mappers
from channels_etsy.models import EtsyConnection
from inventory.models import ChannelListing, Item

pytestmark = pytest.mark.django_db


def test_the_demo_lists_the_vintage_part_of_the_catalogue_on_etsy_once(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    call_command("create_demo", verbosity=0)
    call_command("etsy_demo")
    connection = EtsyConnection.objects.get(name="Etsy vintage shop (sandbox)")
    listed = set(ChannelListing.objects.filter(connection=connection).values_list("item__sku", flat=True))
    vintage = set()
    for item in Item.objects.filter(account=connection.account, state="active"):
        years = mappers.year_range(item.year)
        if years and 2026 - years[1] >= 20:
            vintage.add(item.sku)
    assert listed == vintage and listed
    assert all(Item.objects.get(sku=sku).photos.exists() for sku in listed)
    # a second run changes nothing
    call_command("etsy_demo")
    assert ChannelListing.objects.filter(connection=connection).count() == len(listed)
    assert connection.connected and connection.shop_id
