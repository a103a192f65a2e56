"""Items and the state machine: create, edit, transition (one or many), auto-archive."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from billing.gates import Limit, check_limit

from ..errors import TransitionNotAllowed
from ..models import (
    Item,
    ItemPhoto,
    ItemStateChange,
    MovementKind,
)
from ..states import ItemState, allowed_targets, can_transition
from .actor import SYSTEM, Actor
from .listings import listings_follow_item_state, listings_mark_changed
from .returning import insert_rows
from .seo import seo_edits_record
from .stock import _set_on_hand, _write_movement

# Fields a shop edits freely; state and stock change only through their own operations.
EDITABLE_FIELDS = (
    "sku",
    "title",
    "brand",
    "model",
    "year",
    "finish",
    "category",
    "condition",
    "serial_number",
    "description",
    "price",
    "cost",
    "currency",
    "storage_location",
    "seo_title",
    "seo_description",
    "seo_keywords",
    "video_url",
)


# --- Items ----------------------------------------------------------------------------


def _generate_sku(account: Account, item: Item) -> str:
    prefix = "".join(ch for ch in (item.brand or "ITM").upper() if ch.isascii() and ch.isalnum())[:4] or "ITM"
    return f"{prefix}-{secrets.token_hex(3).upper()}"


def item_create(
    *,
    account: Account,
    actor: Actor,
    fields: Mapping[str, object],
    quantity: int = 1,
    state: str = ItemState.DRAFT,
    photo_urls: Sequence[str] = (),
) -> Item:
    """Create an item with its first history row and, if it has stock, a "received" ledger row.

    A blank SKU gets a generated one. Raises ValidationError (nothing written) on bad input.
    """
    if state not in (ItemState.DRAFT, ItemState.ACTIVE):
        raise ValidationError({"state": "A new item starts as draft or active."})
    if quantity < 0:
        raise ValidationError({"quantity_on_hand": "Quantity cannot be negative."})
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})

    # Stock starts at zero and arrives through the ledger, so the ledger always adds up.
    item = Item(account=account, quantity_on_hand=0, state=state, **fields)
    if not item.currency:
        item.currency = account.default_currency
    generate = not item.sku
    for _attempt in range(5):
        if generate:
            item.sku = _generate_sku(account, item)
        item.full_clean()
        try:
            with transaction.atomic():
                if state == ItemState.ACTIVE:
                    check_limit(account, Limit.ACTIVE_LISTINGS, adding=1)  # the plan: raises PlanLimitReached (402)
                item.save(force_insert=True)
                ItemStateChange.objects.create(
                    account=account,
                    item=item,
                    from_state="",
                    to_state=state,
                    user_id=actor.user_id,
                    source=actor.source,
                    reason="created",
                )
                if quantity:
                    _write_movement(item, actor, MovementKind.RECEIVED, on_hand_delta=quantity, reason="initial stock")
                for position, url in enumerate(photo_urls):
                    photo = ItemPhoto(item=item, url=url, position=position)
                    photo.full_clean()
                    photo.save()
            return item
        except IntegrityError:
            item.pk = None
            if not generate or not Item.objects.filter(account=account, sku=item.sku).exists():
                raise
    raise ValidationError({"sku": "Could not generate a free SKU; enter one."})


def item_update(*, item_id: int, actor: Actor, changes: Mapping[str, object]) -> Item:
    """Change an item's editable fields and, if `quantity_on_hand` is given, its stock."""
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item_id)
        quantity = changes.get("quantity_on_hand")
        unknown = set(changes) - set(EDITABLE_FIELDS) - {"quantity_on_hand"}
        if unknown:
            raise ValidationError({name: "This field cannot be changed here." for name in sorted(unknown)})
        changed = []
        before = {}
        for name, value in changes.items():
            if name != "quantity_on_hand" and getattr(item, name) != value:
                before[name] = getattr(item, name)
                setattr(item, name, value)
                changed.append(name)
        if changed:
            item.full_clean()
            item.save(update_fields=[*changed, "updated_at"])
            seo_edits_record(item, before, actor)  # the SEO fields' history (what each channel shows follows them)
        stock_changed = quantity is not None and quantity != item.quantity_on_hand
        if stock_changed:
            _set_on_hand(item, int(quantity), actor, reason="edited")
        if changed or stock_changed:
            listings_mark_changed([item.pk])
    return item


# --- State machine --------------------------------------------------------------------


def item_transition(*, item_id: int, to_state: str, actor: Actor, reason: str = "") -> Item:
    """Move one item to `to_state`, under a row lock, with a history row.

    Raises TransitionNotAllowed when the state machine forbids the move.
    """
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=item_id)
        if not can_transition(item.state, to_state):
            raise TransitionNotAllowed(
                f"{item.sku} is {item.state} and cannot move to {to_state}. "
                f"Allowed from {item.state}: {', '.join(allowed_targets(item.state)) or 'none'}.",
                sku=item.sku,
                state=item.state,
                to_state=to_state,
                allowed=allowed_targets(item.state),
            )
        if to_state == ItemState.ACTIVE:
            check_limit(item.account_id, Limit.ACTIVE_LISTINGS, adding=1)  # the plan: raises PlanLimitReached (402)
        _apply_transition([item], to_state, actor, reason)
    return item


@dataclass
class BulkTransitionResult:
    """What a bulk transition did, item by item."""

    to_state: str
    moved: list[dict] = field(default_factory=list)
    not_moved: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        text = f"{len(self.moved)} moved to {self.to_state}"
        if self.not_moved:
            text += f"; {len(self.not_moved)} not moved"
        return text


def item_bulk_transition(
    *, account: Account | None, item_ids: Iterable[int], to_state: str, actor: Actor, reason: str = ""
) -> BulkTransitionResult:
    """Move many items at once; report per item what moved and what did not, and why.

    One transaction, rows locked in primary-key order. `account=None` (platform staff)
    acts on any account's items.
    """
    if to_state not in ItemState.values:
        raise ValidationError({"to_state": f"Unknown state {to_state!r}. Use one of {', '.join(ItemState.values)}."})
    wanted = list(dict.fromkeys(int(i) for i in item_ids))
    result = BulkTransitionResult(to_state=to_state)
    with transaction.atomic():
        qs = Item.objects.filter(pk__in=wanted)
        if account is not None:
            qs = qs.filter(account=account)
        items = list(qs.select_for_update().order_by("pk").only("id", "account_id", "sku", "state"))
        found = {item.pk for item in items}
        movable = []
        for item in items:
            if can_transition(item.state, to_state):
                movable.append(item)
                result.moved.append({"id": item.pk, "sku": item.sku, "from_state": item.state})
            else:
                result.not_moved.append(
                    {
                        "id": item.pk,
                        "sku": item.sku,
                        "state": item.state,
                        "reason": f"cannot move from {item.state} to {to_state}"
                        if item.state != to_state
                        else f"already {to_state}",
                    }
                )
        for item_id in wanted:
            if item_id not in found:
                result.not_moved.append({"id": item_id, "sku": None, "state": None, "reason": "not found"})
        if to_state == ItemState.ACTIVE:
            # The plan's listing limit refuses the whole batch (nothing moves) rather than an
            # arbitrary part of it: the refusal says how many fit, so the shop picks which.
            per_account: dict[int, int] = {}
            for item in movable:
                per_account[item.account_id] = per_account.get(item.account_id, 0) + 1
            for account_id in sorted(per_account):
                check_limit(account_id, Limit.ACTIVE_LISTINGS, adding=per_account[account_id])
        _apply_transition(movable, to_state, actor, reason)
    return result


def _apply_transition(
    items: Sequence[Item], to_state: str, actor: Actor, reason: str, *, follow_listings: bool = True
) -> None:
    """Write the new state and one history row per item. Callers hold the row locks.

    Listings follow the item (off sale when it leaves active, back when a sale is undone)
    unless the caller handles them itself, as the sale path does.
    """
    if not items:
        return
    now = timezone.now()
    Item.objects.filter(pk__in=[i.pk for i in items]).update(state=to_state, state_changed_at=now, updated_at=now)
    _record_history(items, to_state, actor, reason)
    if follow_listings:
        listings_follow_item_state(items, to_state, actor)
    for item in items:
        item.state = to_state
        item.state_changed_at = now


def _record_history(items: Sequence[Item], to_state: str, actor: Actor, reason: str) -> None:
    """One history row per item moving from its (in-memory) state to `to_state`, in one statement."""
    insert_rows(_history_rows(items, to_state, actor, reason), batch_size=2000)


def _history_rows(items: Sequence[Item], to_state: str, actor: Actor, reason: str) -> list[ItemStateChange]:
    """The history rows (unsaved) of these items moving from their (in-memory) state to `to_state`."""
    return [
        ItemStateChange(
            account_id=item.account_id,
            item_id=item.pk,
            from_state=item.state,
            to_state=to_state,
            user_id=actor.user_id,
            source=actor.source,
            reason=reason[:500],
        )
        for item in items
    ]


def items_auto_archive(*, now: datetime | None = None, dry_run: bool = False, actor: Actor = SYSTEM) -> dict:
    """Archive sold and shipped items older than their account's auto-archive age.

    Returns {account slug: [SKUs]} of what was (or, with dry_run, would be) archived.
    """
    now = now or timezone.now()
    archived: dict[str, list[str]] = {}
    for account in Account.objects.filter(auto_archive_after_days__gt=0).order_by("pk"):
        cutoff = now - timedelta(days=account.auto_archive_after_days)
        due = Item.objects.filter(
            account=account, state__in=[ItemState.SOLD, ItemState.SHIPPED], state_changed_at__lt=cutoff
        )
        if dry_run:
            skus = list(due.values_list("sku", flat=True))
            if skus:
                archived[account.slug] = skus
            continue
        with transaction.atomic():
            # Select what is due under the row locks: an item whose sale was undone (sold ->
            # active) after an unlocked read would otherwise be archived from active.
            due_ids = list(due.select_for_update().order_by("pk").values_list("pk", flat=True))
            if not due_ids:
                continue
            result = item_bulk_transition(
                account=account,
                item_ids=due_ids,
                to_state=ItemState.ARCHIVED,
                actor=actor,
                reason=f"auto-archived after {account.auto_archive_after_days} days",
            )
        archived[account.slug] = [row["sku"] for row in result.moved]
    return archived
