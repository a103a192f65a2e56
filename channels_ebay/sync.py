"""eBay's side of the channel contract (see inventory/channels.py).

A listing here is an offer of the Inventory API: `external_id` is the offerId (stable for the
SKU on the marketplace: a withdrawn offer is published again, not recreated). Publishing is
three resumable steps, each wrapped in `retry_transient`: the inventory item (GET, merge,
PUT: createOrReplace is a full replace), the offer (adopted by SKU when it exists; looked up
again before every create, so a create that timed out but was applied is found, never
duplicated), then publishOffer.

Revisions of a published listing are counted per SKU per day (eBay allows 250): a write whose
merged body equals what eBay holds is not sent, and a write past the budget is refused here
with a message staff can act on. These functions never write inventory rows; they keep
EbayListingDetail (this app's record of what eBay said, and of the revisions spent).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory.channels import (
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
    WebhookReply,
    WebhookSeen,
    retry_transient,
)

from . import mappers, webhooks
from .client import BULK_LIMIT, EbayClient, EbayRequestError, error_for
from .models import EbayConnection, EbayLegacyListing, EbayListingDetail
from .services import buyer_data_erase, order_buyers_record

logger = logging.getLogger(__name__)

NAME = "ebay"
LABEL = "eBay"
CONNECTION_MODEL = "channels_ebay.EbayConnection"
CONNECTION_SERIALIZER = "channels_ebay.serializers.EbayConnectionSerializer"
DEFAULT_PRIORITY = 40
ORDER_TOPIC = "ORDER_CONFIRMATION"

REVISIONS_PER_DAY = 250
EBAY_DAY = ZoneInfo("America/Los_Angeles")  # eBay's calendar day
ORDER_OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)
ITEM_FIELDS = frozenset(
    {"title", "seo_title", "description", "brand", "model", "year", "finish", "category", "condition", "photos"}
)
OFFER_FIELDS = frozenset({"description", "category"})
PRICE_QUANTITY_FIELDS = frozenset({"price", "quantity"})

_clients = threading.local()


# --- connection and client --------------------------------------------------------------------


def ebay_connection(connection) -> EbayConnection:
    if isinstance(connection, EbayConnection):
        return connection
    return EbayConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> EbayClient:
    """A client per connection and thread (keep-alive); the access token itself lives in the cache."""
    connection = ebay_connection(connection)
    secrets = hashlib.sha256(f"{connection.client_secret}|{connection.refresh_token}".encode()).hexdigest()[:16]
    key = (
        connection.pk,
        connection.api_base_url,
        connection.token_url,
        connection.client_id,
        secrets,
        connection.timeout_seconds,
        connection.language,
    )
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = EbayClient(
            api_base_url=connection.api_base_url,
            token_url=connection.token_url,
            client_id=connection.client_id,
            client_secret=connection.client_secret,
            refresh_token=connection.refresh_token,
            language=connection.language,
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


# --- revision budget -----------------------------------------------------------------------------


def ebay_today() -> date:
    return timezone.now().astimezone(EBAY_DAY).date()


def revisions_left(connection: EbayConnection, sku: str) -> int:
    row = EbayListingDetail.objects.filter(connection=connection, sku=sku).values("revision_day", "revisions_today")
    row = row.first()
    if not row or row["revision_day"] != ebay_today():
        return REVISIONS_PER_DAY
    return max(REVISIONS_PER_DAY - row["revisions_today"], 0)


class RevisionBudgetSpent(PermanentChannelError):
    """eBay's 250 revisions per listing per day are used up for this listing."""


def _budget_refusal(sku: str) -> RevisionBudgetSpent:
    return RevisionBudgetSpent(
        f"eBay allows {REVISIONS_PER_DAY} revisions per listing per day and {sku} has used them all today: "
        "the change is kept and sent after midnight Pacific time (retry the listing then)."
    )


def _spend_revision(connection: EbayConnection, sku: str, n: int = 1) -> None:
    """Count `n` revisions of this listing today, or refuse when that would pass eBay's daily limit."""
    today = ebay_today()
    with transaction.atomic():
        row, _ = EbayListingDetail.objects.select_for_update().get_or_create(
            connection=connection, sku=sku, defaults={"account_id": connection.account_id}
        )
        spent = row.revisions_today if row.revision_day == today else 0
        if spent + n > REVISIONS_PER_DAY:
            raise _budget_refusal(sku)
        EbayListingDetail.objects.filter(pk=row.pk).update(revision_day=today, revisions_today=spent + n)


def _spend_revisions(connection: EbayConnection, skus: list[str]) -> set[str]:
    """One revision for each SKU in a few statements (a bulk sweep); returns the SKUs out of budget."""
    today = ebay_today()
    with transaction.atomic():
        EbayListingDetail.objects.bulk_create(
            [EbayListingDetail(account_id=connection.account_id, connection=connection, sku=sku) for sku in skus],
            ignore_conflicts=True,
        )
        rows = list(
            EbayListingDetail.objects.select_for_update()
            .filter(connection=connection, sku__in=skus)
            .order_by("pk")
            .only("pk", "sku", "revision_day", "revisions_today")
        )
        spent_out = set()
        for row in rows:
            spent = row.revisions_today if row.revision_day == today else 0
            if spent + 1 > REVISIONS_PER_DAY:
                spent_out.add(row.sku)
                continue
            row.revision_day, row.revisions_today = today, spent + 1
        EbayListingDetail.objects.bulk_update(
            [row for row in rows if row.sku not in spent_out], ["revision_day", "revisions_today"], batch_size=500
        )
    return spent_out


def _refund_revision(connection: EbayConnection, sku: str) -> None:
    EbayListingDetail.objects.filter(
        connection=connection, sku=sku, revision_day=ebay_today(), revisions_today__gt=0
    ).update(revisions_today=F("revisions_today") - 1)


# --- publish / revise / end / read ---------------------------------------------------------------


def _listing_settings(connection: EbayConnection, payload: ListingPayload) -> dict:
    return {
        "marketplace_id": connection.marketplace_id,
        "category_id": str((connection.category_ids or {}).get(payload.category) or ""),
        "merchant_location_key": connection.merchant_location_key,
        "fulfillment_policy_id": connection.fulfillment_policy_id,
        "payment_policy_id": connection.payment_policy_id,
        "return_policy_id": connection.return_policy_id,
    }


def _find_offer(client: EbayClient, connection: EbayConnection, sku: str, offer_id: str | None) -> dict | None:
    """The offer to use for this SKU on this marketplace: by id when we know it, else by SKU."""
    if offer_id:
        try:
            offer = client.get_offer(offer_id)
        except ListingNotFound:
            offer = None
        if offer and offer.get("sku") == sku:
            return offer
    return best_offer(client.offers_for_sku(sku, connection.marketplace_id), sku, connection.marketplace_id)


def best_offer(offers: Iterable[Mapping], sku: str, marketplace_id: str) -> dict | None:
    """Of the offers with this SKU, the published one first, then the newest unpublished one."""
    mine = [o for o in offers if o.get("sku") == sku and o.get("marketplaceId", marketplace_id) == marketplace_id]
    if not mine:
        return None
    return dict(min(mine, key=lambda o: (o.get("status") != "PUBLISHED", -_as_int(o.get("offerId")))))


def _as_int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _write_item(client: EbayClient, connection: EbayConnection, payload: ListingPayload, published: bool) -> bool:
    """GET, merge, PUT the inventory item; nothing sent when eBay already holds exactly this. True if written."""
    ours = mappers.inventory_item_body(payload, condition_overrides=connection.condition_ids)
    current = client.get_inventory_item(payload.sku)
    comparable = mappers.merge_inventory_item(current, {}) if current else None
    merged = mappers.merge_inventory_item(current, ours)
    if comparable is not None and comparable == merged:
        return False
    if published:
        _spend_revision(connection, payload.sku)
    client.put_inventory_item(payload.sku, merged)
    return True


_LOOK_UP = object()


def _ensure_offer(
    client: EbayClient, connection: EbayConnection, payload: ListingPayload, external_id: str | None, found=_LOOK_UP
):
    """The offer for this SKU, created only when none exists. `found` is what a lookup just said; a
    retry looks up again (the create that timed out may have been applied)."""
    body = mappers.offer_body(payload, **_listing_settings(connection, payload))
    offer = _find_offer(client, connection, payload.sku, external_id) if found is _LOOK_UP else found
    if offer is not None:
        update = mappers.offer_update_body(offer, body)
        if update != mappers.offer_update_body(offer, {}):
            if offer.get("status") == "PUBLISHED":
                _spend_revision(connection, payload.sku)
            client.update_offer(offer["offerId"], update)
            offer = {**offer, **update}
        return offer, False
    try:
        created = client.create_offer(body)
    except EbayRequestError:
        # "Offer entity already exists" (25002): an earlier create we never heard back from.
        offer = _find_offer(client, connection, payload.sku, None)
        if offer is None:
            raise
        return offer, False
    return {**body, "offerId": str(created.get("offerId") or ""), "status": "UNPUBLISHED"}, True


def publish(connection, payload: ListingPayload, external_id: str | None) -> PublishResult:
    """Inventory item, then offer (adopted when one has this SKU), then publish. Idempotent and resumable."""
    connection = ebay_connection(connection)
    problems = mappers.listing_problems(payload)
    if problems:
        raise PermanentChannelError("eBay cannot list this item: " + "; ".join(problems) + ".")
    client = client_for(connection)
    try:
        existing = retry_transient(_find_offer, client, connection, payload.sku, external_id)
        published = bool(existing and existing.get("status") == "PUBLISHED")
        retry_transient(_write_item, client, connection, payload, published)
        tries = []

        def ensure_offer():
            tries.append(1)  # the first try uses the lookup above; a retry looks up again
            found = existing if len(tries) == 1 else _LOOK_UP
            return _ensure_offer(client, connection, payload, external_id, found)

        offer, created = retry_transient(ensure_offer)
        offer_id = str(offer.get("offerId") or "")
        if not offer_id:
            raise PermanentChannelError(f"eBay accepted the offer for {payload.sku} but returned no offerId.")
        warnings: list = []
        if offer.get("status") != "PUBLISHED":
            answer = retry_transient(client.publish_offer, offer_id)
            warnings = list(answer.get("warnings") or [])
            listing_id = str(answer.get("listingId") or "")
        else:
            listing_id = str((offer.get("listing") or {}).get("listingId") or "")
    except EbayRequestError as error:
        _remember_error(connection, payload.sku, error)
        raise
    _remember(connection, payload.sku, offer_id=offer_id, listing_id=listing_id, status="PUBLISHED", warnings=warnings)
    adopted = not created and offer_id != str(external_id or "")
    url = f"https://www.ebay.com/itm/{listing_id}" if listing_id else ""
    return PublishResult(external_id=offer_id, url=url, adopted=adopted)


@dataclass(frozen=True)
class PriceQuantityChange:
    sku: str
    offer_id: str
    price: Decimal | None
    currency: str
    quantity: int | None


@dataclass(frozen=True)
class PriceQuantityOutcome:
    sku: str
    offer_id: str
    ok: bool
    status: int
    message: str = ""
    error: ChannelError | None = None


def bulk_revise_price_quantity(connection, changes: Iterable[PriceQuantityChange]) -> list[PriceQuantityOutcome]:
    """Price and quantity changes of many published offers, coalesced per SKU, in calls of at most 25.

    eBay answers 200 or 207 with each SKU's own statusCode: each outcome is recorded on its
    listing detail. A revision is spent per SKU sent; SKUs out of budget are not sent.
    """
    connection = ebay_connection(connection)
    client = client_for(connection)
    merged: dict[str, PriceQuantityChange] = {}
    for change in changes:  # the last price and quantity per SKU win
        before = merged.get(change.sku)
        if before is not None:
            change = PriceQuantityChange(
                change.sku,
                change.offer_id,
                change.price if change.price is not None else before.price,
                change.currency or before.currency,
                change.quantity if change.quantity is not None else before.quantity,
            )
        merged[change.sku] = change
    outcomes: list[PriceQuantityOutcome] = []
    sendable = []
    spent_out = _spend_revisions(connection, list(merged))
    for change in merged.values():
        if change.sku in spent_out:
            refusal = _budget_refusal(change.sku)
            outcomes.append(PriceQuantityOutcome(change.sku, change.offer_id, False, 0, refusal.message, refusal))
            _remember_error(connection, change.sku, refusal)
            continue
        sendable.append(change)
    for start in range(0, len(sendable), BULK_LIMIT):
        batch = sendable[start : start + BULK_LIMIT]
        entries = [
            mappers.price_quantity_entry(c.sku, c.offer_id, price=c.price, currency=c.currency, quantity=c.quantity)
            for c in batch
        ]
        responses = retry_transient(client.bulk_update_price_quantity, entries)
        applied: list[str] = []
        by_sku = {str(r.get("sku") or ""): r for r in responses}
        for change in batch:
            answer = by_sku.get(change.sku) or {}
            status = int(answer.get("statusCode") or 0)
            if 200 <= status < 300:
                outcomes.append(PriceQuantityOutcome(change.sku, change.offer_id, True, status))
                applied.append(change.sku)
            else:
                error = error_for(status or 500, {"errors": answer.get("errors") or []})
                _refund_revision(connection, change.sku)  # eBay did not apply it
                outcomes.append(PriceQuantityOutcome(change.sku, change.offer_id, False, status, error.message, error))
                _remember_error(connection, change.sku, error)
        EbayListingDetail.objects.filter(connection=connection, sku__in=applied).exclude(last_error="").update(
            last_error=""
        )
    return outcomes


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only: price and quantity by bulkUpdatePriceQuantity, the rest by replace."""
    connection = ebay_connection(connection)
    client = client_for(connection)
    offer = retry_transient(client.get_offer, external_id)
    published = offer.get("status") == "PUBLISHED"
    try:
        if fields & ITEM_FIELDS or (fields & {"quantity"} and not published):
            retry_transient(_write_item, client, connection, payload, published)
        if fields & OFFER_FIELDS or (fields & PRICE_QUANTITY_FIELDS and not published):
            body = mappers.offer_body(payload, **_listing_settings(connection, payload))
            update = mappers.offer_update_body(offer, body)
            if update != mappers.offer_update_body(offer, {}):
                if published:
                    _spend_revision(connection, payload.sku)
                retry_transient(client.update_offer, external_id, update)
                offer = {**offer, **update}
        if fields & PRICE_QUANTITY_FIELDS and published:
            price = payload.price if "price" in fields else None
            quantity = payload.quantity if "quantity" in fields else None
            current_price = mappers._decimal(((offer.get("pricingSummary") or {}).get("price") or {}).get("value"))
            if price is not None and current_price == Decimal(price).quantize(Decimal("0.01")):
                price = None
            if quantity is not None and offer.get("availableQuantity") == quantity:
                quantity = None
            if price is not None or quantity is not None:
                change = PriceQuantityChange(payload.sku, external_id, price, payload.currency, quantity)
                [outcome] = bulk_revise_price_quantity(connection, [change])
                if not outcome.ok:
                    raise outcome.error
    except EbayRequestError as error:
        _remember_error(connection, payload.sku, error)
        raise


def end(connection, external_id: str, reason: str) -> EndResult:
    """Withdraw the offer (the listing ends; the offer stays, UNPUBLISHED, for a relist), then read it back."""
    connection = ebay_connection(connection)
    client = client_for(connection)
    refused: EbayRequestError | None = None
    try:
        retry_transient(client.withdraw_offer, external_id)
    except ListingNotFound:
        pass  # 25713 also means "not published any more": the read-back says ended or sold
    except EbayRequestError as error:
        if error.status in (401, 403):
            raise
        refused = error  # e.g. already withdrawn, or sold out: the read-back decides
    try:
        offer = retry_transient(client.get_offer, external_id)
    except ListingNotFound:
        return EndResult(confirmed=True, state="ended")
    state = mappers.offer_state(offer)
    _remember(
        connection,
        str(offer.get("sku") or ""),
        offer_id=external_id,
        listing_id=str((offer.get("listing") or {}).get("listingId") or ""),
        status=_status_text(offer),
        seen=offer,
    )
    if state in ("ended", "sold", "draft"):
        return EndResult(confirmed=True, state="ended" if state == "draft" else state)
    if refused is not None:
        raise refused
    return EndResult(confirmed=False, state=state)


def read_listing(connection, external_id: str) -> ListingSeen | None:
    connection = ebay_connection(connection)
    client = client_for(connection)
    try:
        offer = client.get_offer(external_id)
    except ListingNotFound:
        return None
    item = client.get_inventory_item(str(offer.get("sku") or "")) if offer.get("sku") else None
    return mappers.listing_seen(offer, item)


def find_listing(connection, sku: str) -> ListingSeen | None:
    connection = ebay_connection(connection)
    client = client_for(connection)
    offer = best_offer(client.offers_for_sku(sku, connection.marketplace_id), sku, connection.marketplace_id)
    if offer is None:
        return None
    return mappers.listing_seen(offer, client.get_inventory_item(sku))


def read_all_listings(connection) -> Iterator[ListingSeen]:
    """Every inventory item page by page, and each SKU's offer (getOffers needs a SKU: one call per item).
    Reads only; each is retried briefly on a blip (retry_transient)."""
    connection = ebay_connection(connection)
    client = client_for(connection)
    for page in client.inventory_items(attempt=retry_transient):
        for item in page.items:
            sku = str(item.get("sku") or "")
            if not sku:
                continue
            found = retry_transient(client.offers_for_sku, sku, connection.marketplace_id)
            offer = best_offer(found, sku, connection.marketplace_id)
            if offer is not None:
                yield mappers.listing_seen(offer, item)


# --- pull ----------------------------------------------------------------------------------------


def pull(connection, since: datetime | None, *, full_scan: bool = False) -> PullResult:
    """Orders modified since the watermark (getOrders, lastmodifieddate filter, offset paging; one page
    when nothing changed), and every listing once per `listing_scan_interval_seconds` (or on demand)."""
    connection = ebay_connection(connection)
    client = client_for(connection)
    result = PullResult(watermark=since)
    start = since - ORDER_OVERLAP if since else timezone.now() - FIRST_PULL_LOOKBACK
    seen: dict[str, OrderSeen] = {}
    for page in client.orders(start, attempt=retry_transient):
        result.pages_read += 1
        order_buyers_record(connection, page.items)
        legacy_listings_note(connection, client, page.items)
        for raw in page.items:
            try:
                order = mappers.order_seen(raw)
            except ValueError:
                logger.warning("Skipped an eBay order that could not be read: %s", raw.get("orderId"))
                continue
            seen[order.external_id] = order
    result.orders = list(seen.values())
    newest = max((o.updated_at for o in result.orders if o.updated_at), default=None)
    if newest and (result.watermark is None or newest > result.watermark):
        result.watermark = newest
    if full_scan or _listing_scan_due(connection, first_pull=since is None):
        try:
            before = client.total_calls
            result.listings = list(read_all_listings(connection))
            result.pages_read += client.total_calls - before
            result.listings_complete = True
        except Exception:
            cache.delete(_scan_key(connection))
            raise
    return result


def _scan_key(connection: EbayConnection) -> str:
    return f"channels_ebay:listing-scan:{connection.pk}"


def listing_scan_due_now(connection: EbayConnection) -> None:
    """The next pull reads every listing (e.g. after a migration made some visible)."""
    cache.delete(_scan_key(connection))


def _listing_scan_due(connection: EbayConnection, *, first_pull: bool) -> bool:
    interval = connection.listing_scan_interval_seconds
    if interval == 0:
        return True
    if first_pull:
        cache.set(_scan_key(connection), "1", timeout=interval)
        return True
    return cache.add(_scan_key(connection), "1", timeout=interval)


def legacy_listings_note(connection: EbayConnection, client: EbayClient, orders: Iterable[Mapping]) -> None:
    """Orders for listings the Inventory API cannot see (made on eBay's website): kept for staff to migrate.

    A line is ours when its item number is one of our offers' listings, or its SKU has an offer
    with that listing; only lines that are neither cost a lookup (rare: a legacy listing).
    """
    lines = [
        (str(order.get("orderId") or ""), line)
        for order in orders
        for line in order.get("lineItems") or []
        if line.get("legacyItemId")
    ]
    if not lines:
        return
    ids = {str(line["legacyItemId"]) for _order, line in lines}
    known = set(
        EbayListingDetail.objects.filter(connection=connection, listing_id__in=ids).values_list("listing_id", flat=True)
    )
    known |= set(
        EbayLegacyListing.objects.filter(connection=connection, listing_id__in=ids).values_list("listing_id", flat=True)
    )
    found = []
    for order_id, line in lines:
        listing_id = str(line["legacyItemId"])
        if listing_id in known:
            continue
        sku = str(line.get("sku") or "")
        offers = client.offers_for_sku(sku, connection.marketplace_id) if sku else []
        if any(str((o.get("listing") or {}).get("listingId") or "") == listing_id for o in offers):
            known.add(listing_id)
            continue
        known.add(listing_id)
        found.append(
            EbayLegacyListing(
                account_id=connection.account_id,
                connection=connection,
                listing_id=listing_id,
                sku=sku[:100],
                title=str(line.get("title") or "")[:200],
                first_order_id=order_id,
            )
        )
    if found:
        EbayLegacyListing.objects.bulk_create(found, ignore_conflicts=True)
        logger.warning(
            "%d eBay listing(s) made outside the Inventory API sold on %s: migrate them (admin) to manage them here",
            len(found),
            connection,
        )


# --- webhooks ------------------------------------------------------------------------------------


def webhook_challenge(connection, query: Mapping[str, str], url: str) -> WebhookReply:
    """eBay's endpoint challenge: SHA-256 of challenge code + verification token + endpoint URL."""
    connection = ebay_connection(connection)
    return webhooks.challenge_reply(query, connection.verification_token, connection.endpoint_url or url)


def parse_webhook(connection, headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """Verify X-EBAY-SIGNATURE (412 when missing, bad, or signed with a key eBay does not know)."""
    connection = ebay_connection(connection)
    client = client_for(connection)
    return webhooks.verify_and_identify(headers, body, lambda kid: public_key(client, kid))


def public_key(client: EbayClient, kid: str) -> dict | None:
    """The notification public key for `kid`, cached (keys are long-lived; an unknown kid is not cached)."""
    key = f"channels_ebay:public-key:{hashlib.sha256((client.api_base_url + kid).encode()).hexdigest()[:24]}"
    found = cache.get(key)
    if found is None:
        found = client.public_key(kid)
        if found is not None:
            cache.set(key, found, timeout=24 * 3600)
    return found


def webhook_orders(connection, event: WebhookSeen) -> list[OrderSeen]:
    """The order a notification is about, read back from eBay (the notification only names it)."""
    connection = ebay_connection(connection)
    if event.topic == webhooks.ACCOUNT_DELETION:
        buyer_data_erase(connection, event.payload)
        return []
    order_id = webhooks.order_id(event.payload)
    if not order_id:
        return []
    fresh = client_for(connection).get_order(order_id)
    if fresh is None:
        logger.warning("eBay notification for order %s, which eBay does not have for this seller: ignored.", order_id)
        return []
    order_buyers_record(connection, [fresh])
    legacy_listings_note(connection, client_for(connection), [fresh])
    return [mappers.order_seen(fresh)]


def register_webhooks(connection, base_url: str) -> list[str]:
    """The Notification API destination (this connection's webhook URL) and its ORDER_CONFIRMATION
    subscription, created or brought back to ENABLED; idempotent. eBay challenges the endpoint when
    the destination is created, so the endpoint URL is stored first (the challenge hashes it)."""
    connection = ebay_connection(connection)
    token = connection.verification_token
    if not 32 <= len(token) <= 80:
        raise PermanentChannelError(
            "Set the connection's verification token (32 to 80 characters) first: eBay's endpoint challenge uses it."
        )
    endpoint = base_url.rstrip("/") + connection.webhook_path
    if connection.endpoint_url != endpoint:
        EbayConnection.objects.filter(pk=connection.pk).update(endpoint_url=endpoint)
        connection.endpoint_url = endpoint
    client = client_for(connection)
    lines = []
    wanted = {
        "name": f"Back office connection {connection.pk}"[:50],
        "status": "ENABLED",
        "deliveryConfig": {"endpoint": endpoint, "verificationToken": token},
    }
    mine = [d for d in client.destinations() if (d.get("deliveryConfig") or {}).get("endpoint") == endpoint]
    if mine:
        destination_id = str(mine[0].get("destinationId") or "")
        if (
            mine[0].get("status") != "ENABLED"
            or (mine[0].get("deliveryConfig") or {}).get("verificationToken") != token
        ):
            client.update_destination(destination_id, wanted)
            lines.append(f"Destination {endpoint}: updated and enabled")
        else:
            lines.append(f"Destination {endpoint}: already registered")
    else:
        destination_id = client.create_destination(wanted)
        lines.append(f"Destination {endpoint}: created (eBay's challenge answered)")
    subscriptions = [
        s
        for s in client.subscriptions()
        if s.get("topicId") == ORDER_TOPIC and s.get("destinationId") == destination_id
    ]
    if subscriptions:
        if subscriptions[0].get("status") != "ENABLED":
            client.enable_subscription(str(subscriptions[0]["subscriptionId"]))
            lines.append(f"{ORDER_TOPIC}: subscription enabled again")
        else:
            lines.append(f"{ORDER_TOPIC}: already subscribed")
    else:
        client.create_subscription(
            {
                "topicId": ORDER_TOPIC,
                "status": "ENABLED",
                "destinationId": destination_id,
                "payload": {"format": "JSON", "schemaVersion": "1.0", "deliveryProtocol": "HTTPS"},
            }
        )
        lines.append(f"{ORDER_TOPIC}: subscribed")
    lines.append(
        "Marketplace account deletion is set per app, not by this API: in eBay's developer portal paste "
        f"{endpoint} and the verification token (Alerts & Notifications)."
    )
    return lines


# --- check ---------------------------------------------------------------------------------------


def check(connection) -> ConnectionCheck:
    """Reads only: the token, the location, each policy, the mapped categories; in plain words."""
    connection = ebay_connection(connection)
    steps: list[CheckStep] = []
    try:
        client = client_for(connection)
        client.access_token("user")
    except ChannelError as error:
        return ConnectionCheck((CheckStep("Token", False, error.message),))
    steps.append(CheckStep("Token", True, "the refresh token gives an access token"))

    def step(label: str, probe, ok_text: str, missing_text: str) -> None:
        try:
            found = probe()
        except ChannelError as error:
            steps.append(CheckStep(label, False, error.message))
            return
        steps.append(CheckStep(label, bool(found), ok_text if found else missing_text))

    key = connection.merchant_location_key
    if not key:
        steps.append(CheckStep("Location", False, "set the merchant location key (eBay needs one to publish)"))
    else:
        step(
            "Location",
            lambda: client.get_location(key),
            f"location {key} exists",
            f"eBay has no inventory location {key}: create it on eBay or fix the key",
        )
    for kind, policy_id in (
        ("fulfillment", connection.fulfillment_policy_id),
        ("payment", connection.payment_policy_id),
        ("return", connection.return_policy_id),
    ):
        label = f"{kind.capitalize()} policy"
        if not policy_id:
            steps.append(CheckStep(label, False, f"set the {kind} policy id (Business policies on eBay)"))
            continue
        step(
            label,
            lambda kind=kind, policy_id=policy_id: _policy_on_marketplace(client, kind, policy_id, connection),
            f"{kind} policy {policy_id} exists on {connection.marketplace_id}",
            f"eBay has no {kind} policy {policy_id} for {connection.marketplace_id}: copy its id from Business policies",
        )
    bad = {name: cid for name, cid in (connection.category_ids or {}).items() if not str(cid).isdigit()}
    if bad:
        steps.append(
            CheckStep(
                "Categories",
                False,
                "eBay category ids are numbers: fix " + ", ".join(f"{k}={v}" for k, v in bad.items()),
            )
        )
    elif connection.category_ids:
        steps.append(
            CheckStep(
                "Categories",
                True,
                f"{len(connection.category_ids)} mapped (eBay confirms a leaf category when the offer is published)",
            )
        )
    else:
        steps.append(CheckStep("Categories", False, "map our categories to eBay leaf category ids"))
    return ConnectionCheck(tuple(steps))


def _policy_on_marketplace(client: EbayClient, kind: str, policy_id: str, connection: EbayConnection) -> bool:
    policy = client.get_policy(kind, policy_id)
    return bool(policy) and policy.get("marketplaceId", connection.marketplace_id) == connection.marketplace_id


# --- listing details -----------------------------------------------------------------------------


def _status_text(offer: Mapping) -> str:
    listing_status = (offer.get("listing") or {}).get("listingStatus") or ""
    return f"{offer.get('status') or ''}{' / ' + listing_status if listing_status else ''}"[:30]


def _remember(
    connection: EbayConnection,
    sku: str,
    *,
    offer_id: str,
    listing_id: str = "",
    status: str = "",
    warnings: list | None = None,
    seen: Mapping | None = None,
) -> None:
    if not sku:
        return
    fields = {"offer_id": offer_id, "status": status, "last_error": "", "last_seen_at": timezone.now()}
    if listing_id:
        fields["listing_id"] = listing_id
    if warnings is not None:
        fields["warnings"] = list(warnings)
    if seen is not None:
        fields["last_seen"] = dict(seen)
    EbayListingDetail.objects.bulk_create(
        [EbayListingDetail(account_id=connection.account_id, connection=connection, sku=sku, **fields)],
        update_conflicts=True,
        unique_fields=["connection", "sku"],
        update_fields=list(fields),
    )


def _remember_error(connection: EbayConnection, sku: str, error: ChannelError) -> None:
    if not sku:
        return
    updated = EbayListingDetail.objects.filter(connection=connection, sku=sku).update(
        last_error=error.message[:2000], last_seen_at=timezone.now()
    )
    if not updated:
        EbayListingDetail.objects.get_or_create(
            connection=connection,
            sku=sku,
            defaults={"account_id": connection.account_id, "last_error": error.message[:2000]},
        )
