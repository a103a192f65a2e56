"""The item state machine: which moves are allowed, in one table."""

from django.db import models


class ItemState(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    SOLD = "sold", "Sold"
    SHIPPED = "shipped", "Shipped"
    ARCHIVED = "archived", "Archived"


# from-state -> the states it may move to. The reverse moves are the ones a shop needs:
# an active item back to draft (pulled for repair or re-pricing), a cancelled sale back
# to active, and an archived item restored as a draft.
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    ItemState.DRAFT: frozenset({ItemState.ACTIVE, ItemState.ARCHIVED}),
    ItemState.ACTIVE: frozenset({ItemState.DRAFT, ItemState.SOLD, ItemState.ARCHIVED}),
    ItemState.SOLD: frozenset({ItemState.SHIPPED, ItemState.ACTIVE, ItemState.ARCHIVED}),
    ItemState.SHIPPED: frozenset({ItemState.ARCHIVED}),
    ItemState.ARCHIVED: frozenset({ItemState.DRAFT}),
}


def can_transition(from_state: str, to_state: str) -> bool:
    return to_state in ALLOWED_TRANSITIONS.get(from_state, frozenset())


def allowed_targets(from_state: str) -> list[str]:
    return sorted(ALLOWED_TRANSITIONS.get(from_state, frozenset()))
