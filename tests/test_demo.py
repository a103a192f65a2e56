"""The demo shop a newcomer meets with `make run`: photos on every item, drawn (no photographs are shipped)."""

from io import StringIO

import pytest
from django.core.management import call_command
from PIL import Image

from inventory.models import Item

pytestmark = pytest.mark.django_db


def test_every_demo_item_has_a_photo_that_is_a_real_image(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path

    call_command("create_demo", stdout=StringIO())

    items = list(Item.objects.filter(account__slug="demo-guitars").prefetch_related("photos"))
    assert items and all(item.photos.count() == 1 for item in items)
    photo = items[0].photos.get()
    with Image.open(photo.image.path) as image:
        assert image.format == "JPEG" and image.size == (1200, 900)
    assert photo.alt_text.endswith("(demo illustration)")


def test_reverb_demo_connects_two_shops_shows_one_double_sale_and_keeps_staff_decisions(settings, tmp_path):
    from django.db import transaction

    from inventory.models import ChannelListing, Conflict, DesiredState
    from inventory.services import Actor
    from inventory.services.listings import listings_end

    settings.MEDIA_ROOT = tmp_path
    call_command("create_demo", stdout=StringIO())
    call_command("reverb_demo", stdout=StringIO())
    [conflict] = Conflict.objects.all()
    assert conflict.item.sku == "DEMO-019"
    delisted = Item.objects.get(sku="DEMO-001")
    with transaction.atomic():
        listings_end(account=delisted.account, item_ids=[delisted.pk], actor=Actor(source="test"))

    call_command("reverb_demo", stdout=StringIO())  # make run, the second time

    assert Conflict.objects.count() == 1
    assert set(ChannelListing.objects.filter(item=delisted).values_list("desired_state", flat=True)) == {
        DesiredState.ENDED
    }
