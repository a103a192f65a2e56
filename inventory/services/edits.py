"""Edits made directly on a channel: a listing's price, quantity, title or description changed there.

A pull (or the read-back audit) hands each live listing the channel shows to
`listing_edits_apply`. A field counts as edited on the channel when the channel shows a value
that is neither what we last pushed nor what we want it to say now (so a sale there, which lowers
the quantity here too, or an edit of ours not pushed yet, is not an edit). The connection's
strategy for the field decides:

- ours wins: our value is pushed back (a price beyond the connection's drift tolerance is also a
  price-drift alert, as before strategies existed);
- the channel wins: the value is taken into the item (or into the listing's own override, when it
  has one) and so propagates to the other channels;
- highest / lowest price wins: whichever of ours and the channel's is higher / lower;
- ask staff: a field-edit Conflict keeps both values, the field is not pushed to that listing
  until staff keep ours or take the channel's (`field_edit_settle`).

Ties between channels (the same field edited on two of the item's channels) go to the
connection with the lower priority number (Shopify, Reverb, V&R, eBay by default): before a
value is taken in, the item's other live listings whose connections would also take it in are
read back (`read_listing`), and the edits found there lose to the winner and are pushed back.
Every decision is a row on the item's history.
"""

from __future__ import annotations

import html
import logging
import re
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..channels import ChannelError, ListingPayload, ListingSeen, channel, specific_connection
from ..models import (
    AlertKind,
    ChannelConnection,
    ChannelListing,
    Conflict,
    ConflictKind,
    ConflictStatus,
    DesiredState,
    Item,
    ItemStateChange,
    ListingState,
)
from ..models.channels import EDITED_FIELDS, EditStrategy
from .actor import Actor
from .alerts import alert_raise, alerts_resolve, price_drift_beyond_tolerance
from .listings import _enqueue, content_fingerprint, listing_payload, payload_content
from .seo import channel_title

log = logging.getLogger(__name__)

TAKES_IT_IN = (EditStrategy.CHANNEL, EditStrategy.HIGHEST, EditStrategy.LOWEST)


@dataclass(frozen=True)
class FieldEdit:
    """One field changed on a channel: the channel's value (as shown there) and ours, comparable."""

    field: str
    theirs: object  # the channel's value as it would be stored: Decimal price, int quantity, text
    ours: object  # what we want the listing to say now, in the same terms


_PARAGRAPH_END = re.compile(r"<\s*/\s*(p|div|h[1-6]|li|ul|ol)\s*>", re.IGNORECASE)
_LINE_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_MARKUP = re.compile(r"<\s*/?\s*(p|br|div|span|ul|ol|li|h[1-6]|strong|em|b|i|u|a|table|tr|td)\b", re.IGNORECASE)


def description_text(value: str) -> str:
    """A channel's description as our plain text. Shopify (and others) hold it as HTML of their own
    making from ours: paragraphs and breaks become new lines, other tags go, entities are read."""
    if not _MARKUP.search(value):  # plain text (Reverb's), even with a "<" in it
        return value.strip()
    text = _LINE_BREAK.sub("\n", _PARAGRAPH_END.sub("\n\n", value))
    text = html.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _comparable(field: str, value) -> object:
    if value is None or value == "":
        return None
    if field == "price":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if field == "quantity":
        return int(value)
    if field == "description":
        # The words are what staff edit, not the line wrapping (the channel's markup is read
        # off its side first, by _theirs).
        return " ".join(str(value).split())
    return str(value).strip()


def _theirs(seen: ListingSeen, field: str) -> object:
    """The channel's value of a field, as our plain value (a description without its HTML)."""
    value = getattr(seen, field)
    if field == "description" and value:
        return description_text(str(value))
    return value


def _stored(field: str, value) -> object:
    """A value as pushed_content holds it (price as "1234.00")."""
    if field == "price":
        return f"{Decimal(str(value)):.2f}"
    return value


def _fields_seen(channel_name: str) -> tuple[str, ...]:
    """The fields a channel reads back as pushed (the contract's optional EDITS_SEEN)."""
    seen = getattr(channel(channel_name), "EDITS_SEEN", EDITED_FIELDS)
    return tuple(name for name in EDITED_FIELDS if name in seen)


def _ours_as_shown(channel_name: str, name: str, content: dict) -> set:
    """Our value of a field in every form the channel may show it: for the title, also the
    channel's own cut of it or the SEO title that names the listing there (inventory.services.seo)."""
    forms = {_comparable(name, content.get(name))}
    if name == "title" and content.get("title"):
        forms |= {_comparable(name, title) for title in _titles_pushed(channel_name, content)}
    return forms


def _titles_pushed(channel_name: str, pushed: dict) -> set[str]:
    """The title we sent, and the title the channel shows for it by its own rules (eBay's 80
    characters, the SEO title where it names the listing): either is ours, not a drift."""
    titles = {pushed["title"]}
    try:
        payload = ListingPayload(
            **{
                **{name: value for name, value in pushed.items() if name in ListingPayload.__dataclass_fields__},
                "price": Decimal(str(pushed.get("price") or "0")),
                "photos": tuple(pushed.get("photos") or ()),
            }
        )
    except (TypeError, ArithmeticError):
        return titles  # pushed by an older version with other fields: compare the title alone
    titles.add(channel_title(channel_name, payload))
    return titles


def fields_changed_since_push(channel_name: str, pushed: dict | None, seen: ListingSeen) -> list[str]:
    """The fields the channel shows with a value other than what we last pushed (no query).

    The first, cheap half of `listing_edits`: a listing for which this is empty has no edit, so
    a scan compares thousands of unchanged listings with only what it already read. Our own
    value is compared first; the forms the channel may show it in (its cut of the title, the
    SEO title) are worked out only when that differs.
    """
    pushed = pushed or {}
    differs = []
    for name in _fields_seen(channel_name):
        theirs = _comparable(name, _theirs(seen, name))
        if theirs is None or pushed.get(name) in (None, ""):
            continue
        if theirs != _comparable(name, pushed.get(name)) and theirs not in _ours_as_shown(channel_name, name, pushed):
            differs.append(name)
    return differs


def listing_edits(listing: ChannelListing, seen: ListingSeen) -> list[FieldEdit]:
    """The fields the channel shows changed: neither what we pushed last nor what we want now.

    A channel that does not report a field (blank title, no price), or says it does not read it
    back as pushed (its EDITS_SEEN), never counts as editing it.
    """
    channel_name = listing.connection.channel
    differs = fields_changed_since_push(channel_name, listing.pushed_content, seen)
    if not differs:
        return []
    wanted = payload_content(listing_payload(listing))
    edits = []
    for name in differs:
        ours = _comparable(name, wanted.get(name))
        theirs = _comparable(name, _theirs(seen, name))
        if theirs not in _ours_as_shown(channel_name, name, wanted):
            # Text is taken in as the channel has it (less its markup); numbers as compared.
            taken = _theirs(seen, name) if name in ("title", "description") else theirs
            edits.append(FieldEdit(name, taken, ours))
    return edits


@dataclass(frozen=True)
class _Candidate:
    listing: ChannelListing
    edit: FieldEdit

    @property
    def rank(self) -> tuple[int, int]:
        return (self.listing.connection.priority, self.listing.connection_id)


def _rival_edits(listing: ChannelListing, name: str) -> list[_Candidate]:
    """The same field edited on the item's other channels that would also take it in (read back now)."""
    rivals = []
    others = (
        ChannelListing.objects.filter(
            item_id=listing.item_id,
            desired_state=DesiredState.LIVE,
            actual_state=ListingState.LIVE,
            connection__enabled=True,
            **{f"connection__edit_{name}__in": TAKES_IT_IN},
        )
        .exclude(pk=listing.pk)
        .exclude(external_id="")
        .select_related("item", "connection")
    )
    for other in others:
        try:
            seen = channel(other.connection.channel).read_listing(
                specific_connection(other.connection), other.external_id
            )
        except ChannelError as error:  # that channel's edit, if any, is decided at its own next pull
            log.warning("reading %s on %s for a tie failed: %s", other.external_id, other.connection, error)
            continue
        if seen is None or seen.state != "live":
            continue
        for edit in listing_edits(other, seen):
            if edit.field == name:
                rivals.append(_Candidate(other, edit))
    return rivals


def _winner(candidates: list[_Candidate]) -> _Candidate | None:
    """Who wins among channels that edited one field: None when ours does.

    The connection first by priority decides how: the channel wins, or the highest / lowest of
    ours and the channels' prices (an equal price goes to the channel first by priority).
    """
    candidates = sorted(candidates, key=lambda c: c.rank)
    lead = candidates[0]
    how = lead.listing.connection.edit_strategy(lead.edit.field)
    if how == EditStrategy.CHANNEL:
        return lead
    ours = lead.edit.ours
    pick = max if how == EditStrategy.HIGHEST else min
    best = pick(candidates, key=lambda c: c.edit.theirs)  # the first of equals: priority order
    if ours is not None and pick(ours, best.edit.theirs) == ours:
        return None
    return best


def _history(item: Item, actor: Actor, reason: str) -> None:
    ItemStateChange.objects.create(
        account_id=item.account_id,
        item=item,
        from_state=item.state,
        to_state=item.state,
        user_id=actor.user_id,
        source=actor.source,
        reason=reason[:500],
    )


def _show(value) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _push_back(listing: ChannelListing, fields: dict[str, object]) -> None:
    """Ours goes out again: what the channel shows is recorded as pushed, so exactly those fields are revised."""
    locked = ChannelListing.objects.select_for_update().get(pk=listing.pk)
    locked.pushed_content = {**locked.pushed_content, **{k: _stored(k, v) for k, v in fields.items()}}
    locked.pushed_fingerprint = ""
    locked.needs_push = True
    locked.desired_changed_at = timezone.now()
    locked.save(update_fields=["pushed_content", "pushed_fingerprint", "needs_push", "desired_changed_at"])
    _enqueue([locked.pk])


def _take_in(winner: ChannelListing, name: str, value, actor: Actor) -> str:
    """The channel's value becomes ours: the item's (for every channel), or the listing's override when
    it has one for this field. Recorded as pushed to the winner, so it is not sent back there."""
    from .items import item_update

    listing = ChannelListing.objects.select_for_update().select_related("item").get(pk=winner.pk)
    item = listing.item
    where = "into the item"
    if name == "price" and listing.price_override is not None:
        listing.price_override = value
        listing.needs_push = True
        listing.save(update_fields=["price_override", "needs_push", "updated_at"])
        where = "into this channel's own price"
    elif name == "title" and listing.title_override:
        listing.title_override = str(value)[:200]
        listing.needs_push = True
        listing.save(update_fields=["title_override", "needs_push", "updated_at"])
        where = "into this channel's own title"
    elif name == "quantity":
        item_update(item_id=item.pk, actor=actor, changes={"quantity_on_hand": int(value) + item.quantity_locked})
    else:
        item_update(item_id=item.pk, actor=actor, changes={name: value})
    listing.refresh_from_db()
    pushed = {**listing.pushed_content, name: _stored(name, value)}
    ChannelListing.objects.filter(pk=listing.pk).update(
        pushed_content=pushed, pushed_fingerprint=content_fingerprint(pushed)
    )
    _enqueue([listing.pk])
    return where


def _open_conflict(listing: ChannelListing, edit: FieldEdit, actor: Actor) -> Conflict:
    """Ask staff: one open conflict per listing and field, its channel value kept current."""
    theirs = str(_stored(edit.field, edit.theirs))
    ours = "" if edit.ours is None else str(_stored(edit.field, edit.ours))
    conflict = Conflict.objects.filter(
        listing=listing, field=edit.field, kind=ConflictKind.FIELD_EDIT, status=ConflictStatus.OPEN
    ).first()
    if conflict is not None:
        if conflict.theirs != theirs:
            Conflict.objects.filter(pk=conflict.pk).update(theirs=theirs, ours=ours)
        return conflict
    try:
        with transaction.atomic():
            conflict = Conflict.objects.create(
                account_id=listing.account_id,
                kind=ConflictKind.FIELD_EDIT,
                item=listing.item,
                listing=listing,
                field=edit.field,
                ours=ours,
                theirs=theirs,
            )
    except IntegrityError:  # opened by another pull a moment ago
        return Conflict.objects.get(listing=listing, field=edit.field, status=ConflictStatus.OPEN)
    shop = listing.connection.name
    alert_raise(
        account_id=listing.account_id,
        kind=AlertKind.CHANNEL_EDIT,
        dedupe_key=f"channel-edit:{conflict.pk}",
        title=f"{listing.item.sku}: {edit.field} changed on {shop} to {_show(theirs)} (ours: {_show(ours)})",
        message="Keep ours (pushed back to the channel) or take the channel's (into the item, for every channel).",
        item=listing.item,
        listing=listing,
        conflict=conflict,
        connection=listing.connection,
    )
    _history(
        listing.item,
        actor,
        f"{edit.field.capitalize()} changed on {shop} to {_show(theirs)} (ours {_show(ours)}): staff asked.",
    )
    return conflict


def listing_edits_apply(
    *, connection: ChannelConnection, listing: ChannelListing, seen: ListingSeen, actor: Actor
) -> dict:
    """Decide, field by field, what an edit made on the channel means, and carry it out.

    `listing` is the row the pull or audit already read (with its item), so an unchanged
    listing costs no query. Returns {field: "ours" | "theirs" | "<shop> wins" | "asked"} for
    each field edited there (empty when nothing was). Rival channels are read before any row
    is locked.
    """
    if listing.connection_id == connection.pk:
        listing.connection = connection
    if (
        seen.state != "live"
        or listing.desired_state != DesiredState.LIVE
        or listing.actual_state != ListingState.LIVE
        or listing.relist_requested
    ):
        return {}
    edits = listing_edits(listing, seen)
    if not edits:
        return {}
    shop = connection.name
    plans = []
    for edit in edits:
        how = connection.edit_strategy(edit.field)
        rivals = _rival_edits(listing, edit.field) if how in TAKES_IT_IN else []
        plans.append((edit, how, rivals))

    outcome = {}
    with transaction.atomic():
        item = Item.objects.select_for_update().get(pk=listing.item_id)
        for edit, how, rivals in plans:
            seen_as = f"{edit.field.capitalize()} changed on {shop} to {_show(edit.theirs)} (ours {_show(edit.ours)})"
            if how == EditStrategy.ASK:
                _open_conflict(listing, edit, actor)
                outcome[edit.field] = "asked"
                continue
            if how == EditStrategy.OURS:
                _push_back(listing, {edit.field: edit.theirs})
                if edit.field == "price" and price_drift_beyond_tolerance(connection, edit.ours, edit.theirs):
                    alert_raise(
                        account_id=connection.account_id,
                        kind=AlertKind.PRICE_DRIFT,
                        dedupe_key=f"price-drift:{listing.pk}",
                        title=f"{item.sku} costs {edit.theirs} on {shop}, not {edit.ours}",
                        message="The channel's price was changed outside this system; ours will be pushed back.",
                        item=item,
                        listing=listing,
                    )
                _history(item, actor, f"{seen_as}: ours wins, pushed back.")
                outcome[edit.field] = "ours"
                continue
            candidates = [_Candidate(listing, edit), *rivals]
            winner = _winner(candidates)
            rule = EditStrategy(
                sorted(candidates, key=lambda c: c.rank)[0].listing.connection.edit_strategy(edit.field)
            )
            if winner is None:
                for candidate in candidates:
                    _push_back(candidate.listing, {edit.field: candidate.edit.theirs})
                _history(item, actor, f"{seen_as}: {rule.label.lower()}, ours kept and pushed back.")
                outcome[edit.field] = "ours"
                continue
            where = _take_in(winner.listing, edit.field, winner.edit.theirs, actor)
            losers = [c for c in candidates if c is not winner]
            for loser in losers:
                _push_back(loser.listing, {edit.field: loser.edit.theirs})
            winner_shop = winner.listing.connection.name
            why = " by priority" if rule == EditStrategy.CHANNEL else ""
            lost = "; ".join(f"{c.listing.connection.name}'s {_show(c.edit.theirs)} loses{why}" for c in losers)
            if winner.listing.pk == listing.pk:
                text = f"{seen_as}: {rule.label.lower()}, taken {where}"
            else:
                text = f"{seen_as}; {winner_shop} changed it to {_show(winner.edit.theirs)} too and wins ({rule.label.lower()}), taken {where}"
            _history(item, actor, f"{text}{'; ' + lost if lost else ''}.")
            outcome[edit.field] = "theirs" if winner.listing.pk == listing.pk else f"{winner_shop} wins"
    return outcome


def field_edit_settle(*, conflict_id: int, keep: str, actor: Actor, note: str = "") -> Conflict:
    """Settle an edit made on a channel: keep "ours" (pushed back to the channel) or take "theirs"
    (into the item, and so to every channel). With its alert and a history row, in one transaction."""
    if keep not in ("ours", "theirs"):
        raise ValueError(f"keep must be 'ours' or 'theirs', not {keep!r}")
    with transaction.atomic():
        conflict = (
            Conflict.objects.select_for_update(of=("self",))
            .select_related("listing__connection", "item")
            .get(pk=conflict_id, kind=ConflictKind.FIELD_EDIT)
        )
        if conflict.status != ConflictStatus.OPEN:
            return conflict
        listing, name = conflict.listing, conflict.field
        item = Item.objects.select_for_update().get(pk=conflict.item_id)
        shop = listing.connection.name
        theirs = _parse(name, conflict.theirs)
        if keep == "ours":
            _push_back(listing, {name: theirs})
            record = f"Kept ours ({_show(conflict.ours)}) for the {name}: pushed back to {shop}."
        else:
            where = _take_in(listing, name, theirs, actor)
            record = f"Took {shop}'s {name} ({_show(conflict.theirs)}) {where}."
        record = f"{record} {note}".strip()
        Conflict.objects.filter(pk=conflict.pk).update(
            status=ConflictStatus.RESOLVED, resolved_at=timezone.now(), resolved_by=actor.user, note=record
        )
        alerts_resolve(
            alert_ids=conflict.alerts.filter(resolved_at__isnull=True).values_list("pk", flat=True),
            user=actor.user,
            note=record,
        )
        _history(item, actor, f"{name.capitalize()} edited on {shop}, settled by staff: {record}")
        conflict.refresh_from_db()
    return conflict


def _parse(name: str, text: str) -> object:
    if name == "price":
        return Decimal(text)
    if name == "quantity":
        return int(text)
    return text


def held_fields(listing_id: int) -> set[str]:
    """Fields staff are asked about on this listing: not pushed to it until they settle."""
    return set(
        Conflict.objects.filter(
            listing_id=listing_id, kind=ConflictKind.FIELD_EDIT, status=ConflictStatus.OPEN
        ).values_list("field", flat=True)
    )
