"""Reading channels back: pulls, listings made elsewhere, the webhook inbox, the read-back audit.

Every pull, reconcile and audit is a SyncRun row with its counts. A pull moves the
connection's watermark only when every order it read was recorded, so a failure means
the same orders are read again next time (recording is idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.errors import BillingError
from billing.gates import Feature, require

from ..channels import ListingSeen, WebhookReply, WebhookSeen, channel, specific_connection
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
    WebhookEvent,
    WebhookStatus,
)
from ..states import ItemState
from .actor import Actor
from .alerts import alert_raise
from .items import item_create
from .listings import _enqueue
from .runs import sync_run
from .selling import sale_record

log = logging.getLogger(__name__)


def connection_pull(*, connection_id: int) -> SyncRun:
    """Read what changed on the channel since the watermark and record it."""
    connection = ChannelConnection.objects.select_related("account").get(pk=connection_id)
    sync = channel(connection.channel)
    actor = Actor(source=connection.channel)
    with sync_run(connection, SyncKind.PULL) as run:
        result = sync.pull(specific_connection(connection), connection.watermark)
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
        for seen in result.listings:
            counted = listing_seen_apply(connection, seen, actor=actor)
            setattr(run, counted, getattr(run, counted) + 1)
        fields = {"last_pull_at": timezone.now()}
        if not run.errors and result.watermark is not None:
            fields["watermark"] = result.watermark
        ChannelConnection.objects.filter(pk=connection.pk).update(**fields)
    return run


def listing_seen_apply(
    connection: ChannelConnection, seen: ListingSeen, *, actor: Actor, import_unknown: bool = True
) -> str:
    """Bring in what a channel says of a listing. Returns the SyncRun counter it counts as.

    Known listings: a listing ended or sold on the channel is recorded as such (a sale
    itself arrives as an order). Unknown listings with a SKU we have are linked; others
    are imported as new items flagged for review.
    """
    listing = ChannelListing.objects.filter(connection=connection, external_id=seen.external_id).first()
    if listing is None and seen.sku:
        listing = ChannelListing.objects.filter(connection=connection, item__sku=seen.sku, external_id="").first()
    if listing is not None:
        return _known_listing_seen(listing, seen)
    if seen.state not in ("live", "draft") or not import_unknown:
        return "skipped"
    return external_listing_import(connection, seen, actor=actor)[0]


def _known_listing_seen(listing: ChannelListing, seen: ListingSeen) -> str:
    with transaction.atomic():
        listing = ChannelListing.objects.select_for_update().get(pk=listing.pk)
        changes = {}
        if not listing.external_id:
            changes["external_id"] = seen.external_id
        if seen.state in ("ended", "sold") and listing.actual_state == ListingState.LIVE:
            changes["actual_state"] = ListingState.SOLD if seen.state == "sold" else ListingState.ENDED
            changes["ended_at"] = timezone.now()
            if listing.desired_state == DesiredState.LIVE and seen.state == "ended":
                # Ended by hand on the channel: respect it rather than fight it.
                changes["desired_state"] = DesiredState.ENDED
                changes["end_reason"] = "ended_on_channel"
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
            ChannelListing.objects.update_or_create(
                item=item,
                connection=connection,
                defaults={
                    "account": account,
                    "external_id": seen.external_id,
                    "external_url": seen.url[:500],
                    "desired_state": DesiredState.LIVE,
                    "actual_state": ListingState.LIVE if seen.state == "live" else ListingState.PENDING,
                    "imported": verdict == "created",
                },
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


def external_listings_import(*, connection_id: int, dry_run: bool = True) -> ImportReport:
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
    with sync_run(connection, SyncKind.RECONCILE) as run:
        for seen in sync.read_all_listings(specific_connection(connection)):
            if seen.external_id in known_ids or seen.state not in ("live", "draft"):
                report.known.append(seen.sku or seen.external_id)
                continue
            verdict, _item = external_listing_import(connection, seen, actor=actor, dry_run=dry_run)
            (report.created if verdict == "created" else report.linked).append(seen.sku or seen.external_id)
            run.created += verdict == "created"
            run.updated += verdict != "created"
    return report


def listings_reconcile(*, connection_id: int) -> SyncRun:
    """Read every listing on the channel back (page reads only) and compare with ours.

    Listings that drifted (a price, title or quantity changed on the channel, or ended
    there) are marked to be pushed again or recorded as ended; unchanged ones cost nothing.
    """
    connection = ChannelConnection.objects.select_related("account").get(pk=connection_id)
    sync = channel(connection.channel)
    ours = {
        listing.external_id: listing
        for listing in ChannelListing.objects.filter(connection=connection, actual_state=ListingState.LIVE)
        .exclude(external_id="")
        .select_related("item")
    }
    drifted = []
    with sync_run(connection, SyncKind.AUDIT) as run:
        seen_ids = set()
        for seen in sync.read_all_listings(specific_connection(connection)):
            listing = ours.get(seen.external_id)
            if listing is None:
                run.skipped += 1
                continue
            seen_ids.add(seen.external_id)
            if seen.state != "live":
                _known_listing_seen(listing, seen)
                run.ended += 1
                continue
            pushed = listing.pushed_content
            price_drift = seen.price is not None and pushed.get("price") and f"{seen.price:.2f}" != pushed.get("price")
            quantity_drift = (
                seen.quantity is not None and pushed.get("quantity") is not None and seen.quantity != pushed["quantity"]
            )
            title_drift = bool(seen.title) and pushed.get("title") and seen.title != pushed["title"]
            if price_drift or quantity_drift or title_drift:
                drifted.append(listing.pk)
                if price_drift:
                    alert_raise(
                        account_id=connection.account_id,
                        kind=AlertKind.PRICE_DRIFT,
                        dedupe_key=f"price-drift:{listing.pk}",
                        title=f"{listing.item.sku} costs {seen.price} on {connection.name}, not {pushed.get('price')}",
                        message="The channel's price was changed outside this system; ours will be pushed back.",
                        item=listing.item,
                        listing=listing,
                    )
                run.updated += 1
            else:
                run.skipped += 1
        missing = [pk for ext, listing in ours.items() if ext not in seen_ids for pk in [listing.pk]]
        if missing:
            ChannelListing.objects.filter(pk__in=missing).update(needs_push=True, desired_changed_at=timezone.now())
            drifted.extend(missing)
        if drifted:
            with transaction.atomic():
                ChannelListing.objects.filter(pk__in=drifted).update(needs_push=True, pushed_fingerprint="")
                _enqueue(drifted)
    return run


# --- Webhook inbox --------------------------------------------------------------------


def webhook_receive(
    *, connection: ChannelConnection, headers: Mapping[str, str], body: bytes
) -> tuple[WebhookEvent | WebhookReply, bool]:
    """Store a delivery once (dedupe by the channel's event identity). Returns (event, created).

    Raises ChannelError (a bad delivery; WebhookRejected for a bad signature) before anything is
    stored. A delivery the channel answers without storing (a ping) returns (its WebhookReply, False).
    """
    seen = channel(connection.channel).parse_webhook(specific_connection(connection), headers, body)
    if isinstance(seen, WebhookReply):
        return seen, False
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
                _enqueue_webhook(event.pk)
                return event, True
        except IntegrityError:
            existing = WebhookEvent.objects.get(connection=connection, dedupe_key=seen.dedupe_key)
    WebhookEvent.objects.filter(pk=existing.pk).update(deliveries=F("deliveries") + 1)
    return existing, False


def _enqueue_webhook(event_id: int) -> None:
    transaction.on_commit(lambda: _send_webhook(event_id))


def webhook_process(*, event_id: int) -> str:
    """Act on a stored delivery: record the orders it carries, else pull the connection.

    The channel may be asked about the event (Reverb's deliveries are unsigned, so the
    order is read back); that call happens before any row is locked. Recording is
    idempotent, so two workers processing one event at once record it once.
    """
    event = WebhookEvent.objects.select_related("connection").get(pk=event_id)
    if event.status == WebhookStatus.PROCESSED:
        return "already processed"
    connection = event.connection
    sync = channel(connection.channel)
    WebhookEvent.objects.filter(pk=event.pk).update(attempts=F("attempts") + 1)
    try:
        orders = sync.webhook_orders(
            specific_connection(connection),
            WebhookSeen(topic=event.topic, dedupe_key=event.dedupe_key, payload=event.payload),
        )
        for seen in orders:
            sale_record(connection=connection, seen=seen, actor=Actor(source=connection.channel))
    except Exception as error:
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookStatus.FAILED, last_error=f"{type(error).__name__}: {error}"[:2000]
        )
        log.exception("webhook %s failed", event_id)
        raise
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=WebhookStatus.PROCESSED, processed_at=timezone.now(), last_error=""
    )
    if not orders:
        # Not an order event (a listing changed): read the channel's changes now.
        from ..tasks import enqueue_pull

        enqueue_pull(connection.pk)
        return "pull requested"
    return f"{len(orders)} order(s) recorded"


def webhook_replay(*, event_ids: list[int]) -> int:
    """Process stored deliveries again (from the admin), e.g. after a fix."""
    n = WebhookEvent.objects.filter(pk__in=event_ids).update(status=WebhookStatus.PENDING, last_error="")
    for event_id in event_ids:
        transaction.on_commit(lambda event_id=event_id: _send_webhook(event_id))
    return n


def _send_webhook(event_id: int) -> None:
    from ..tasks import process_webhook_event_task

    process_webhook_event_task.apply_async(args=[event_id], queue="webhooks")
