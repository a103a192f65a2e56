"""Reverb's side of the channel contract (see inventory/channels.py).

These functions receive a ReverbConnection and plain data, talk to Reverb through
ReverbClient, and return the contract's dataclasses. They never write inventory rows;
they keep ReverbListingDetail (this app's own record of what Reverb said) up to date.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.rls import account_scope
from inventory.channels import (
    END_SOLD_HERE,
    ChannelError,
    CheckStep,
    ConnectionCheck,
    EndResult,
    ListingNotFound,
    ListingPayload,
    ListingSeen,
    OrderSeen,
    PermanentChannelError,
    PublishResult,
    PullResult,
    WebhookSeen,
    retry_transient,
)
from inventory.services.returning import upsert_one, upserts_flush

from . import mappers, webhooks
from .client import ReverbClient
from .mappers import seo_fields  # noqa: F401  (the contract's preview of what the title would be)
from .models import ReverbConnection, ReverbListingDetail

logger = logging.getLogger(__name__)

NAME = "reverb"
LABEL = "Reverb"
CONNECTION_MODEL = "channels_reverb.ReverbConnection"
CONNECTION_SERIALIZER = "channels_reverb.serializers.ReverbConnectionSerializer"
DEFAULT_PRIORITY = 20
# What the webhook endpoint stores: Reverb's order and listing topics; anything else is refused.
WEBHOOK_ACCEPTED_TOPICS = webhooks.ORDER_TOPICS | webhooks.LISTING_TOPICS
# Reverb registers webhooks by API only for OAuth apps, not for the personal tokens shops use.
WEBHOOK_SETUP = (
    "Reverb registers webhooks by API only for OAuth apps. Paste this URL at reverb.com/my/webhooks for the "
    "orders/create and orders/update topics (behind this site's https address). It is the only secret a delivery "
    "carries: keep it private. Pulls every minute catch any sale a webhook misses."
)

# Orders are read from a little before the watermark: Reverb's times have whole seconds and
# an order saved in the same second as the last one seen must not slip through. The engine
# dedupes orders, so reading a few twice costs nothing.
ORDER_OVERLAP = timedelta(minutes=2)
# The first pull of a new connection reads orders changed in the last day, not the whole history.
FIRST_PULL_LOOKBACK = timedelta(days=1)

# Preference when several listings carry our SKU: the one for sale first, then one that can
# be put back on sale. A sold one-of-a-kind listing is locked by Reverb and never adopted.
_ADOPT_ORDER = ("live", "seller_unavailable", "ordered", "draft", "ended", "suspended", "sold_out", "sold")

OFF_SALE_FOR_GOOD = frozenset({"ended", "sold", "sold_out"})

_clients = threading.local()


# --- connection and client ------------------------------------------------------------


def reverb_connection(connection) -> ReverbConnection:
    """The ReverbConnection row for a connection (the engine may hold the base ChannelConnection)."""
    if isinstance(connection, ReverbConnection):
        return connection
    return ReverbConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> ReverbClient:
    """A client for this connection, kept per thread so keep-alive saves a TLS handshake per call."""
    connection = reverb_connection(connection)
    token_id = hashlib.sha256(connection.api_token.encode()).hexdigest()[:16]
    key = (connection.pk, connection.base_url, token_id, connection.timeout_seconds)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).close()
        client = ReverbClient(connection.base_url, connection.api_token, timeout=connection.timeout_seconds)
        cached[key] = client
    return client


# --- check ----------------------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: the token and the shop, a page of listings, and the category mapping's shape."""
    connection = reverb_connection(connection)
    client = client_for(connection)
    steps = []
    try:
        account = client.account()
    except ChannelError as error:
        if error.status in (401, 403):
            hint = " Paste a new token from reverb.com/my/api_settings."
        elif error.transient:
            hint = f" Check the base URL ({connection.base_url}), or try again in a minute."
        else:
            hint = ""
        return ConnectionCheck(steps=(CheckStep("Token", False, f"{error.message}.{hint}".replace("..", ".")),))
    shop = str(account.get("shop_name") or account.get("name") or "")
    steps.append(CheckStep("Token", True, f"The token works{f' for {shop}' if shop else ''}."))
    try:
        page = next(iter(client.my_listings(state="all")), None)
        count = page.total if page is not None and page.total is not None else len(page.items) if page else 0
        steps.append(CheckStep("Listings", True, f"Reverb shows {count} listing(s) in this shop."))
    except ChannelError as error:
        steps.append(
            CheckStep("Listings", False, f"Reading listings failed: {error.message}. Check the token's scopes.")
        )
    bad = [name for name, uuid in (connection.category_uuids or {}).items() if not _looks_like_uuid(str(uuid))]
    if bad:
        steps.append(
            CheckStep("Categories", False, "Not Reverb category UUIDs: " + ", ".join(bad) + ". Copy them from Reverb.")
        )
    return ConnectionCheck(steps=tuple(steps))


def _looks_like_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- publish / revise / end / read ----------------------------------------------------


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Create the listing, or adopt the one that already has this SKU (never a second one).

    Looks first at `external_id` (current, from /listings/{id}), then at every listing with
    the SKU (/my/listings?sku=&state=all). An adopted listing is updated with the full body
    and `publish: true`; only when none can be adopted is a listing created. After a create
    that timed out but was applied, the next call finds it by SKU and adopts it.
    """
    connection = reverb_connection(connection)
    problems = mappers.listing_problems(payload)
    if problems:
        raise PermanentChannelError("Reverb cannot list this item: " + "; ".join(problems) + ".")
    client = client_for(connection)
    body = mappers.listing_body(
        payload,
        category_uuid=_category_uuid(connection, payload.category),
        shipping_profile_id=connection.shipping_profile_id,
    )

    existing = None
    if external_id:
        try:
            current = retry_transient(client.get_listing, external_id)
        except ListingNotFound:
            current = None
        if current is not None and _adoptable(current, payload.sku):
            existing = current
    if existing is None:
        existing = best_listing_to_adopt(retry_transient(client.find_listings_by_sku, payload.sku), payload.sku)

    if existing is not None:
        written = retry_transient(client.update_listing, existing["id"], body)  # a PUT: safe to repeat
        adopted = str(existing["id"]) != str(external_id or "")
        listing = written.listing if written.listing.get("id") else existing
    else:
        # Not retried here: a create that timed out may have been applied, and /my/listings lags,
        # so the next attempt looks the SKU up again (after the engine's backoff) before creating.
        written = client.create_listing(body)
        adopted = False
        listing = written.listing
        if not listing.get("id"):  # no id in the answer: the SKU lookup knows it
            listing = retry_transient(client.find_listing_by_sku, payload.sku) or {}
            if not listing.get("id"):
                raise PermanentChannelError(
                    f"Reverb accepted the listing for {payload.sku} but returned no id.", body=written.message
                )
    _remember(connection, listing, warnings=written.warnings)

    if written.warnings and mappers.listing_state_slug(listing) == "draft":
        raise PermanentChannelError(
            f"Reverb saved listing {listing['id']} as a draft and will not publish it: " + "; ".join(written.warnings),
            body={"listing_id": str(listing["id"]), "warnings": written.warnings},
        )
    return PublishResult(external_id=str(listing["id"]), url=mappers.link(listing, "web"), adopted=adopted)


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only, under Reverb's names. No call when Reverb shows none of them."""
    connection = reverb_connection(connection)
    body = mappers.revise_body(payload, fields, category_uuid=_category_uuid(connection, payload.category))
    if not body:
        return
    written = client_for(connection).update_listing(external_id, body)
    if written.listing.get("id"):
        _remember(connection, written.listing, warnings=written.warnings)


def end(connection, external_id: str, reason: str) -> EndResult:
    """Take the listing off sale, then read it back.

    Reverb's reason is `reverb_sale` only when it sold on Reverb, else `not_sold`. Ending a
    listing that is already ended or sold is a success (Reverb refuses the end; the read-back
    decides). A draft cannot be ended on Reverb, and may still be on its way to live, so it is
    deleted. A listing Reverb no longer has is off sale.
    """
    connection = reverb_connection(connection)
    client = client_for(connection)
    reverb_reason = "reverb_sale" if reason == END_SOLD_HERE else "not_sold"
    refused: PermanentChannelError | None = None
    try:
        client.end_listing(external_id, reverb_reason)
    except ListingNotFound:
        _forget_state(connection, external_id, "deleted")
        return EndResult(confirmed=True, state="ended")
    except PermanentChannelError as error:
        if error.status in (401, 403):
            raise
        refused = error  # e.g. 422 "already ended" or "a draft cannot be ended": the read-back decides

    listing = _read(client, external_id)
    if listing is not None and mappers.listing_state_slug(listing) == "draft":
        with contextlib.suppress(ListingNotFound):
            client.delete_listing(external_id)
        listing = _read(client, external_id)
    if listing is None:
        _forget_state(connection, external_id, "deleted")
        return EndResult(confirmed=True, state="ended")

    _remember(connection, listing)
    state = mappers.listing_state(listing)
    # Only a state Reverb will not leave by itself counts (see mappers.LISTING_STATES).
    if mappers.listing_state_slug(listing) in OFF_SALE_FOR_GOOD:
        return EndResult(confirmed=True, state=state)
    if refused is not None and state == "live":
        # Reverb will not end a listing that can still sell (e.g. one a buyer's order holds):
        # staff must see why, and the engine keeps trying.
        raise PermanentChannelError(
            f"{refused.message} (Reverb shows listing {external_id} as {mappers.listing_state_slug(listing)})",
            status=refused.status,
            body=refused.body,
        )
    return EndResult(confirmed=False, state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    """The listing as Reverb has it now (GET /listings/{id}, not the lagging /my/listings)."""
    connection = reverb_connection(connection)
    listing = _read(client_for(connection), external_id)
    if listing is None:
        return None
    _remember(connection, listing)
    return mappers.listing_seen(listing)


def find_listing(connection, sku: str) -> ListingSeen | None:
    """Our listing with this SKU on Reverb (any state), the one publish would adopt, or None."""
    connection = reverb_connection(connection)
    listing = best_listing_to_adopt(client_for(connection).find_listings_by_sku(sku), sku)
    if listing is None:
        return None
    _remember(connection, listing)
    return mappers.listing_seen(listing)


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every listing of the seller on Reverb, in any state, page by page (/my/listings?state=all).

    Reads only, here too: the nightly reconcile walks every listing, and rewriting a detail
    row for each unchanged one would cost more than the walk itself (bench/sync_reconcile.py).
    """
    connection = reverb_connection(connection)
    for page in client_for(connection).my_listings(state="all"):
        for raw in page.items:
            if raw.get("id") not in (None, ""):
                yield mappers.listing_seen(raw)


# --- pull -----------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """What changed on Reverb since the watermark. Reads only.

    Orders: /my/orders/selling/all filtered by update date from `since` minus a small
    overlap; one page when nothing changed. Listings: Reverb's /my/listings cannot be
    filtered by change date (its OpenAPI document has only a state filter), so every listing
    is read once per scan interval (`listing_scan_interval`, at the connection's own moment of
    it, and on the first pull); the other pulls read no listing page at all (`full_scan`, a
    pull staff asked for, reads them now). The engine compares them with ours and reports the
    scan's cost back (`listing_scan_done`), which sets the next one.
    The watermark is the newest order update seen, or
    `since` when none was.
    """
    connection = reverb_connection(connection)
    client = client_for(connection)
    result = PullResult(watermark=since)

    start = since - ORDER_OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    seen_orders: dict[str, OrderSeen] = {}
    for page in client.orders_updated_since(start):
        result.pages_read += 1
        for raw in page.items:
            order = _order_or_none(raw)
            if order is not None:
                seen_orders[order.external_id] = order  # a page shift can show one order twice
    result.orders = list(seen_orders.values())
    newest = max((o.updated_at for o in result.orders if o.updated_at), default=None)
    if newest and (result.watermark is None or newest > result.watermark):
        result.watermark = newest

    claimed = False
    if full_scan or (claimed := _listing_scan_claim(connection)):
        connection.listing_scan_started_at = timezone.now()
        try:
            raw_listings = []
            for page in client.my_listings(state="all"):
                result.pages_read += 1
                raw_listings.extend(page.items)
        except Exception:
            if claimed:  # the next pull tries again
                ReverbConnection.objects.filter(pk=connection.pk).update(listing_scan_next_at=None)
            raise
        result.listings = [mappers.listing_seen(raw) for raw in raw_listings if raw.get("id") not in (None, "")]
        result.listings_complete = True
        _remember_many(connection, raw_listings)
    return result


# --- shipping -------------------------------------------------------------------------


def ship_order(connection, external_id: str, carrier: str, tracking_number: str) -> None:
    """The contract's shipment step: Reverb's ship endpoint, which also tells the buyer.

    The carrier is matched to Reverb's provider names (case and spaces aside), else "Other".
    """
    from .sandbox.store import SHIPPING_PROVIDERS

    wanted = carrier.replace(" ", "").casefold()
    provider = next((p for p in SHIPPING_PROVIDERS if p.replace(" ", "").casefold() == wanted), "Other")
    client_for(reverb_connection(connection)).ship_order(
        external_id, provider=provider, tracking_number=tracking_number
    )


# --- webhooks -------------------------------------------------------------------------


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """Identify a delivery (topic, dedupe key). No business logic, no database writes."""
    return webhooks.identify(headers, body)


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The order a delivery is about, read back from Reverb.

    Deliveries are unsigned and anyone holding the URL could post one, so the order is
    fetched from Reverb with this connection's token before anything acts on it: an order
    Reverb does not have for this shop yields nothing.
    """
    if not webhooks.is_order_topic(event.topic):
        return []
    order = mappers.unwrap(event.payload, "order")
    number = order.get("order_number")
    if number in (None, ""):
        return []
    fresh = client_for(connection).get_order(number)
    if fresh is None:
        logger.warning("Reverb webhook for order %s, which Reverb does not have for this shop: ignored.", number)
        return []
    return [mappers.order_seen(fresh)]


# --- helpers --------------------------------------------------------------------------


def best_listing_to_adopt(listings: Iterable[Mapping], sku: str) -> Mapping | None:
    """Of the listings carrying this SKU, the one to take over: for sale first, newest first."""
    candidates = [listing for listing in listings if _adoptable(listing, sku)]
    if not candidates:
        return None

    def rank(listing: Mapping) -> tuple[int, int]:
        slug = mappers.listing_state_slug(listing)
        order = _ADOPT_ORDER.index(slug) if slug in _ADOPT_ORDER else len(_ADOPT_ORDER)
        try:
            newest = -int(listing["id"])
        except (TypeError, ValueError):
            newest = 0
        return order, newest

    return min(candidates, key=rank)


def _adoptable(listing: Mapping, sku: str) -> bool:
    if str(listing.get("sku") or "").strip().casefold() != sku.strip().casefold():
        return False
    slug = mappers.listing_state_slug(listing)
    if slug in ("sold", "sold_out"):
        return bool(listing.get("has_inventory"))  # a sold one-of-a-kind listing is locked
    return True


def _category_uuid(connection: ReverbConnection, category: str) -> str:
    mapping = connection.category_uuids or {}
    return str(mapping.get(category) or "") if category else ""


def _read(client: ReverbClient, external_id: str) -> dict | None:
    try:
        return client.get_listing(external_id)
    except ListingNotFound:
        return None


def _order_or_none(raw: Mapping) -> OrderSeen | None:
    try:
        return mappers.order_seen(raw)
    except ValueError:
        logger.warning("Skipped a Reverb order that could not be read: %s", raw.get("order_number"))
        return None


# --- the listing scan's schedule -------------------------------------------------------
#
# Reverb cannot filter listings by change date, so every listing is read once per interval. Each
# connection scans at its own moment of the interval (its id times the golden ratio, as a share of
# it), so the scans of many shops are spread over the interval instead of falling due on the same
# beat tick. The interval in use grows when the last scans of every connection would take more
# than LISTING_SCAN_SHARE of the LISTING_SCAN_WORKERS workers' time (settings).

_GOLDEN = 0.6180339887498949


def _listing_scan_claim(connection: ReverbConnection) -> bool:
    """Whether this pull reads every listing: the first pull of a connection (no scan set yet), a
    pull after a scan failed, and once the scan is due, by one worker only (the conditional
    UPDATE is atomic; the claim holds the scan off for an interval, so a worker that dies mid-scan
    delays it by one interval, never forever). Not "no watermark yet": a shop without a sale
    would then be read in full on every pull."""
    interval = connection.listing_scan_interval_seconds
    if interval == 0:
        return True
    now = timezone.now()
    rows = ReverbConnection.objects.filter(pk=connection.pk).filter(
        Q(listing_scan_next_at__isnull=True) | Q(listing_scan_next_at__lte=now)
    )
    hold = timedelta(seconds=max(interval, connection.listing_scan_effective_seconds or 0))
    return rows.update(listing_scan_next_at=now + hold) == 1


def listing_scan_interval(connection: ReverbConnection, seconds: float) -> int:
    """The scan interval in use: the configured one, or the one at which the last scans of every
    enabled connection (this one's taking `seconds`) fit LISTING_SCAN_SHARE of the workers' time.

    If every connection scans once per interval I, the workers spend the sum of the scans per I:
    that sum must stay within workers x share x I. Measured wall time, as a worker is held for it.
    """
    configured = connection.listing_scan_interval_seconds
    if configured == 0:
        return 0
    # Every shop's scans share the same workers: a sum across accounts, read as system work.
    with account_scope(None):
        others = (
            ReverbConnection.objects.filter(enabled=True, listing_scan_interval_seconds__gt=0)
            .exclude(pk=connection.pk)
            .aggregate(total=Sum("listing_scan_seconds"))["total"]
        )
    budget = max(settings.LISTING_SCAN_WORKERS, 1) * settings.LISTING_SCAN_SHARE
    return max(configured, math.ceil(((others or 0.0) + seconds) / budget))


def listing_scan_slot(connection_id: int, after: datetime, interval: int) -> datetime:
    """The connection's next moment in the interval, between half an interval and one and a half
    after `after` (a scan that started a little late keeps its moment: the next is one interval on)."""
    phase = (connection_id * _GOLDEN) % 1.0 * interval
    earliest = after.timestamp() + interval / 2
    slot = math.ceil((earliest - phase) / interval) * interval + phase
    return datetime.fromtimestamp(slot, tz=UTC)


def listing_scan_done(connection, *, seconds: float, listings: int) -> None:
    """The engine compared a full listing read: keep what it cost and set the next scan by it."""
    connection = reverb_connection(connection)
    started = getattr(connection, "listing_scan_started_at", None) or timezone.now() - timedelta(seconds=seconds)
    effective = listing_scan_interval(connection, seconds)
    ReverbConnection.objects.filter(pk=connection.pk).update(
        listing_scan_started_at=started,
        listing_scan_seconds=round(seconds, 3),
        listing_scan_listings=listings,
        listing_scan_effective_seconds=effective,
        listing_scan_next_at=listing_scan_slot(connection.pk, started, effective) if effective else None,
    )


def _digest(listing: Mapping) -> str:
    body = json.dumps(listing, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(body.encode(), digest_size=16).hexdigest()


def _detail_fields(listing: Mapping, warnings: list[str] | None = None, digest: str | None = None) -> dict:
    fields = {
        "sku": str(listing.get("sku") or "")[:100],
        "slug": str(listing.get("slug") or "")[:255],
        "self_href": mappers.link(listing, "self")[:500],
        "web_url": mappers.link(listing, "web")[:500],
        "state": mappers.listing_state_slug(listing)[:30],
        "last_seen": dict(listing),
        "last_seen_digest": digest or _digest(listing),
        "last_seen_at": timezone.now(),
    }
    if warnings is not None:
        fields["warnings"] = list(warnings)
    return fields


def _remember(connection: ReverbConnection, listing: Mapping, *, warnings: list[str] | None = None) -> None:
    """Keep what Reverb said about this listing (slug, links, state, warnings)."""
    listing_id = str(listing.get("id") or "")
    if not listing_id:
        return
    fields = _detail_fields(listing, warnings)
    # One upsert statement: this runs after every call of every converge, on the path from a
    # sale to its end elsewhere (update_or_create took six statements and a savepoint, and
    # bulk_create a BEGIN and a COMMIT around its one INSERT). Deferred: in a converge it rides
    # with the listing's final write (nothing in the converge reads it back), elsewhere it is
    # written now.
    upsert_one(
        ReverbListingDetail(account_id=connection.account_id, connection=connection, listing_id=listing_id, **fields),
        unique_fields=["connection", "listing_id"],
        update_fields=list(fields),
        defer=True,
    )


def _remember_many(connection: ReverbConnection, listings: Iterable[Mapping]) -> int:
    """Keep what a scan read, writing only the listings Reverb shows differently (new ones, or a
    changed JSON by its digest): one read of the digests, no write for an unchanged listing.
    Returns how many rows were written."""
    upserts_flush()
    known = dict(
        ReverbListingDetail.objects.filter(connection=connection).values_list("listing_id", "last_seen_digest")
    )
    rows = []
    for listing in listings:
        if listing.get("id") in (None, ""):
            continue
        listing_id = str(listing["id"])
        digest = _digest(listing)
        if known.get(listing_id) == digest:
            continue
        rows.append(
            ReverbListingDetail(
                account_id=connection.account_id,
                connection=connection,
                listing_id=listing_id,
                **_detail_fields(listing, digest=digest),
            )
        )
    if rows:
        ReverbListingDetail.objects.bulk_create(
            rows,
            batch_size=500,
            update_conflicts=True,
            unique_fields=["connection", "listing_id"],
            update_fields=[
                "sku",
                "slug",
                "self_href",
                "web_url",
                "state",
                "last_seen",
                "last_seen_digest",
                "last_seen_at",
            ],
        )
    return len(rows)


def _forget_state(connection: ReverbConnection, external_id: str, state: str) -> None:
    upserts_flush()  # a deferred _remember of the row must not land after this
    ReverbListingDetail.objects.filter(connection=connection, listing_id=str(external_id)).update(
        state=state, last_seen_at=timezone.now()
    )
