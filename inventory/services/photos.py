"""Photos of an item, and clearing the review flag of imported items.

Any change to an item's photos marks its live listings to be revised, so every channel
shows the photos the shop has now (a photo-only edit is a real edit).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ..models import AlertKind, Item, ItemPhoto
from .actor import Actor
from .alerts import alerts_resolve_cause
from .listings import listings_mark_changed

MAX_PHOTOS = 24  # what the strictest channel takes (eBay: 24 image URLs)


def _locked_item(item_id: int) -> Item:
    return Item.objects.select_for_update().get(pk=item_id)


def photo_add(
    *, item_id: int, actor: Actor, url: str = "", image=None, alt_text: str = "", position: int | None = None
) -> ItemPhoto:
    """Add a photo (an upload or a URL) at `position` (the end when left out)."""
    with transaction.atomic():
        item = _locked_item(item_id)
        if item.photos.count() >= MAX_PHOTOS:
            raise ValidationError({"photos": [f"An item holds at most {MAX_PHOTOS} photos; remove one first."]})
        if position is None:
            position = (item.photos.aggregate(top=Max("position"))["top"] or -1) + 1
        photo = ItemPhoto(item=item, url=url or "", image=image or "", alt_text=alt_text, position=position)
        photo.full_clean()
        photo.save()
        listings_mark_changed([item.pk])
    return photo


def photos_reorder(*, item_id: int, actor: Actor, photo_ids: Sequence[int]) -> list[ItemPhoto]:
    """Put the item's photos in this order. Every photo of the item must be named once."""
    with transaction.atomic():
        item = _locked_item(item_id)
        photos = {photo.pk: photo for photo in item.photos.all()}
        if sorted(photo_ids) != sorted(photos) or len(set(photo_ids)) != len(photo_ids):
            raise ValidationError(
                {"photo_ids": [f"Name each of this item's photos once: {', '.join(map(str, sorted(photos)))}."]}
            )
        for position, photo_id in enumerate(photo_ids):
            photos[photo_id].position = position
        ItemPhoto.objects.bulk_update(photos.values(), ["position"])
        listings_mark_changed([item.pk])
    return [photos[photo_id] for photo_id in photo_ids]


def photo_remove(*, item_id: int, actor: Actor, photo_id: int) -> None:
    with transaction.atomic():
        item = _locked_item(item_id)
        deleted, _ = ItemPhoto.objects.filter(item=item, pk=photo_id).delete()
        if not deleted:
            raise ValidationError({"photo": [f"Item {item.sku} has no photo {photo_id}."]})
        listings_mark_changed([item.pk])


def photos_changed(*, item_id: int) -> int:
    """The admin edited photos in place (the inline): push them to the live listings."""
    with transaction.atomic():
        return listings_mark_changed([item_id])


def items_mark_reviewed(*, item_ids: Sequence[int], actor: Actor) -> int:
    """Staff checked these imported items: clear the flag and the review alerts. Returns how many."""
    with transaction.atomic():
        n = Item.objects.filter(pk__in=list(item_ids), needs_review=True).update(
            needs_review=False, updated_at=timezone.now()
        )
        alerts_resolve_cause(item_id__in=list(item_ids), kind=AlertKind.REVIEW, resolution="Marked reviewed by staff.")
    return n
