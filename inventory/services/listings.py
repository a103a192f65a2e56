"""Listings on channels: what the shop wants (desired state, content) and converging to it.

Services here change desired state in the caller's transaction and schedule convergence
after commit. `listing_converge` is the worker's side: it talks to the channel outside any
row lock (a lease makes sure only one worker handles a listing at a time), then records
what the channel now has.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from accounts.audit import audit_changes
from accounts.models import Account
from config.database import planned_cursor

from ..channels import (
    END_SOLD_ELSEWHERE,
    END_SOLD_HERE,
    END_WITHDRAWN,
    ChannelError,
    ListingBusy,
    ListingNotFound,
    ListingPayload,
    PermanentChannelError,
    TransientChannelError,
    channel,
    channel_name_of,
    specific_connection_model,
)
from ..models import (
    AlertKind,
    ChannelConnection,
    ChannelListing,
    DesiredState,
    Item,
    ListingState,
    SyncRun,
)
from ..states import ItemState
from .actor import Actor
from .alerts import alert_raise, alerts_resolve_cause
from .circuit import circuit_probe_claim, circuit_push_failed, circuit_push_succeeded
from .prepared import PreparedUpdate, value_kinds
from .returning import (
    deferred_upserts,
    deferred_upserts_carried,
    insert_statement,
    insert_values,
    inserted,
    returning_joined,
    update_returning,
    update_returning_instance,
    upserts_deferred,
    with_ctes,
)
from .runs import push_recorded, push_run

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(seconds=30)


def lease_length() -> timedelta:
    """How long a worker holds a listing: the converge task's hard time limit plus a margin.

    Celery kills a converge that runs past its time_limit, so a lease never needs to outlive
    it; a worker killed outright (SIGKILL, a lost machine) frees its listings this soon after
    and the sweeper (sweep_listings_task, every minute) hands them to another worker.
    """
    from ..tasks import converge_listing_task

    limit = converge_listing_task.time_limit or converge_listing_task.soft_time_limit
    return timedelta(seconds=limit) + LEASE_MARGIN


ENDED_STATES = (ListingState.ENDED, ListingState.SOLD)


# --- What a listing says --------------------------------------------------------------


def listing_quantity(item: Item, connection: ChannelConnection) -> int:
    """Units offered on a channel: what is available, less the connection's buffer.

    The buffer holds back a share of multi-quantity stock (rounded up) so a burst of
    sales on several channels cannot oversell; it never hides a one-of-a-kind item.
    """
    available = max(item.quantity_on_hand - item.quantity_locked, 0)
    if available <= 1 or not connection.stock_buffer_percent:
        return available
    held = math.ceil(available * connection.stock_buffer_percent / 100)
    return max(available - held, 1)


def _absolute(url: str) -> str:
    """Channels fetch photos themselves: an uploaded photo's /media/ path needs the site's address."""
    if url.startswith(("http://", "https://")) or not settings.SITE_URL:
        return url
    return settings.SITE_URL + url


def listing_payload(listing: ChannelListing) -> ListingPayload:
    item = listing.item
    photos = tuple(_absolute(photo.src) for photo in item.photos.all() if photo.src)
    return ListingPayload(
        sku=item.sku,
        title=listing.title_override or item.title,
        description=item.description,
        price=listing.price_override if listing.price_override is not None else item.price,
        currency=item.currency,
        quantity=listing_quantity(item, listing.connection),
        brand=item.brand,
        model=item.model,
        year=item.year,
        finish=item.finish,
        category=item.category,
        condition=item.condition,
        serial_number=item.serial_number,
        photos=photos,
        video_url=item.video_url,
        # A listing's own title is what staff chose to call the item on that shop: it wins
        # over the item's SEO title there too (eBay, Reverb, Etsy and V&R name it by the SEO title).
        seo_title=listing.title_override or item.seo_title,
        seo_description=item.seo_description,
        seo_keywords=item.seo_keywords,
    )


def payload_content(payload: ListingPayload) -> dict:
    """The payload as JSON-safe values, for change detection field by field."""
    content = {}
    for name, value in payload.__dict__.items():
        if isinstance(value, Decimal):
            value = f"{value:.2f}"
        elif isinstance(value, tuple):
            value = list(value)
        content[name] = value
    return content


def content_fingerprint(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


# --- Desired state (called inside the caller's transaction) ---------------------------


def _enqueue(listing_ids: Iterable[int]) -> None:
    ids = list(dict.fromkeys(listing_ids))
    if not ids:
        return

    def send() -> None:
        from ..tasks import enqueue_converge

        for listing_id in ids:
            enqueue_converge(listing_id)

    transaction.on_commit(send)


def _enqueue_on_channels(listings: Iterable[tuple[int, str]], *, account_id: int | None = None) -> None:
    """Like _enqueue, for listings whose channel the caller knows: (listing id, channel name),
    all of one account when the caller gives it (the worker then scopes without a lookup)."""
    pairs = list(dict.fromkeys(listings))
    if not pairs:
        return

    def send() -> None:
        from ..tasks import enqueue_converges

        enqueue_converges(pairs, account_id=account_id)

    transaction.on_commit(send)


@dataclass
class ListingActionResult:
    """Per item: which connections were asked to change, and what was refused and why."""

    done: list[dict] = field(default_factory=list)
    not_done: list[dict] = field(default_factory=list)

    def summary(self, verb: str) -> str:
        text = f"{len(self.done)} item(s) {verb}"
        if self.not_done:
            text += f"; {len(self.not_done)} not"
        return text


def _connections(account: Account, connection_ids: Sequence[int] | None) -> list[ChannelConnection]:
    """Connections new listings may go to: enabled, not paused, not being disconnected."""
    qs = ChannelConnection.objects.filter(
        account=account, enabled=True, paused=False, disconnect_requested_at__isnull=True
    ).order_by("priority", "pk")
    if connection_ids is not None:
        qs = qs.filter(pk__in=connection_ids)
    return list(qs)


def listings_publish(
    *, account: Account, item_ids: Iterable[int], actor: Actor, connection_ids: Sequence[int] | None = None
) -> ListingActionResult:
    """List items everywhere (or on the given connections). Returns at once; workers publish."""
    result = ListingActionResult()
    connections = _connections(account, connection_ids)
    if not connections:
        raise PermanentChannelError(
            "No active channel connection to list on (paused and disconnected ones take no new listings). "
            "Add one under Channels, or resume or enable an existing one."
        )
    now = timezone.now()
    to_enqueue = []
    with transaction.atomic():
        items = list(Item.objects.select_for_update().filter(account=account, pk__in=list(item_ids)).order_by("pk"))
        existing = {
            (listing.item_id, listing.connection_id): listing
            for listing in ChannelListing.objects.select_for_update().filter(item__in=items, connection__in=connections)
        }
        for item in items:
            if item.state != ItemState.ACTIVE:
                result.not_done.append(
                    {"id": item.pk, "sku": item.sku, "reason": f"is {item.state}; make it active first"}
                )
                continue
            if item.quantity_on_hand - item.quantity_locked <= 0:
                result.not_done.append({"id": item.pk, "sku": item.sku, "reason": "nothing available to sell"})
                continue
            listed_on = []
            for connection in connections:
                listing = existing.get((item.pk, connection.pk))
                if listing is None:
                    listing = ChannelListing.objects.create(
                        account=account, item=item, connection=connection, desired_state=DesiredState.LIVE
                    )
                elif listing.desired_state != DesiredState.LIVE:
                    listing.desired_state = DesiredState.LIVE
                    listing.end_reason = ""
                    listing.desired_changed_at = now
                    listing.save(update_fields=["desired_state", "end_reason", "desired_changed_at", "updated_at"])
                elif listing.converged:
                    continue
                to_enqueue.append(listing.pk)
                listed_on.append(connection.name)
            result.done.append({"id": item.pk, "sku": item.sku, "connections": listed_on})
        _enqueue(to_enqueue)
    return result


def listings_end(
    *,
    account: Account | None,
    item_ids: Iterable[int],
    actor: Actor,
    reason: str = END_WITHDRAWN,
    except_connection_id: int | None = None,
) -> ListingActionResult:
    """Take items off sale everywhere (except one connection, e.g. where it sold). Workers end them."""
    result = ListingActionResult()
    now = timezone.now()
    with transaction.atomic():
        qs = ChannelListing.objects.filter(item_id__in=list(item_ids), desired_state=DesiredState.LIVE)
        if account is not None:
            qs = qs.filter(account=account)
        if except_connection_id is not None:
            qs = qs.exclude(connection_id=except_connection_id)
        listings = list(qs.select_for_update().order_by("pk"))
        listings_want_ended(listings, reason=reason, now=now)
        by_item: dict[int, int] = {}
        for listing in listings:
            by_item[listing.item_id] = by_item.get(listing.item_id, 0) + 1
        result.done = [{"id": item_id, "listings": n} for item_id, n in by_item.items()]
        _enqueue(listing.pk for listing in listings if not listing.converged)
    return result


def listings_want_ended(listings: Sequence[ChannelListing], *, reason: str, now) -> list[int]:
    """Set these (locked) listings' desired state to ended. Returns the ids a worker must end;
    one that never reached its channel is ended here and then (nothing is there to end)."""
    for listing in listings:
        # bulk_update sends no signals: the audit entry (live -> ended) is written here.
        audit_changes(
            listing,
            {"desired_state": (listing.desired_state, DesiredState.ENDED), "end_reason": (listing.end_reason, reason)},
        )
        listing.desired_state = DesiredState.ENDED
        listing.end_reason = reason
        listing.relist_requested = False
        listing.desired_changed_at = now
        if _never_reached_channel(listing):
            listing.actual_state = ListingState.ENDED
            listing.ended_at = now
    ChannelListing.objects.bulk_update(
        listings,
        ["desired_state", "end_reason", "relist_requested", "desired_changed_at", "actual_state", "ended_at"],
    )
    return [listing.pk for listing in listings if listing.actual_state not in ENDED_STATES]


def _never_reached_channel(listing: ChannelListing) -> bool:
    """No id and no publish ever attempted: there is nothing on the channel to end.

    A listing whose publish was tried (and may have been applied, e.g. after a timeout)
    is left to the worker, which looks it up by SKU before deciding.
    """
    return (
        not listing.external_id
        and listing.actual_state in (ListingState.PENDING, ListingState.ERROR)
        and listing.attempts == 0
        and not listing.last_error
        and listing.last_synced_at is None
    )


def listings_relist(*, account: Account, item_ids: Iterable[int], actor: Actor) -> ListingActionResult:
    """End each listing and list it again as a new one (to refresh it on the channel)."""
    result = ListingActionResult()
    now = timezone.now()
    with transaction.atomic():
        items = list(Item.objects.select_for_update().filter(account=account, pk__in=list(item_ids)).order_by("pk"))
        for item in items:
            if item.state != ItemState.ACTIVE:
                result.not_done.append(
                    {"id": item.pk, "sku": item.sku, "reason": f"is {item.state}; make it active first"}
                )
                continue
            listings = list(ChannelListing.objects.select_for_update().filter(item=item, connection__enabled=True))
            if not listings:
                result.not_done.append({"id": item.pk, "sku": item.sku, "reason": "not listed anywhere yet"})
                continue
            for listing in listings:
                listing.desired_state = DesiredState.LIVE
                listing.relist_requested = listing.actual_state == ListingState.LIVE
                listing.end_reason = END_WITHDRAWN if listing.relist_requested else ""
                listing.desired_changed_at = now
                listing.save(
                    update_fields=[
                        "desired_state",
                        "relist_requested",
                        "end_reason",
                        "desired_changed_at",
                        "updated_at",
                    ]
                )
            result.done.append({"id": item.pk, "sku": item.sku, "listings": len(listings)})
            _enqueue(listing.pk for listing in listings)
    return result


def listings_mark_changed(item_ids: Iterable[int]) -> int:
    """The item's content or stock changed: live listings must be revised. Returns how many."""
    ids = list(item_ids)
    qs = ChannelListing.objects.filter(item_id__in=ids, desired_state=DesiredState.LIVE).exclude(
        actual_state=ListingState.SOLD
    )
    listing_ids = list(qs.values_list("pk", flat=True))
    if listing_ids:
        ChannelListing.objects.filter(pk__in=listing_ids).update(needs_push=True, desired_changed_at=timezone.now())
        _enqueue(listing_ids)
    return len(listing_ids)


def listings_follow_item_state(items: Sequence[Item], to_state: str, actor: Actor) -> None:
    """Keep listings in step with the item: off sale when it leaves active, back when a sale is undone."""
    ids = [item.pk for item in items]
    if not ids:
        return
    if to_state in (ItemState.DRAFT, ItemState.ARCHIVED):
        listings_end(account=None, item_ids=ids, actor=actor, reason=END_WITHDRAWN)
    elif to_state == ItemState.SOLD:
        listings_end(account=None, item_ids=ids, actor=actor, reason=END_SOLD_ELSEWHERE)
    elif to_state == ItemState.ACTIVE:
        # A cancelled sale: list again where the sale (not the shop) took it down.
        back = ChannelListing.objects.filter(
            item_id__in=ids, desired_state=DesiredState.ENDED, end_reason__in=[END_SOLD_ELSEWHERE, END_SOLD_HERE]
        )
        listing_ids = list(back.values_list("pk", flat=True))
        for listing in back:
            audit_changes(
                listing,
                {"desired_state": (listing.desired_state, DesiredState.LIVE), "end_reason": (listing.end_reason, "")},
            )
        back.update(desired_state=DesiredState.LIVE, end_reason="", desired_changed_at=timezone.now())
        _enqueue(listing_ids)


# --- Converging (the worker's side) ---------------------------------------------------


SYNC_ALERT_KINDS = (AlertKind.SYNC_ERROR, AlertKind.LISTING_MISSING, AlertKind.NOT_ENDED, AlertKind.PRICE_DRIFT)
"""The alerts a listing's successful push closes (their cause was the listing being out of sync)."""

_OPEN_SYNC_ALERT = (
    'EXISTS (SELECT 1 FROM "inventory_alert" WHERE "inventory_alert"."listing_id" = "inventory_channellisting"."id"'
    ' AND "inventory_alert"."resolved_at" IS NULL AND "inventory_alert"."kind" IN ('
    + ", ".join(["%s"] * len(SYNC_ALERT_KINDS))
    + "))"
)


@dataclass
class _Lease:
    """A converge's lease, let go of by its last write where it can be (see _record)."""

    started: object  # when the converge began: a later desired_changed_at means go round again
    clock: float = 0.0  # time.monotonic() then, for the push's SyncRun duration
    done: list[str] = field(default_factory=list)  # the converge's steps so far
    released: bool | None = None  # None: no final write happened, listing_converge lets go itself
    open_alert: bool | None = None  # whether the listing had an open sync alert at its final write
    run_recorded: bool = False  # the final write also wrote the push's SyncRun


# A converge's lease: free, or its holder's lease ran out (prepared: see prepared.py).
_CLAIM = PreparedUpdate(
    lambda listing_id, now, until: (
        ChannelListing.objects.filter(pk=listing_id).filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)),
        {"lease_until": until},
    ),
    listing_id=int,
    now=datetime,
    until=datetime,
)


def _claim(listing_id: int, channel_name: str | None = None) -> ChannelListing | None:
    """Take the listing's lease, answering the listing as it is (None if another worker holds
    it), with, as `connection`, the channel's own connection row and its account. The item
    is loaded when first used (an end by id does not need it). Given the channel's name (the
    task knows it from its queue), the connection comes back in the same statement."""
    now = timezone.now()
    if channel_name is not None and db_connection.vendor == "postgresql":
        model = specific_connection_model(channel_name)
        statement, params = _CLAIM.statement(listing_id=listing_id, now=now, until=now + lease_length())
        # A lease lost in a database crash is harmless (the crash ends this converge's session
        # too, so its final write fails and the task retries), so the claim's commit does not
        # wait for the disk: one WAL flush less on the way from a sale to its ends.
        found = returning_joined(ChannelListing, statement, params, model, unflushed=True)
        if found is None:
            return None
        listing, connection = found
        if connection is not None:
            listing.connection = connection
            return listing
        # Not that channel's listing after all: read its own connection row as below.
    else:
        claimable = ChannelListing.objects.filter(pk=listing_id).filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now)
        )
        listing = update_returning_instance(claimable, {"lease_until": now + lease_length()})
        if listing is None:
            return None
    model = specific_connection_model(channel_name_of(listing.connection_id))
    listing.connection = model.objects.select_related("account").get(pk=listing.connection_id)
    return listing


def _release(listing_id: int) -> None:
    ChannelListing.objects.filter(pk=listing_id).update(lease_until=None)


def _let_go(started: datetime) -> Case:
    """The lease as a converge's final write leaves it: let go of, unless what the shop wants
    changed since the converge began (then listing_converge goes round again)."""
    return Case(
        When(desired_changed_at__lte=started, then=Value(None, output_field=DateTimeField())),
        default=F("lease_until"),
    )


@functools.cache
def _final_statement(statement: str, upserts: tuple[str, ...], with_run: bool) -> str:
    """A converge's final write as sent: the listing's UPDATE answering the lease and the open
    alert, carrying as data-modifying CTEs the upserts the channel deferred (what it said,
    returning.upserts_deferred) and, `with_run`, the push's SyncRun (answering its id too):
    one statement instead of one each."""
    ctes = [(f"upsert_{n}", upsert) for n, upsert in enumerate(upserts, 1)]
    returning = f' RETURNING "inventory_channellisting"."lease_until", {_OPEN_SYNC_ALERT}'
    if with_run:
        ctes.append(("push_run", insert_statement(SyncRun, 1)))
        returning += ', (SELECT "id" FROM "push_run")'
    return with_ctes(ctes, statement) + returning


@functools.cache
def _final_write(kinds: tuple[tuple[str, type], ...]) -> PreparedUpdate:
    """A converge's final write of these fields (names and kinds), prepared: see prepared.py."""
    return PreparedUpdate(
        lambda listing_id, started, **changes: (
            ChannelListing.objects.filter(pk=listing_id),
            {**changes, "lease_until": _let_go(started)},
        ),
        listing_id=int,
        started=datetime,
        **dict(kinds),
    )


def _record(listing: ChannelListing, *, final: bool = False, step: str = "", **changes) -> ChannelListing:
    """Write what the channel now has: one UPDATE of the changed fields (it takes the row lock
    for its own duration, nothing is read under it). Fields nobody here changed keep whatever a
    concurrent writer put there; a change of what the shop wants moves desired_changed_at,
    which listing_converge looks at before it lets go of the listing.

    `final`: nothing more is written or sent in this converge. The same UPDATE then lets go
    of the lease unless desired_changed_at moved since the converge began, and answers
    whether it did and whether the listing has an open sync alert to close. Given the `step`
    it records (what listing_converge adds to its steps next), it also writes the push's SyncRun
    (runs.push_run), which listing_converge then does not write again."""
    changes["updated_at"] = timezone.now()
    lease: _Lease | None = getattr(listing, "_lease", None)
    if final and lease is not None and db_connection.vendor == "postgresql":
        kinds = value_kinds(changes)
        if kinds is not None:  # the usual final write (an end, a revise): its SQL written once
            statement, params = _final_write(kinds).statement(listing_id=listing.pk, started=lease.started, **changes)
            run = (  # no step (a final write that changed nothing on the channel): no SyncRun
                push_run(listing.connection_id, listing.account_id, started=lease.clock, done=[*lease.done, step])
                if step
                else None
            )
            upserts, upsert_params = deferred_upserts()
            run_params = insert_values([run]) if run is not None else []
            with planned_cursor(db_connection) as cursor:
                cursor.execute(
                    _final_statement(statement, upserts, run is not None),
                    [*upsert_params, *run_params, *params, *SYNC_ALERT_KINDS],
                )
                rows = cursor.fetchall()
            deferred_upserts_carried()
            if run is not None:
                lease.run_recorded = True  # written even when the listing is gone (a CTE always runs)
                if rows:
                    inserted([run], [rows[0][2]])
        else:
            rows = update_returning(
                ChannelListing.objects.filter(pk=listing.pk),
                {**changes, "lease_until": _let_go(lease.started)},
                ["lease_until"],
                extra=[(_OPEN_SYNC_ALERT, list(SYNC_ALERT_KINDS))],
            )
        lease.released = bool(rows) and rows[0][0] is None
        lease.open_alert = bool(rows[0][1]) if rows else True
    else:
        ChannelListing.objects.filter(pk=listing.pk).update(**changes)
    for name, value in changes.items():
        setattr(listing, name, value)
    return listing


def listing_converge(listing_id: int, *, channel_name: str | None = None) -> str:
    """Make the channel match the listing's desired state and content. Returns what it did.

    Raises TransientChannelError for the task to retry; a PermanentChannelError marks the
    listing `error` with the channel's message and raises an alert, and is not retried.
    `channel_name` (the listing's channel, when the caller knows it) saves reading the
    connection apart.
    """
    claimed = _claim(listing_id, channel_name)
    if claimed is None:
        raise ListingBusy("another worker is converging this listing")
    started = timezone.now()
    clock = time.monotonic()
    done: list[str] = []
    claimed._lease = lease = _Lease(started=started, clock=clock, done=done)
    try:
        with upserts_deferred():  # what the channel said rides with the final write
            outcome = _converge(claimed, done)
    except ChannelError as error:
        _release(listing_id)
        _push_recorded(claimed, clock, done, error)
        raise
    except BaseException:
        _release(listing_id)
        raise
    # Let go of the lease unless what the shop wants changed while we talked to the channel
    # (e.g. it sold while we published): then go round again now rather than wait for the
    # sweeper. A change after this statement enqueues its own converge, which finds it free.
    # The converge's final write usually did this already (see _record).
    if lease.released is None:
        released = ChannelListing.objects.filter(pk=listing_id, desired_changed_at__lte=started).update(
            lease_until=None
        )
    else:
        released = lease.released
    if not released:
        _release(listing_id)
        if ChannelListing.objects.filter(pk=listing_id).exists():
            _enqueue_now(listing_id)
    _push_recorded(claimed, clock, done, None, run_recorded=lease.run_recorded)
    if lease.open_alert is not False and any(
        step in ("published", "adopted", "ended") or step.startswith("revised") for step in done
    ):
        # The channel took our change: what was wrong with this listing is gone. (The final
        # write answered whether anything is open; an alert raised after it is closed by the
        # next push, as one raised after this statement always was.)
        alerts_resolve_cause(
            listing_id=listing_id,
            kind__in=list(SYNC_ALERT_KINDS),
            resolution=f"The listing synced again ({'; '.join(done)}).",
        )
    if "ended" in done and claimed.connection.disconnect_requested_at is not None:
        from .connections import connection_disconnect_finish

        connection_disconnect_finish(connection_id=claimed.connection_id)
    return outcome


def _push_recorded(
    listing: ChannelListing, clock: float, done: list[str], error: Exception | None, *, run_recorded: bool = False
) -> None:
    if not run_recorded:
        push_recorded(listing.connection_id, listing.account_id, started=clock, done=done, error=error)
    circuit_after_push(listing.connection, done, error)


def circuit_after_push(connection: ChannelConnection, done: list[str], error: Exception | None) -> None:
    """Count the push for the connection's circuit breaker. A push that went through costs no
    statement unless the connection had failures counted (its row was read with the listing)."""
    if error is not None:
        circuit_push_failed(connection_id=connection.pk, error=error)
    elif (connection.circuit_opened_at is not None or connection.push_failures) and any(
        step not in ("unchanged", "relisting") and not step.startswith("error:") for step in done
    ):
        circuit_push_succeeded(connection_id=connection.pk)


def _enqueue_now(listing_id: int) -> None:
    from ..tasks import enqueue_converge

    transaction.on_commit(lambda: enqueue_converge(listing_id))


def _converge(listing: ChannelListing, done: list[str]) -> str:
    if listing.converged:
        return "in sync"
    connection = listing.connection
    wants_end = listing.desired_state == DesiredState.ENDED
    if not connection.enabled and not wants_end:
        # A disabled connection takes nothing new; an end is still carried out (a sale
        # elsewhere must never leave it for sale there) and fails visibly if it cannot be.
        return "connection disabled"
    if connection.paused and not wants_end and listing.actual_state != ListingState.LIVE:
        return "connection paused: not listed until it is resumed"
    ending = wants_end or listing.relist_requested
    if connection.circuit_opened_at is not None and not ending and not circuit_probe_claim(connection.pk):
        # Ends still go out: a sale elsewhere must never leave the item for sale here.
        return "pushes paused: the channel kept failing (circuit open); a probe is sent regularly"
    sync = channel(connection.channel)
    conn = connection  # the channel's own connection row (see _load)
    now = timezone.now()
    try:
        # End first: a sale elsewhere, a withdrawal, or the first half of a relist.
        wants_end = listing.desired_state == DesiredState.ENDED or listing.relist_requested
        if wants_end and listing.actual_state not in ENDED_STATES:
            if not listing.external_id:
                # A publish may have been applied without our hearing back: ask by SKU.
                found = sync.find_listing(conn, listing.item.sku)
                if found is not None and found.state in ("live", "draft"):
                    listing = _record(listing, external_id=found.external_id, external_url=found.url)
            if listing.external_id:
                outcome = sync.end(conn, listing.external_id, listing.end_reason or END_WITHDRAWN)
                if not outcome.confirmed:
                    raise TransientChannelError(f"end not confirmed yet (channel says {outcome.state})")
            state = ListingState.SOLD if listing.end_reason == END_SOLD_HERE else ListingState.ENDED
            listing = _record(
                listing,
                final=not listing.relist_requested,  # an end without a relist is the converge's last write
                step="ended",
                actual_state=state,
                ended_at=timezone.now(),
                last_error="",
                attempts=0,
                last_synced_at=now,
            )
            done.append("ended")
        if listing.relist_requested:
            listing = _record(
                listing,
                relist_requested=False,
                external_id="",
                external_url="",
                actual_state=ListingState.PENDING,
                pushed_content={},
                pushed_fingerprint="",
                ended_at=None,
                end_reason="",
            )
            done.append("relisting")
        if listing.desired_state == DesiredState.LIVE:
            lease = getattr(listing, "_lease", None)
            listing = ChannelListing.objects.select_related("item").get(pk=listing.pk)
            listing.connection = connection
            listing._lease = lease
            payload = listing_payload(listing)
            content = payload_content(payload)
            fingerprint = content_fingerprint(content)
            if listing.item.state != ItemState.ACTIVE or payload.quantity <= 0:
                return "; ".join([*done, "not sellable now: left as is"])
            if listing.actual_state != ListingState.LIVE or not listing.external_id:
                published = sync.publish(conn, payload, listing.external_id or None)
                _release_reused_id(listing, published.external_id)
                step = "adopted" if published.adopted else "published"
                _record(
                    listing,
                    final=True,
                    step=step,
                    external_id=published.external_id,
                    external_url=published.url,
                    actual_state=ListingState.LIVE,
                    pushed_content=content,
                    pushed_fingerprint=fingerprint,
                    needs_push=False,
                    last_error="",
                    attempts=0,
                    last_synced_at=timezone.now(),
                    ended_at=None,
                )
                done.append(step)
            elif fingerprint != listing.pushed_fingerprint and (
                changed := _changed_fields(listing, content := _holding_asked_fields(listing, content))
            ):
                fingerprint = content_fingerprint(content)
                try:
                    sync.revise(conn, listing.external_id, payload, changed)
                except ListingNotFound:
                    listing_missing(listing.pk, why=f"{connection.name} no longer has listing {listing.external_id}")
                    done.append("missing on the channel: publishing again")
                    return "; ".join(done)
                step = "revised " + ",".join(sorted(changed))
                _record(
                    listing,
                    final=True,
                    step=step,
                    pushed_content=content,
                    pushed_fingerprint=fingerprint,
                    needs_push=False,
                    last_error="",
                    attempts=0,
                    last_synced_at=timezone.now(),
                )
                done.append(step)
            else:
                _record(listing, final=True, needs_push=False)
                done.append("unchanged")
    except TransientChannelError as error:
        ChannelListing.objects.filter(pk=listing.pk).update(last_error=str(error)[:2000], attempts=listing.attempts + 1)
        raise
    except PermanentChannelError as error:
        done.append(f"error: {error}")
        if listing.desired_state == DesiredState.LIVE and _sold_on_channel(sync, conn, listing):
            # The channel refused the write because the item sold there and the order has not
            # reached us yet (a late or lost webhook): a sale to record now, not an error for staff.
            _enqueue_pull(connection.pk)
            return f"sold on {connection.name}: reading its orders now"
        listing_failed(listing.pk, error)
        return f"error: {error}"
    return "; ".join(done) or "in sync"


def _changed_fields(listing: ChannelListing, content: dict) -> frozenset[str]:
    """The fields to revise: what differs from the last push."""
    return frozenset(k for k, v in content.items() if listing.pushed_content.get(k) != v)


def _holding_asked_fields(listing: ChannelListing, content: dict) -> dict:
    """A field staff are asked about (an edit made on the channel, see services.edits) is not pushed
    to that listing until they settle it: it keeps what the channel was last sent."""
    from ..models import Conflict, ConflictKind, ConflictStatus

    held = Conflict.objects.filter(listing_id=listing.pk, kind=ConflictKind.FIELD_EDIT, status=ConflictStatus.OPEN)
    names = [name for name in held.values_list("field", flat=True) if name in listing.pushed_content]
    return {**content, **{name: listing.pushed_content[name] for name in names}}


def _sold_on_channel(sync, conn, listing: ChannelListing) -> bool:
    """Whether the channel, read back, shows this listing sold."""
    if not listing.external_id:
        return False
    try:
        seen = sync.read_listing(conn, listing.external_id)
    except ChannelError:
        return False
    return seen is not None and seen.state == "sold" and same_sku(seen.sku, listing.item.sku)


def _enqueue_pull(connection_id: int) -> None:
    from ..tasks import enqueue_pull

    transaction.on_commit(lambda: enqueue_pull(connection_id))


def listing_attempt_failed(listing_id: int, message: str) -> None:
    """One attempt failed and will be tried again: the listing shows why and counts it."""
    ChannelListing.objects.filter(pk=listing_id).update(last_error=message[:2000], attempts=F("attempts") + 1)


def listing_failed(listing_id: int, error: Exception, *, attempt_counted: bool = False) -> None:
    """Give up on a listing for now: mark it `error`, keep the channel's words, alert staff.

    `attempt_counted`: the failed attempt was already counted (a transient error's last retry).
    """
    with transaction.atomic():
        listing = ChannelListing.objects.select_for_update().select_related("item", "connection").get(pk=listing_id)
        listing.actual_state = ListingState.ERROR
        listing.last_error = str(error)[:2000]
        listing.attempts += 0 if attempt_counted else 1
        listing.save(update_fields=["actual_state", "last_error", "attempts", "updated_at"])
        alert_raise(
            account_id=listing.account_id,
            kind=AlertKind.SYNC_ERROR,
            dedupe_key=f"listing-error:{listing.pk}",
            title=f"{listing.item.sku} could not sync to {listing.connection.name}",
            message=str(error),
            item=listing.item,
            listing=listing,
        )


def same_sku(theirs: str, ours: str) -> bool:
    """Whether a channel's SKU is ours (channels may change case or pad it)."""
    return (theirs or "").strip().casefold() == (ours or "").strip().casefold()


def listing_missing(listing_id: int, *, why: str) -> str:
    """The channel does not have a listing we track (404, gone from a full scan, its id reused).

    Never kept as live: the listing is marked missing at once (its stale id cleared, so the
    channel's next listing with that id cannot clash with it), staff are alerted, and it is
    published again only if the shop still wants it live there and the item can sell. A
    listing meant to be ended that the channel no longer has is simply ended.
    Returns what was decided.
    """
    with transaction.atomic():
        listing = (
            ChannelListing.objects.select_for_update(of=("self",))
            .select_related("item", "connection")
            .filter(pk=listing_id)
            .first()
        )
        if listing is None:
            return "gone"
        if listing.actual_state in ENDED_STATES:
            if listing.external_id:
                listing.external_id = ""
                listing.save(update_fields=["external_id", "updated_at"])
            return "already ended"
        old_id = listing.external_id
        now = timezone.now()
        if listing.desired_state == DesiredState.ENDED:
            listing.actual_state = ListingState.ENDED
            listing.ended_at = now
            verdict = "ended (the channel no longer has it)"
        else:
            listing.actual_state = ListingState.MISSING
            listing.desired_changed_at = now
            verdict = "missing: publishing again" if listing.item.state == ItemState.ACTIVE else "missing"
        listing.external_id = ""
        listing.external_url = ""
        listing.pushed_content = {}
        listing.pushed_fingerprint = ""
        listing.last_error = why[:2000]
        listing.save()
        if listing.desired_state == DesiredState.LIVE:
            alert_raise(
                account_id=listing.account_id,
                kind=AlertKind.LISTING_MISSING,
                dedupe_key=f"listing-missing:{listing.pk}:{old_id}",
                title=f"{listing.item.sku} was not found on {listing.connection.name}",
                message=(
                    f"{why}. It was believed live there"
                    + (" and is being published again." if listing.item.state == ItemState.ACTIVE else ".")
                ),
                item=listing.item,
                listing=listing,
            )
            if listing.item.state == ItemState.ACTIVE and listing.connection.accepts_new_listings:
                _enqueue([listing.pk])
    return verdict


def _release_reused_id(listing: ChannelListing, external_id: str) -> None:
    """The channel gave this listing an id another of our listings still holds: that one is stale."""
    stale = (
        ChannelListing.objects.filter(connection_id=listing.connection_id, external_id=external_id)
        .exclude(pk=listing.pk)
        .values_list("pk", flat=True)
        .first()
    )
    if stale is not None:
        listing_missing(
            stale,
            why=f"{listing.connection.name} now uses listing id {external_id} for {listing.item.sku}",
        )


def listings_lagging(
    *, older_than: timedelta = timedelta(seconds=60), limit: int = 5000, connection_id: int | None = None
) -> list[int]:
    """Listings whose actual state lags their desired state for longer than `older_than`."""
    cutoff = timezone.now() - older_than
    lagging = (
        Q(desired_state=DesiredState.LIVE)
        & (~Q(actual_state=ListingState.LIVE) | Q(needs_push=True) | Q(relist_requested=True))
    ) | (Q(desired_state=DesiredState.ENDED) & ~Q(actual_state__in=ENDED_STATES))
    # Ends are carried out on disabled connections too: nothing is left for sale behind them.
    reachable = Q(connection__enabled=True) | Q(desired_state=DesiredState.ENDED)
    qs = (
        ChannelListing.objects.filter(lagging, reachable, desired_changed_at__lt=cutoff)
        .exclude(actual_state=ListingState.ERROR, desired_state=DesiredState.LIVE, needs_push=False)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=timezone.now()))
        .order_by("desired_changed_at")
    )
    if connection_id is not None:
        qs = qs.filter(connection_id=connection_id)
    return list(qs.values_list("pk", flat=True)[:limit])


def listings_retry(*, listing_ids: list[int]) -> int:
    """Try these listings again now (e.g. after staff fixed what the channel refused)."""
    with transaction.atomic():
        ChannelListing.objects.filter(pk__in=listing_ids, actual_state=ListingState.ERROR).update(
            needs_push=True, desired_changed_at=timezone.now()
        )
        _enqueue(listing_ids)
    return len(listing_ids)
