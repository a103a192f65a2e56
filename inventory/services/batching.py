"""Batched revisions: one channel call for many listings' price and quantity changes.

A price sweep over a shop marks every live listing changed, and the engine converges each
listing in its own task. On a channel that offers `revise_many` (eBay's
bulkUpdatePriceQuantity, 25 listings a call) that would be one call, or two, per listing.
Instead, the first task to run for such a listing takes the leases of its connection's other
listings waiting on the same kind of change and sends them together; their own tasks then
find them in sync. Anything else (a publish, an end, a title, a listing another worker
holds) goes through `listing_converge` as before, so every guarantee of that path (leases,
read-back of ends, missing listings, alerts) holds unchanged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.utils import timezone

from ..channels import (
    ChannelError,
    ListingNotFound,
    ListingPayload,
    PermanentChannelError,
    Revision,
    TransientChannelError,
    channel,
    specific_connection,
)
from ..models import AlertKind, ChannelListing, DesiredState, ListingState
from ..states import ItemState
from .alerts import alerts_resolve_cause
from .listings import (
    _claim,
    _enqueue_now,
    _record,
    _release,
    circuit_after_push,
    content_fingerprint,
    listing_attempt_failed,
    listing_converge,
    listing_failed,
    listing_missing,
    listing_payload,
    payload_content,
)
from .runs import push_recorded

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    listing: ChannelListing
    payload: ListingPayload
    content: dict
    changed: frozenset[str]


def listing_converge_batched(listing_id: int, *, channel_name: str | None = None) -> str:
    """Converge a listing, together with its connection's other listings waiting on a change
    the channel can apply to many at once (the converge task's entry point). Given the
    listing's channel, a channel that revises one listing at a time costs no look first."""
    if channel_name is None or _revises_many(channel(channel_name)):
        outcome = _revise_batch(listing_id)
        if outcome is not None:
            return outcome
    return listing_converge(listing_id, channel_name=channel_name)


def _revises_many(sync) -> bool:
    return (
        getattr(sync, "revise_many", None) is not None
        and bool(getattr(sync, "REVISE_MANY_FIELDS", ()))
        and int(getattr(sync, "REVISE_MANY_LIMIT", 0)) >= 2
    )


def _batchable(listing: ChannelListing, fields: frozenset[str]) -> _Pending | None:
    """The listing's pending change, when it is only fields the channel revises in bulk."""
    if not (
        listing.desired_state == DesiredState.LIVE
        and listing.actual_state == ListingState.LIVE
        and listing.external_id
        and listing.needs_push
        and not listing.relist_requested
        and listing.connection.enabled
        and listing.item.state == ItemState.ACTIVE
    ):
        return None
    payload = listing_payload(listing)
    if payload.quantity <= 0:
        return None  # not sellable now: listing_converge says so
    content = payload_content(payload)
    changed = frozenset(k for k, v in content.items() if listing.pushed_content.get(k) != v)
    if not changed or not changed <= fields:
        return None
    return _Pending(listing, payload, content, changed)


def _revise_batch(listing_id: int) -> str | None:
    """Send this listing's change with its peers' in one revise_many call; None when it does not apply."""
    listing = ChannelListing.objects.select_related("item", "connection").filter(pk=listing_id).first()
    if listing is None:
        return None
    sync = channel(listing.connection.channel)
    revise_many = getattr(sync, "revise_many", None)
    fields = frozenset(getattr(sync, "REVISE_MANY_FIELDS", ()))
    limit = int(getattr(sync, "REVISE_MANY_LIMIT", 0))
    if listing.connection.circuit_opened_at is not None:
        return None  # the circuit is open: listing_converge holds pushes back (and lets the probe through)
    if revise_many is None or not fields or limit < 2 or _batchable(listing, fields) is None:
        return None
    if not _claim(listing_id):
        return None  # another worker has it: listing_converge says busy, and the task looks again
    started = timezone.now()
    clock = time.monotonic()
    claimed = [listing_id]
    try:
        pending = _gather(listing, fields, limit, claimed)
        if not pending or pending[0].listing.pk != listing_id:
            return None
        conn = specific_connection(listing.connection)
        revisions = [Revision(p.listing.external_id, p.payload, p.changed) for p in pending]
        try:
            outcomes = revise_many(conn, revisions)
        except ChannelError as error:
            # The whole call failed (a token refused, the channel down): each listing goes its
            # own way through listing_converge, which retries, alerts and records as it always does.
            log.warning("batched revision of %d listing(s) on %s failed: %s", len(pending), listing.connection, error)
            return None
        done, mine_error = _record_outcomes(pending, outcomes)
    finally:
        for pk in claimed:
            _release(pk)
    push_recorded(listing.connection_id, listing.account_id, started=clock, done=done)
    circuit_after_push(listing.connection, done, None)
    for pk in ChannelListing.objects.filter(pk__in=claimed, desired_changed_at__gt=started).values_list(
        "pk", flat=True
    ):
        _enqueue_now(pk)  # changed again while we talked to the channel (e.g. it sold): go round again
    if isinstance(mine_error, TransientChannelError):
        raise mine_error  # the task retries this listing with backoff, as for a single revise
    mine = done[0]
    return f"{mine} (one call with {len(pending) - 1} other listing(s))" if len(pending) > 1 else mine


def _gather(listing: ChannelListing, fields: frozenset[str], limit: int, claimed: list[int]) -> list[_Pending]:
    """This listing first, then up to limit-1 peers of its connection whose leases we could take."""
    first = _batchable(
        ChannelListing.objects.select_related("item", "connection").get(pk=listing.pk), fields
    )  # read again under the lease
    if first is None:
        return []
    pending = [first]
    peers = (
        ChannelListing.objects.select_related("item", "connection")
        .filter(
            connection_id=listing.connection_id,
            desired_state=DesiredState.LIVE,
            actual_state=ListingState.LIVE,
            needs_push=True,
            relist_requested=False,
            item__state=ItemState.ACTIVE,
        )
        .exclude(pk=listing.pk)
        .exclude(external_id="")
        .order_by("desired_changed_at", "pk")[: limit * 2]
    )
    for peer in peers:
        if len(pending) >= limit:
            break
        if _batchable(peer, fields) is None or not _claim(peer.pk):
            continue
        claimed.append(peer.pk)
        fresh = _batchable(ChannelListing.objects.select_related("item", "connection").get(pk=peer.pk), fields)
        if fresh is not None:
            pending.append(fresh)
    return pending


def _record_outcomes(pending: list[_Pending], outcomes) -> tuple[list[str], ChannelError | None]:
    """What the channel said of each listing, recorded on it as listing_converge would; and the
    first listing's (the task's own) error, if any."""
    done: list[str] = []
    errors: list[ChannelError | None] = []
    by_id = {outcome.external_id: outcome for outcome in outcomes}
    for p in pending:
        listing = p.listing
        outcome = by_id.get(listing.external_id)
        error = outcome.error if outcome is not None else TransientChannelError("the channel did not answer for it")
        errors.append(error)
        if error is None:
            _record(
                listing,
                pushed_content=p.content,
                pushed_fingerprint=content_fingerprint(p.content),
                needs_push=False,
                last_error="",
                attempts=0,
                last_synced_at=timezone.now(),
            )
            done.append("revised " + ",".join(sorted(p.changed)))
            alerts_resolve_cause(
                listing_id=listing.pk,
                kind__in=[AlertKind.SYNC_ERROR, AlertKind.PRICE_DRIFT],
                resolution=f"The listing synced again (revised {', '.join(sorted(p.changed))}).",
            )
        elif isinstance(error, ListingNotFound):
            listing_missing(listing.pk, why=f"{listing.connection.name} no longer has listing {listing.external_id}")
            done.append("missing on the channel: publishing again")
        elif isinstance(error, PermanentChannelError):
            listing_failed(listing.pk, error)
            done.append(f"error: {error}")
        else:
            # Worth another try (e.g. eBay's 25001): counted on the listing; its own task, retried
            # while this batch held the lease, or the sweeper, sends it again.
            listing_attempt_failed(listing.pk, str(error))
            done.append(f"error: {error}")
    return done, errors[0]
