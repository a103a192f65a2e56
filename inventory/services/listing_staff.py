"""Staff verbs on one item's listing on one shop, built from the sync engine's public steps.

The engine (listings.py) acts on items everywhere; the item page also offers "Delist here".
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import Account

from ..channels import END_WITHDRAWN
from ..models import ChannelListing, DesiredState
from .actor import Actor
from .listings import listings_want_ended


def listing_end_on(*, account: Account, item_id: int, connection_id: int, actor: Actor) -> bool:
    """Take an item off sale on one shop (withdrawn). A worker ends it and reads it back.

    Returns False when it is not for sale there (nothing to do). Other shops are untouched.
    """
    with transaction.atomic():
        listing = (
            ChannelListing.objects.select_for_update()
            .filter(account=account, item_id=item_id, connection_id=connection_id, desired_state=DesiredState.LIVE)
            .first()
        )
        if listing is None:
            return False
        to_end = listings_want_ended([listing], reason=END_WITHDRAWN, now=timezone.now())
        if to_end:
            from ..tasks import enqueue_converge  # the task module imports the services

            transaction.on_commit(lambda: [enqueue_converge(pk) for pk in to_end])
    return True
