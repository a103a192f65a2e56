"""Reading channels back: pulls, listings made elsewhere, the webhook inbox, the read-back audit.

Every pull, reconcile and audit is a SyncRun row with its counts. A pull moves the
connection's watermark only when every order it read was recorded, so a failure means
the same orders are read again next time (recording is idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db.models import BooleanField, F, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts.audit import audit_changes
from billing.errors import BillingError
from billing.gates import Feature, require
from config.database import planned_cursor

from ..channels import (
    END_SOLD_ELSEWHERE,
    END_WITHDRAWN,
    ChannelError,
    ListingSeen,
    WebhookRejected,
    WebhookReply,
    WebhookSeen,
    channel,
    specific_connection,
    specific_connection_model,
)
from ..models import (
    AlertKind,
    ChannelConnection,
    ChannelListing,
    Condition,
    DesiredState,
    Item,
    ListingState,
    SyncKind,
    SyncRun,
    SyncStatus,
    WebhookEvent,
    WebhookStatus,
)
from ..states import ItemState
from .actor import Actor
from .alerts import alert_raise, alerts_resolve_cause
from .edits import fields_changed_since_push, listing_edits, listing_edits_apply
from .items import item_create
from .listings import _enqueue, listing_missing, same_sku
from .prepared import Prepared, PreparedUpdate
from .returning import ride_with_next_commit
from .runs import sync_run
from .selling import sale_record

log = logging.getLogger(__name__)


def connection_pull(*, connection_id: int, full_scan: bool = False, run_id: int | None = None) -> SyncRun:
    """Read what changed on the channel since the watermark and record it.

    `full_scan` (a pull staff asked for) reads every listing too, now. When the channel read
    every listing, our live listings it did not show are marked missing.
    """
    connection = ChannelConnection.objects.select_related("account").get(pk=connection_id)
    sync = channel(connection.channel)
    actor = Actor(source=connection.channel)
    with sync_run(connection, SyncKind.PULL, run_id=run_id) as run:
        read_started = timezone.now()
        clock = time.monotonic()
        conn = specific_connection(connection)
        result = (
            sync.pull(conn, connection.watermark, full_scan=True)
            if full_scan
            else sync.pull(conn, connection.watermark)
        )
        run.api_calls = result.pages_read
        for seen in result.orders:
            try:
                outcome = sale_record(connection=connection, seen=seen, actor=actor)
            except Exception as error:  # one bad order must not hide the others; it is retried next pull
                log.exception("recording order %s from %s failed", seen.external_id, connection)
                run.errors += 1
                run.error_text = (run.error_text + f"\norder {seen.external_id}: {error}")[:4000]
                continue
            if outcome.created:
                run.created += 1
            elif outcome.note == "no change" or "ignored" in outcome.note:
                run.skipped += 1
            else:
                run.updated += 1
        for counted, n in listings_seen_apply(connection, result.listings, actor=actor).items():
            setattr(run, counted, getattr(run, counted) + n)
        if result.listings_complete:
            seen_ids = {seen.external_id for seen in result.listings}
            run.ended += _mark_missing(connection, seen_ids, "a full read", before=read_started)
            scan_done = getattr(sync, "listing_scan_done", None)
            if scan_done is not None:
                scan_done(conn, seconds=time.monotonic() - clock, listings=len(result.listings))
        fields = {"last_pull_at": timezone.now()}
        if not run.errors and result.watermark is not None:
            fields["watermark"] = result.watermark
        ChannelConnection.objects.filter(pk=connection.pk).update(**fields)
    alerts_resolve_cause(dedupe_key=f"pull-failing:{connection.pk}", resolution="A pull worked again.")
    return run


PULL_FAILURES_BEFORE_ALERT = 3


def connection_pull_failed(*, connection_id: int, error: Exception) -> bool:
    """A pull failed (its SyncRun says why). Alert staff when the connection needs them: at once
    for a refusal (a revoked token, a missing scope), after a few failures in a row otherwise.
    Returns whether an alert is open."""
    connection = ChannelConnection.objects.filter(pk=connection_id).first()
    if connection is None:
        return False
    refused = isinstance(error, ChannelError) and not error.transient
    recent = list(
        SyncRun.objects.filter(connection_id=connection_id, kind=SyncKind.PULL)
        .exclude(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
        .order_by("-started_at", "-id")
        .values_list("status", flat=True)[:PULL_FAILURES_BEFORE_ALERT]
    )
    failing = len(recent) == PULL_FAILURES_BEFORE_ALERT and all(status == SyncStatus.FAILED for status in recent)
    if not (refused or failing):
        return False
    alert_raise(
        account_id=connection.account_id,
        kind=AlertKind.CONNECTION,
        dedupe_key=f"pull-failing:{connection.pk}",
        title=f"{connection.name} cannot be read: sales there may not reach us",
        message=(
            f"{type(error).__name__}: {error}. "
            + (
                "The channel refused the request: test the connection and fix what it says."
                if refused
                else f"The last {PULL_FAILURES_BEFORE_ALERT} pulls failed; they are retried on schedule."
            )
        ),
    )
    return True


def _believed_on_sale(connection: ChannelConnection, *, before):
    """Our listings the channel should have shown in a read that started at `before`: live (or
    being ended), with an id, and not published or revised while the read was under way (a
    listing created after the read passed its page is not missing)."""
    return (
        ChannelListing.objects.filter(connection=connection, actual_state__in=[ListingState.LIVE, ListingState.ENDING])
        .exclude(external_id="")
        .filter(Q(last_synced_at__lt=before) | Q(last_synced_at__isnull=True))
    )


def _mark_missing(connection: ChannelConnection, seen_ids: set[str], how: str, *, before) -> int:
    """Every listing we believe on sale that the channel did not show is missing. Returns how many."""
    missing = [
        (pk, external_id)
        for pk, external_id in _believed_on_sale(connection, before=before).values_list("pk", "external_id")
        if external_id not in seen_ids
    ]
    for pk, external_id in missing:
        listing_missing(pk, why=f"{connection.name} did not show listing {external_id} in {how}")
    return len(missing)


# What the comparison of a scan reads of our rows: enough to tell an unchanged listing from one
# that needs listing_seen_apply (which reads the whole row again, under its lock).
_COMPARED_FIELDS = (
    "pk",
    "external_id",
    "item_id",
    "item__sku",
    "desired_state",
    "actual_state",
    "relist_requested",
    "pushed_content",
)


def listings_seen_apply(
    connection: ChannelConnection, seen_listings: list[ListingSeen], *, actor: Actor
) -> dict[str, int]:
    """Bring in what a channel says of many listings (a pull's scan). Returns SyncRun counts.

    Our rows of the connection are read once, keyed by the channel's id, and compared in memory:
    a listing that is known, carries its SKU and would change nothing (state, edits) costs no
    statement and no write. Every other one (ended, sold or edited there, live there while ended
    here, an id now under another SKU, a listing we do not know) goes through
    `listing_seen_apply`, the one path that writes history, conflicts, alerts and desired state.
    """
    counts = {"created": 0, "updated": 0, "skipped": 0}
    if not seen_listings:
        return counts
    ours: dict[str, ChannelListing] = {
        listing.external_id: listing
        for listing in ChannelListing.objects.filter(connection=connection)
        .exclude(external_id="")
        .select_related("item")
        .only(*_COMPARED_FIELDS)
    }
    # SKUs of our rows not linked yet: an unknown listing with one of them is linked (any state).
    unlinked_skus = set(
        ChannelListing.objects.filter(connection=connection, external_id="").values_list("item__sku", flat=True)
    )
    for seen in seen_listings:
        listing = ours.get(seen.external_id)
        if listing is None:
            wanted = seen.state in ("live", "draft") or (seen.sku and seen.sku in unlinked_skus)
        else:
            listing.connection = connection
            wanted = bool(
                (seen.sku and not same_sku(seen.sku, listing.item.sku))
                or _known_listing_changes(listing, seen)
                or _edits_possible(listing, seen)
            )
        if not wanted:
            counts["skipped"] += 1
            continue
        counted = listing_seen_apply(connection, seen, actor=actor)
        counts[counted] += 1
    return counts


def _edits_possible(listing: ChannelListing, seen: ListingSeen) -> bool:
    """Whether listing_edits_apply could find an edit made on the channel (its own gate, then the
    fields the channel shows other than pushed); the full decision reads the row again."""
    if (
        seen.state != "live"
        or listing.desired_state != DesiredState.LIVE
        or listing.actual_state != ListingState.LIVE
        or listing.relist_requested
    ):
        return False
    return bool(fields_changed_since_push(listing.connection.channel, listing.pushed_content, seen))


def listing_seen_apply(
    connection: ChannelConnection, seen: ListingSeen, *, actor: Actor, import_unknown: bool = True
) -> str:
    """Bring in what a channel says of a listing. Returns the SyncRun counter it counts as.

    Known listings (same id and same SKU): a listing ended or sold on the channel is recorded
    as such (a sale itself arrives as an order); one live there that we ended is ended again;
    a price, quantity, title or description changed there goes to the connection's edit
    strategy (inventory.services.edits).
    An id we hold under another SKU is a mismatch: our listing is missing, theirs is unknown.
    Unknown listings with a SKU we have are linked; others are imported for review.
    """
    listing = (
        ChannelListing.objects.select_related("item")
        .filter(connection=connection, external_id=seen.external_id)
        .first()
    )
    if listing is not None and seen.sku and not same_sku(seen.sku, listing.item.sku):
        _listing_mismatch(connection, listing, seen)
        listing = None
    if listing is None and seen.sku:
        listing = ChannelListing.objects.filter(connection=connection, item__sku=seen.sku, external_id="").first()
    if listing is not None:
        counted = _known_listing_seen(listing, seen)
        if listing.external_id and listing_edits_apply(connection=connection, listing=listing, seen=seen, actor=actor):
            counted = "updated"
        return counted
    if seen.state not in ("live", "draft") or not import_unknown:
        return "skipped"
    return external_listing_import(connection, seen, actor=actor)[0]


def _listing_mismatch(connection: ChannelConnection, listing: ChannelListing, seen: ListingSeen) -> None:
    """The channel shows our listing's id with someone else's SKU: never adopt it as ours."""
    alert_raise(
        account_id=connection.account_id,
        kind=AlertKind.LISTING_MISMATCH,
        dedupe_key=f"listing-mismatch:{connection.pk}:{seen.external_id}",
        title=f"{connection.name} listing {seen.external_id} is {seen.sku}, not {listing.item.sku}",
        message=(
            f"We tracked {listing.item.sku} as listing {seen.external_id}; the channel now shows {seen.sku or 'no SKU'} "
            "under that id. Ours is treated as missing (published again if it should be live); theirs is handled "
            "as a listing we did not know."
        ),
        item=listing.item,
        listing=listing,
    )
    listing_missing(listing.pk, why=f"{connection.name} shows {seen.sku or 'another SKU'} under id {seen.external_id}")


def _known_listing_changes(listing: ChannelListing, seen: ListingSeen) -> dict:
    """What the channel's state of a known listing changes on our row (empty: nothing). No query."""
    changes = {}
    if not listing.external_id:
        changes["external_id"] = seen.external_id
    if seen.state in ("ended", "sold") and listing.actual_state in (ListingState.LIVE, ListingState.ENDING):
        changes["actual_state"] = ListingState.SOLD if seen.state == "sold" else ListingState.ENDED
        changes["ended_at"] = timezone.now()
        if listing.desired_state == DesiredState.LIVE and seen.state == "ended":
            # Ended by hand on the channel: respect it rather than fight it.
            changes["desired_state"] = DesiredState.ENDED
            changes["end_reason"] = "ended_on_channel"
    elif (
        seen.state == "live"
        and listing.desired_state == DesiredState.ENDED
        and listing.actual_state in (ListingState.ENDED, ListingState.SOLD, ListingState.MISSING)
    ):
        # For sale on the channel while we hold it ended: end it (again). Never left live.
        changes["actual_state"] = ListingState.LIVE
        changes["ended_at"] = None
        changes["desired_changed_at"] = timezone.now()
        changes["last_error"] = "Found live on the channel after it was ended here: ending it again."
    return changes


def _known_listing_seen(listing: ChannelListing, seen: ListingSeen) -> str:
    with transaction.atomic():
        listing = ChannelListing.objects.select_for_update().get(pk=listing.pk)
        changes = _known_listing_changes(listing, seen)
        if changes.get("actual_state") == ListingState.LIVE:
            _enqueue([listing.pk])
        if not changes:
            return "skipped"
        for name, value in changes.items():
            setattr(listing, name, value)
        listing.save(update_fields=[*changes, "updated_at"])
    return "updated"


CONDITIONS = set(Condition.values)


def external_listing_import(
    connection: ChannelConnection, seen: ListingSeen, *, actor: Actor, dry_run: bool = False
) -> tuple[str, Item | None]:
    """A listing made directly on the channel: link it to the item with its SKU, or import a new item.

    Imported items are active, flagged for review, and listed only on that channel until
    staff list them on the others. Returns ("created" | "updated" | "skipped", item).
    """
    account = connection.account
    item = Item.objects.filter(account=account, sku=seen.sku).first() if seen.sku else None
    if dry_run:
        return ("updated" if item else "created"), item
    if item is None:
        try:
            require(account, Feature.LISTING_IMPORT)  # a plan feature; the pull goes on either way
        except BillingError as refusal:
            return _import_refused(connection, seen, refusal), None
    try:
        with transaction.atomic():
            verdict = "updated"
            if item is None:
                verdict = "created"
                item = item_create(
                    account=account,
                    actor=actor,
                    state=ItemState.ACTIVE,
                    quantity=max(seen.quantity or 1, 1),
                    photo_urls=seen.photos[:24],
                    fields={
                        "sku": seen.sku if seen.sku and len(seen.sku) <= 50 else "",
                        "title": (seen.title or f"{seen.brand} {seen.model}".strip() or "Imported listing")[:200],
                        "brand": seen.brand[:100],
                        "model": seen.model[:100],
                        "year": seen.year[:20],
                        "finish": seen.finish[:100],
                        "condition": seen.condition if seen.condition in CONDITIONS else Condition.GOOD,
                        "description": seen.description,
                        "price": seen.price if seen.price is not None else Decimal("0"),
                        "currency": seen.currency or account.default_currency,
                    },
                )
                Item.objects.filter(pk=item.pk).update(needs_review=True)
            tracked = ChannelListing.objects.select_for_update().filter(item=item, connection=connection).first()
            if (
                tracked is not None
                and tracked.external_id
                and tracked.external_id != seen.external_id
                and tracked.actual_state in (ListingState.LIVE, ListingState.ENDING)
            ):
                # We already track another listing of this SKU there: this one is a duplicate.
                _duplicate_alert(connection, item, seen, tracked)
                return "skipped", item
            sellable = item.state == ItemState.ACTIVE
            listing, _ = ChannelListing.objects.update_or_create(
                item=item,
                connection=connection,
                defaults={
                    "account": account,
                    "external_id": seen.external_id,
                    "external_url": seen.url[:500],
                    # A live listing of an item that is no longer for sale here is ended, never adopted as live.
                    "desired_state": DesiredState.LIVE if sellable else DesiredState.ENDED,
                    "end_reason": ""
                    if sellable
                    else (END_SOLD_ELSEWHERE if item.state != ItemState.DRAFT else END_WITHDRAWN),
                    "actual_state": ListingState.LIVE if seen.state == "live" else ListingState.PENDING,
                    "imported": verdict == "created",
                    "desired_changed_at": timezone.now(),
                },
            )
            if not sellable:
                _enqueue([listing.pk])
                alert_raise(
                    account_id=account.pk,
                    kind=AlertKind.LISTING_MISMATCH,
                    dedupe_key=f"live-not-for-sale:{listing.pk}:{seen.external_id}",
                    title=f"{item.sku} was found for sale on {connection.name} while it is {item.state} here",
                    message="The listing is being ended on the channel.",
                    item=item,
                    listing=listing,
                )
            if verdict == "created":
                alert_raise(
                    account_id=account.pk,
                    kind=AlertKind.REVIEW,
                    dedupe_key=f"imported:{item.pk}",
                    title=f"{item.sku} was listed directly on {connection.name}: imported for review",
                    message="Check its details, then list it on the other channels.",
                    item=item,
                )
    except IntegrityError:
        log.info("listing %s on %s was linked concurrently", seen.external_id, connection)
        return "skipped", item
    except BillingError as refusal:  # the plan's active listings are used up: not imported, never a failed pull
        return _import_refused(connection, seen, refusal), None
    return verdict, item


def _duplicate_alert(connection: ChannelConnection, item: Item, seen: ListingSeen, tracked: ChannelListing) -> None:
    alert_raise(
        account_id=connection.account_id,
        kind=AlertKind.LISTING_MISMATCH,
        dedupe_key=f"duplicate:{connection.pk}:{seen.external_id}",
        title=f"{item.sku} is listed twice on {connection.name}",
        message=(
            f"We track listing {tracked.external_id}; listing {seen.external_id} carries the same SKU. "
            "Run the audit with apply to end the duplicate, or end it on the channel."
        ),
        item=item,
        listing=tracked,
    )


def _import_refused(connection: ChannelConnection, seen: ListingSeen, refusal: BillingError) -> str:
    """A listing the plan does not let us import stays on its channel and is shown to staff."""
    alert_raise(
        account_id=connection.account_id,
        kind=AlertKind.REVIEW,
        dedupe_key=f"not-imported:{connection.pk}:{seen.external_id}",
        title=f"{seen.sku or seen.external_id} is listed on {connection.name} but was not imported",
        message=refusal.message,
    )
    return "skipped"


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)


def external_listings_import(*, connection_id: int, dry_run: bool = True, run_id: int | None = None) -> ImportReport:
    """Walk every listing on the channel and import (or, dry run, report) the ones we do not know."""
    connection = ChannelConnection.objects.select_related("account").get(pk=connection_id)
    sync = channel(connection.channel)
    report = ImportReport()
    actor = Actor(source=connection.channel)
    known_ids = set(
        ChannelListing.objects.filter(connection=connection)
        .exclude(external_id="")
        .values_list("external_id", flat=True)
    )
    with sync_run(connection, SyncKind.IMPORT, run_id=run_id) as run:
        for seen in sync.read_all_listings(specific_connection(connection)):
            if seen.external_id in known_ids or seen.state not in ("live", "draft"):
                report.known.append(seen.sku or seen.external_id)
                continue
            verdict, _item = external_listing_import(connection, seen, actor=actor, dry_run=dry_run)
            (report.created if verdict == "created" else report.linked).append(seen.sku or seen.external_id)
            run.created += verdict == "created"
            run.updated += verdict != "created"
        run.report = {
            "dry_run": dry_run,
            "created": report.created,
            "linked": report.linked,
            "known": len(report.known),
        }
    return report


@dataclass
class AuditReport:
    """What a read-back of every listing on a channel found, by kind (SKUs or ids)."""

    drifted: list[str] = field(default_factory=list)
    ended_on_channel: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    live_but_ended_here: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {name: value for name, value in self.__dict__.items()}

    @property
    def problems(self) -> int:
        return sum(len(v) for k, v in self.__dict__.items() if isinstance(v, list))


def listings_audit(*, connection_id: int, apply: bool = True, run_id: int | None = None) -> SyncRun:
    """Read every listing on the channel back (page reads only) and compare with ours.

    Reports (the SyncRun's `report`), and with `apply` fixes: drift (a price, quantity, title
    or description changed on the channel: the connection's edit strategy decides), listings ended on the channel,
    listings we believe live that the channel does not have (missing: published again where
    still wanted), ids that now carry another SKU (mismatch: never adopted), listings live
    there that we ended (ended again), listings we do not know (linked by SKU or imported for
    review) and several live listings of one SKU (the ones we do not track are ended).
    Unchanged listings cost no write.
    """
    connection = ChannelConnection.objects.select_related("account").get(pk=connection_id)
    sync = channel(connection.channel)
    conn = specific_connection(connection)
    actor = Actor(source=connection.channel)
    ours = {
        listing.external_id: listing
        for listing in ChannelListing.objects.filter(connection=connection)
        .exclude(external_id="")
        .select_related("item")
    }
    report = AuditReport()
    read_started = timezone.now()
    with sync_run(connection, SyncKind.AUDIT, run_id=run_id) as run:
        seen_ids: set[str] = set()
        by_sku: dict[str, list[ListingSeen]] = {}
        unknown: list[ListingSeen] = []
        for seen in sync.read_all_listings(conn):
            seen_ids.add(seen.external_id)
            if seen.state == "live" and seen.sku:
                by_sku.setdefault(seen.sku.strip().casefold(), []).append(seen)
            listing = ours.get(seen.external_id)
            if listing is not None and seen.sku and not same_sku(seen.sku, listing.item.sku):
                report.mismatched.append(f"{seen.external_id}: {seen.sku} (ours: {listing.item.sku})")
                if apply:
                    _listing_mismatch(connection, listing, seen)
                listing = None
            if listing is None:
                if seen.state in ("live", "draft"):
                    unknown.append(seen)
                continue
            on_sale_here = listing.actual_state in (ListingState.LIVE, ListingState.ENDING)
            if seen.state != "live":
                if on_sale_here:
                    report.ended_on_channel.append(listing.item.sku)
                    if apply:
                        _known_listing_seen(listing, seen)
                continue
            if not on_sale_here:
                if listing.desired_state == DesiredState.ENDED:
                    report.live_but_ended_here.append(listing.item.sku)
                    if apply:
                        _known_listing_seen(listing, seen)
                continue
            if listing_edits(listing, seen):
                report.drifted.append(listing.item.sku)
                if apply:
                    listing_edits_apply(connection=connection, listing=listing, seen=seen, actor=actor)
            else:
                report.unchanged += 1

        believed = _believed_on_sale(connection, before=read_started)
        for pk, external_id, sku in believed.values_list("pk", "external_id", "item__sku"):
            if external_id not in seen_ids:
                report.missing.append(sku)
                if apply:
                    listing_missing(pk, why=f"{connection.name} did not show listing {external_id} in the audit")

        tracked = {listing.external_id for listing in ours.values() if listing.actual_state == ListingState.LIVE}
        duplicate_ids: set[str] = set()
        for seens in by_sku.values():
            if len(seens) < 2:
                continue
            keep = next((seen for seen in seens if seen.external_id in tracked), None)
            for seen in seens:
                if seen is keep:
                    continue
                report.duplicates.append(f"{seen.sku} ({seen.external_id})")
                duplicate_ids.add(seen.external_id)
                if apply and keep is not None:
                    _end_duplicate(conn, connection, seen)

        for seen in unknown:
            if seen.external_id in duplicate_ids:
                continue
            if ChannelListing.objects.filter(connection=connection, external_id=seen.external_id).exists():
                continue  # published by a worker while the audit read: ours after all
            report.unknown.append(seen.sku or seen.external_id)
            if apply:
                external_listing_import(connection, seen, actor=actor)

        run.updated = len(report.drifted)
        run.ended = len(report.ended_on_channel) + len(report.missing)
        run.created = len(report.unknown)
        run.skipped = report.unchanged
        run.errors = 0
        run.report = {"applied": apply, **report.as_dict()}
    return run


# The nightly audit's old name (commands and benchmarks used it): an audit that applies.
def listings_reconcile(*, connection_id: int) -> SyncRun:
    return listings_audit(connection_id=connection_id, apply=True)


def _end_duplicate(conn, connection: ChannelConnection, seen: ListingSeen) -> None:
    """End a second live listing of a SKU we already track there (an oversell waiting to happen)."""
    try:
        channel(connection.channel).end(conn, seen.external_id, END_WITHDRAWN)
    except ChannelError as error:
        alert_raise(
            account_id=connection.account_id,
            kind=AlertKind.LISTING_MISMATCH,
            dedupe_key=f"duplicate:{connection.pk}:{seen.external_id}",
            title=f"{seen.sku} is listed twice on {connection.name}; ending the duplicate failed",
            message=f"Listing {seen.external_id}: {error}. End it on the channel.",
        )


# --- Webhook inbox --------------------------------------------------------------------


_CONNECTION_BY_TOKEN = Prepared(
    # Disabled connections still receive: a sale on a shop being disconnected must not be lost.
    lambda model, channel, digest: (
        model.objects.select_related("account")
        .annotate(webhooks_stopped_open=webhooks_stopped_open())
        .filter(channel=channel, webhook_token_digest=digest)[:1]
    ),
    digest=str,
)


def webhook_receive(
    *, connection: ChannelConnection, headers: Mapping[str, str], body: bytes
) -> tuple[WebhookEvent | WebhookReply, bool]:
    """Store a delivery once (dedupe by the channel's event identity). Returns (event, created).

    Raises ChannelError (a bad delivery; WebhookRejected says the status) before anything is
    stored. A delivery the channel answers without storing (a ping) returns its WebhookReply.
    """
    seen = channel(connection.channel).parse_webhook(specific_connection(connection), headers, body)
    if isinstance(seen, WebhookReply):
        return seen, False  # answered, nothing to store (a ping)
    known = getattr(channel(connection.channel), "WEBHOOK_ACCEPTED_TOPICS", None)
    if known is not None and seen.topic not in known:
        raise WebhookRejected(
            f"Unknown webhook topic {seen.topic[:100]!r}; this endpoint takes {', '.join(sorted(known))}.",
            http_status=400,
        )
    if getattr(connection, "webhooks_stopped_open", True):
        alerts_resolve_cause(dedupe_key=_webhooks_stopped_key(connection.pk), resolution="A webhook arrived again.")
    if db.vendor == "postgresql" and not db.in_atomic_block:
        return _webhook_upsert(connection, seen)
    existing = WebhookEvent.objects.filter(connection=connection, dedupe_key=seen.dedupe_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                event = WebhookEvent.objects.create(
                    account_id=connection.account_id,
                    connection=connection,
                    topic=seen.topic,
                    dedupe_key=seen.dedupe_key,
                    payload=dict(seen.payload),
                )
                _enqueue_webhook(event.pk, connection.channel, connection.account_id)
                return event, True
        except IntegrityError:
            existing = WebhookEvent.objects.get(connection=connection, dedupe_key=seen.dedupe_key)
    WebhookEvent.objects.filter(pk=existing.pk).update(deliveries=F("deliveries") + 1)
    if existing.status == WebhookStatus.PENDING:
        # The channel sends it again because it is not acted on yet (its task may never have
        # been queued, e.g. the broker was down): queue it again; processing is idempotent.
        _enqueue_webhook(existing.pk, connection.channel, connection.account_id)
    return existing, False


def _webhooks_stopped_key(connection_id: int) -> str:
    return f"webhooks-stopped:{connection_id}"  # alerts.alerts_webhooks_stopped_check raises it


def connection_by_webhook_token(channel_name: str, token: str) -> ChannelConnection | None:
    """The channel's own connection row (with its secrets) and account that a webhook URL's
    token names, with whether its "webhooks stopped" alert is open (so a delivery closes it
    without a statement when there is none, webhook_receive), in one prepared query.
    Raises LookupError for a channel that does not exist."""
    model = specific_connection_model(channel_name)
    return _CONNECTION_BY_TOKEN.first(model=model, channel=channel_name, digest=ChannelConnection.digest_of(token))


def webhooks_stopped_open() -> RawSQL:
    """For a connection queryset: whether its "webhooks stopped" alert is open. An alert raised
    between that read and the delivery's store stays open until the next delivery. Written
    out (the ORM's Exists with a Concat and a Cast cost about half a millisecond a request
    to compile); the key is _webhooks_stopped_key's."""
    return RawSQL(
        'EXISTS (SELECT 1 FROM "inventory_alert" WHERE "inventory_alert"."dedupe_key"'
        ' = (\'webhooks-stopped:\' || "inventory_channelconnection"."id")'
        ' AND "inventory_alert"."resolved_at" IS NULL)',
        [],
        output_field=BooleanField(),
    )


def _webhook_upsert(connection: ChannelConnection, seen: WebhookSeen) -> tuple[WebhookEvent, bool]:
    """Store a delivery, or count a redelivery, in one statement (the inbox's unique key decides)."""
    event = WebhookEvent(
        account_id=connection.account_id,
        connection=connection,
        topic=seen.topic,
        dedupe_key=seen.dedupe_key,
        payload=dict(seen.payload),
        received_at=timezone.now(),
    )
    fields = [f for f in WebhookEvent._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    values = [f.get_db_prep_save(f.pre_save(event, add=True), db) for f in fields]
    table = WebhookEvent._meta.db_table
    deliveries = WebhookEvent._meta.get_field("deliveries").column
    key = ", ".join(f'"{WebhookEvent._meta.get_field(name).column}"' for name in ("connection", "dedupe_key"))
    with planned_cursor(db) as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" ({columns}) VALUES ({", ".join(["%s"] * len(fields))})'
            f' ON CONFLICT ({key}) DO UPDATE SET "{deliveries}" = "{table}"."{deliveries}" + 1'
            # xmax is 0 on a row this statement inserted, not on one it updated.
            ' RETURNING "id", "received_at", "deliveries", (xmax = 0)',
            values,
        )
        event.pk, event.received_at, event.deliveries, created = cursor.fetchone()
    event._state.adding = False
    if created:
        _enqueue_webhook(
            event.pk, connection.channel, connection.account_id
        )  # autocommit: runs now, the row is committed already
    return event, created


def _enqueue_webhook(event_id: int, channel_name: str, account_id: int) -> None:
    transaction.on_commit(lambda: _send_webhook(event_id, channel_name, account_id))


WEBHOOK_ATTEMPTS_BEFORE_ALERT = 3


# The delivery with its connection's own row (the channel's model) and account, read by every
# webhook task (prepared per channel: see prepared.py).
_DELIVERY_WITH_CONNECTION = Prepared(
    lambda child, event_id: WebhookEvent.objects.select_related(f"connection__{child}__account").filter(pk=event_id),
    event_id=int,
)


_DELIVERY_PROCESSED = PreparedUpdate(
    lambda event_id, now: (
        WebhookEvent.objects.filter(pk=event_id),
        # The attempt is counted with its outcome (one statement, not one before and one after).
        {"status": WebhookStatus.PROCESSED, "processed_at": now, "last_error": "", "attempts": F("attempts") + 1},
    ),
    event_id=int,
    now=datetime,
)


def webhook_process(*, event_id: int, channel_name: str | None = None) -> str:
    """Act on a stored delivery: record the orders it carries, else pull the connection.

    The channel may be asked about the event (Reverb's deliveries are unsigned, so the
    order is read back); that call happens before any row is locked. Recording is
    idempotent, so two workers processing one event at once record it once.
    """
    # The delivery with the channel's own connection row and its account (the read-back and
    # the sale both use it): in one statement when the task was told the channel.
    if channel_name is not None:
        event = _DELIVERY_WITH_CONNECTION.first(
            child=specific_connection_model(channel_name)._meta.model_name, event_id=event_id
        )
        if event is None:
            raise WebhookEvent.DoesNotExist(f"No stored delivery {event_id}.")
    else:
        event = WebhookEvent.objects.select_related("connection").get(pk=event_id)
    if event.status == WebhookStatus.PROCESSED:
        return "already processed"
    connection = _own_connection(event.connection)
    sync = channel(connection.channel)
    marked = False
    try:
        orders = list(
            sync.webhook_orders(
                connection, WebhookSeen(topic=event.topic, dedupe_key=event.dedupe_key, payload=event.payload)
            )
        )
        actor = Actor(source=connection.channel)
        for seen in orders[:-1]:
            sale_record(connection=connection, seen=seen, actor=actor)
        if orders:
            # The delivery is processed when its last order is recorded: the sale's own
            # transaction carries the mark when it ends listings (one commit, not two).
            mark_sql = _DELIVERY_PROCESSED.statement(event_id=event.pk, now=timezone.now())
            with ride_with_next_commit(*mark_sql) as mark:
                sale_record(connection=connection, seen=orders[-1], actor=actor)
            marked = mark.carried
    except Exception as error:
        # The attempt is counted with its outcome (one statement, not one before and one after).
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookStatus.FAILED,
            last_error=f"{type(error).__name__}: {error}"[:2000],
            attempts=F("attempts") + 1,
        )
        if event.attempts + 1 >= WEBHOOK_ATTEMPTS_BEFORE_ALERT:
            alert_raise(
                account_id=event.account_id,
                kind=AlertKind.SYNC_ERROR,
                dedupe_key=f"webhook-failed:{event.pk}",
                title=f"A {event.topic} delivery from {connection.name} could not be processed",
                message=f"{type(error).__name__}: {error}. Fix the cause, then replay it from the webhook inbox.",
            )
        if isinstance(error, ChannelError) and error.transient:
            log.warning("webhook %s: %s (retried)", event_id, error)
        else:
            log.exception("webhook %s failed", event_id)
        raise
    if not marked:
        _DELIVERY_PROCESSED.run(event_id=event.pk, now=timezone.now())
    if not orders:
        # Not an order event (a listing changed): read the channel's changes now.
        from ..tasks import enqueue_pull

        enqueue_pull(connection.pk)
        return "pull requested"
    return f"{len(orders)} order(s) recorded"


def _own_connection(connection: ChannelConnection) -> ChannelConnection:
    """The channel's own row of a connection (joined to it already when the channel was known)."""
    child = specific_connection_model(connection.channel)._meta.model_name
    own = connection._state.fields_cache.get(child)  # only what select_related loaded: no lazy query
    return own if own is not None else specific_connection(connection)


def webhook_replay(*, event_ids: list[int]) -> int:
    """Process stored deliveries again (from the admin), e.g. after a fix."""
    for event in WebhookEvent.objects.filter(pk__in=event_ids).only(
        "pk", "account_id", "status", "topic", "dedupe_key"
    ):
        audit_changes(event, {"status": (event.status, WebhookStatus.PENDING)}, note="replayed")
    n = WebhookEvent.objects.filter(pk__in=event_ids).update(status=WebhookStatus.PENDING, last_error="")
    for event_id in event_ids:
        transaction.on_commit(lambda event_id=event_id: _send_webhook(event_id))
    return n


def _send_webhook(event_id: int, channel_name: str | None = None, account_id: int | None = None) -> None:
    from ..tasks import enqueue_webhook

    enqueue_webhook(event_id, channel_name=channel_name, account_id=account_id)


def webhooks_stalled(*, older_than_seconds: float, limit: int = 1000) -> list[int]:
    """Stored deliveries still pending `older_than_seconds` after they arrived, oldest first."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        WebhookEvent.objects.filter(status=WebhookStatus.PENDING, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("pk", flat=True)[:limit]
    )


# --- Syncs staff asked for -------------------------------------------------------------


# A requested run is as long as its task may take (sync_request_task's time limit) plus a margin:
# a run claimed longer ago than this belongs to a worker that died, and a redelivery takes it over.
SYNC_REQUEST_LEASE_SECONDS = 3300 + 60
# Sent again when nobody claimed it this long after it was queued (its task was lost or never
# reached the broker), and given up, visibly, when nobody claimed it within the hour.
SYNC_REQUEST_RESEND_AFTER_SECONDS = 120
SYNC_REQUEST_GIVE_UP_AFTER_SECONDS = 3600


def sync_request_claim(run_id: int) -> bool:
    """Take a requested run for this worker: True for exactly one of several copies of its task.

    A copy that arrives while another worker holds the run (the sweeper sent it again while the
    queue was long) does nothing; a redelivery after a worker died takes the run over once the
    dead worker's lease is over.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=SYNC_REQUEST_LEASE_SECONDS)
    claimable = Q(status=SyncStatus.QUEUED) | Q(status=SyncStatus.RUNNING) & (
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=stale)
    )
    return bool(SyncRun.objects.filter(claimable, pk=run_id).update(status=SyncStatus.RUNNING, claimed_at=now))


def sync_request_run(*, run_id: int) -> SyncRun:
    """Carry out a queued SyncRun (see connections.connection_sync_request) on this very row."""
    if not sync_request_claim(run_id):
        return SyncRun.objects.get(pk=run_id)  # done already, or another worker is carrying it out
    run = SyncRun.objects.select_related("connection").get(pk=run_id)
    apply = bool(run.options.get("apply"))
    connection_id = run.connection_id
    if run.kind == SyncKind.PULL:
        return connection_pull(connection_id=connection_id, full_scan=True, run_id=run.pk)
    if run.kind == SyncKind.AUDIT:
        return listings_audit(connection_id=connection_id, apply=apply, run_id=run.pk)
    if run.kind == SyncKind.IMPORT:
        external_listings_import(connection_id=connection_id, dry_run=not apply, run_id=run.pk)
        return SyncRun.objects.get(pk=run.pk)
    if run.kind == SyncKind.RECONCILE:
        return listings_lagging_enqueue(connection_id=connection_id, run_id=run.pk)
    raise ValueError(f"SyncRun {run.pk} has kind {run.kind}, which cannot be requested")


def sync_requests_stalled(*, now=None) -> list[int]:
    """Requested runs nobody claimed: the ones to send again, oldest first; the ones queued over
    an hour ago are failed instead, with an alert, so a REST client and staff see what happened."""
    now = now or timezone.now()
    unclaimed = SyncRun.objects.filter(status=SyncStatus.QUEUED)
    too_old = now - timedelta(seconds=SYNC_REQUEST_GIVE_UP_AFTER_SECONDS)
    for run in unclaimed.filter(started_at__lt=too_old).select_related("connection"):
        sync_request_give_up(run, now=now)
    resend_before = now - timedelta(seconds=SYNC_REQUEST_RESEND_AFTER_SECONDS)
    return list(
        unclaimed.filter(started_at__gte=too_old, started_at__lt=now - timedelta(seconds=30))
        # never handed to the broker (it was down), or handed over and lost
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=resend_before))
        .order_by("started_at")
        .values_list("pk", flat=True)[:1000]
    )


def sync_request_give_up(run: SyncRun, *, now) -> None:
    minutes = SYNC_REQUEST_GIVE_UP_AFTER_SECONDS // 60
    with transaction.atomic():
        if not SyncRun.objects.filter(pk=run.pk, status=SyncStatus.QUEUED).update(
            status=SyncStatus.FAILED,
            finished_at=now,
            error_text=(
                f"No worker took this {run.kind} within {minutes} minutes of the request (the broker was "
                f"unreachable, or no worker listens on the queue sync.{run.connection.channel}). "
                "Nothing was done: ask for it again once the workers are running."
            ),
        ):
            return  # claimed a moment ago
        alert_raise(
            account_id=run.account_id,
            kind=AlertKind.SYNC_ERROR,
            dedupe_key=f"sync-request-unclaimed:{run.connection_id}",
            title=f"{run.connection.name}: a requested {run.kind} was never carried out",
            message=f"Sync run {run.pk} waited {minutes} minutes for a worker and was given up.",
            connection=run.connection,
        )


def listings_lagging_enqueue(*, connection_id: int, run_id: int | None = None) -> SyncRun:
    """Converge every listing of the connection that lags what the shop wants, now."""
    from .listings import listings_lagging

    connection = ChannelConnection.objects.get(pk=connection_id)
    with sync_run(connection, SyncKind.RECONCILE, run_id=run_id) as run:
        lagging = listings_lagging(older_than=timezone.timedelta(0), connection_id=connection_id)
        _enqueue(lagging)
        run.updated = len(lagging)
        run.report = {"enqueued": len(lagging)}
    return run
