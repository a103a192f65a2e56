"""Publish (item, offer, publish: resumable steps), revise, end, read: eBay's Inventory API side of the contract."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from inventory.channels import (
    ChannelError,
    EndResult,
    ListingNotFound,
    ListingPayload,
    ListingSeen,
    PermanentChannelError,
    PublishResult,
    ReviseOutcome,
    Revision,
    retry_transient,
)

from .. import mappers
from ..client import BULK_LIMIT, EbayClient, EbayRequestError, error_for
from ..models import EbayConnection, EbayListingDetail
from .base import client_for, ebay_connection, remember_error, remember_offer, status_text
from .revisions import budget_refusal, refund_revision, spend_revision, spend_revisions

ITEM_FIELDS = frozenset(
    {"title", "seo_title", "description", "brand", "model", "year", "finish", "category", "condition", "photos"}
)
OFFER_FIELDS = frozenset({"description", "category"})
PRICE_QUANTITY_FIELDS = frozenset({"price", "quantity"})

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


def _write_item(
    client: EbayClient,
    connection: EbayConnection,
    payload: ListingPayload,
    published: bool,
    *,
    with_quantity: bool = True,
) -> bool:
    """GET, merge, PUT the inventory item; nothing sent when eBay already holds exactly this. True if written.

    `with_quantity=False` keeps eBay's quantity (a revise sends it through bulkUpdatePriceQuantity,
    which sets the item's and the offer's together: one revision, not two)."""
    ours = mappers.inventory_item_body(payload, condition_overrides=connection.condition_ids)
    if not with_quantity:
        ours.pop("availability")
    current = client.get_inventory_item(payload.sku)
    comparable = mappers.merge_inventory_item(current, {}) if current else None
    merged = mappers.merge_inventory_item(current, ours)
    if comparable is not None and mappers.same_content(comparable, merged):
        return False
    if published:
        spend_revision(connection, payload.sku)
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
        if not mappers.same_content(update, mappers.offer_update_body(offer, {})):
            if offer.get("status") == "PUBLISHED":
                spend_revision(connection, payload.sku)
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
        if mappers.offer_state(offer) != "live":  # unpublished, or published with its listing ended (sold out)
            answer = retry_transient(client.publish_offer, offer_id)
            warnings = list(answer.get("warnings") or [])
            listing_id = str(answer.get("listingId") or "")
        else:
            listing_id = str((offer.get("listing") or {}).get("listingId") or "")
    except EbayRequestError as error:
        remember_error(connection, payload.sku, error)
        raise
    remember_offer(
        connection, payload.sku, offer_id=offer_id, listing_id=listing_id, status="PUBLISHED", warnings=warnings
    )
    adopted = not created and offer_id != str(external_id or "")
    url = f"https://www.ebay.com/itm/{listing_id}" if listing_id else ""
    return PublishResult(external_id=offer_id, url=url, adopted=adopted)


@dataclass(frozen=True)
class BulkPublishOutcome:
    sku: str
    ok: bool
    external_id: str = ""
    url: str = ""
    message: str = ""


def bulk_publish(connection, payloads: Iterable[ListingPayload]) -> list[BulkPublishOutcome]:
    """Publish many new items with eBay's bulk calls, 25 at a time: 4 calls per 25 items
    (bulkGetInventoryItem for the merge, bulkCreateOrReplaceInventoryItem, bulkCreateOffer,
    bulkPublishOffer) instead of 5 per item. Resumable like `publish`: an offer that exists
    answers bulkCreateOffer with its offerId and is adopted (and published again: for a live
    listing eBay counts that as a revision; its budget is not checked here).
    Each SKU's own outcome is returned and kept on its listing detail. Not used by the engine,
    which converges one listing per task (see bench/README.md); for imports and benchmarks.
    """
    connection = ebay_connection(connection)
    client = client_for(connection)
    outcomes: list[BulkPublishOutcome] = []
    todo = []
    for payload in payloads:
        problems = mappers.listing_problems(payload)
        if problems:
            outcomes.append(BulkPublishOutcome(payload.sku, False, message="; ".join(problems)))
        else:
            todo.append(payload)
    locale = connection.language.replace("-", "_")
    for start in range(0, len(todo), BULK_LIMIT):
        batch = {p.sku: p for p in todo[start : start + BULK_LIMIT]}
        failed: dict[str, str] = {}
        got = retry_transient(client.bulk_get_inventory_items, list(batch))
        current = {r.get("sku"): r.get("inventoryItem") for r in got if r.get("statusCode") == 200}
        writes = []
        for sku, payload in batch.items():
            ours = mappers.inventory_item_body(payload, condition_overrides=connection.condition_ids)
            merged = mappers.merge_inventory_item(current.get(sku), ours)
            if sku not in current or not mappers.same_content(mappers.merge_inventory_item(current[sku], {}), merged):
                writes.append({"sku": sku, "locale": locale, **merged})
        if writes:
            for answer in retry_transient(client.bulk_put_inventory_items, writes):
                if answer.get("statusCode") != 200:
                    failed[str(answer.get("sku"))] = _bulk_error(answer)
        bodies = [
            mappers.offer_body(p, **_listing_settings(connection, p)) for sku, p in batch.items() if sku not in failed
        ]
        offer_ids: dict[str, str] = {}
        for answer in retry_transient(client.bulk_create_offers, bodies) if bodies else []:
            sku = str(answer.get("sku") or "")
            if answer.get("statusCode") == 200 and answer.get("offerId"):
                offer_ids[sku] = str(answer["offerId"])
                continue
            existing = _existing_offer_id(answer)  # created by an earlier try we never heard back from
            if existing:
                offer_ids[sku] = existing
            else:
                failed[sku] = _bulk_error(answer)
        to_publish = list(offer_ids.values())
        listings: dict[str, str] = {}
        if to_publish:
            refused: dict[str, str] = {}
            for answer in retry_transient(client.bulk_publish_offers, to_publish):
                if answer.get("statusCode") == 200:
                    listings[str(answer.get("offerId"))] = str(answer.get("listingId") or "")
                else:
                    refused[str(answer.get("offerId"))] = _bulk_error(answer)
            failed.update({sku: refused[oid] for sku, oid in offer_ids.items() if oid in refused})
        for sku in batch:
            offer_id = offer_ids.get(sku, "")
            if sku in failed or offer_id not in listings:
                message = failed.get(sku) or f"eBay did not publish offer {offer_id or '-'}"
                outcomes.append(BulkPublishOutcome(sku, False, offer_id, message=message))
                remember_error(connection, sku, PermanentChannelError(message))
                continue
            listing_id = listings[offer_id]
            remember_offer(connection, sku, offer_id=offer_id, listing_id=listing_id, status="PUBLISHED")
            outcomes.append(BulkPublishOutcome(sku, True, offer_id, f"https://www.ebay.com/itm/{listing_id}"))
    return outcomes


def _bulk_error(answer: Mapping) -> str:
    return error_for(int(answer.get("statusCode") or 500), {"errors": answer.get("errors") or []}).message


def _existing_offer_id(answer: Mapping) -> str:
    for entry in answer.get("errors") or []:
        for parameter in entry.get("parameters") or []:
            if parameter.get("name") == "offerId" and parameter.get("value"):
                return str(parameter["value"])
    return ""


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
    spent_out = spend_revisions(connection, list(merged))
    for change in merged.values():
        if change.sku in spent_out:
            refusal = budget_refusal(change.sku)
            outcomes.append(PriceQuantityOutcome(change.sku, change.offer_id, False, 0, refusal.message, refusal))
            remember_error(connection, change.sku, refusal)
            continue
        sendable.append(change)
    for start in range(0, len(sendable), BULK_LIMIT):
        batch = sendable[start : start + BULK_LIMIT]
        entries = [
            mappers.price_quantity_entry(c.sku, c.offer_id, price=c.price, currency=c.currency, quantity=c.quantity)
            for c in batch
        ]
        try:
            responses = retry_transient(client.bulk_update_price_quantity, entries)
        except ChannelError:
            for unsent in sendable[start:]:  # eBay applied none of these: the revisions are not spent
                refund_revision(connection, unsent.sku)
            raise
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
                refund_revision(connection, change.sku)  # eBay did not apply it
                outcomes.append(PriceQuantityOutcome(change.sku, change.offer_id, False, status, error.message, error))
                remember_error(connection, change.sku, error)
        EbayListingDetail.objects.filter(connection=connection, sku__in=applied).exclude(last_error="").update(
            last_error=""
        )
    return outcomes


def revise_many(connection, revisions: Sequence[Revision]) -> list[ReviseOutcome]:
    """The engine's batch of price and quantity changes (the contract's revise_many).

    The engine sends only listings it holds as published with only price or quantity changed
    since its last push, so no offer is read first: each revision is one entry of a
    bulkUpdatePriceQuantity call (25 a call), and each SKU's own status becomes its outcome
    (a revision spent, a request error with eBay's message, 25001 to try again).
    """
    changes = [
        PriceQuantityChange(
            r.payload.sku,
            r.external_id,
            r.payload.price if "price" in r.fields else None,
            r.payload.currency,
            r.payload.quantity if "quantity" in r.fields else None,
        )
        for r in revisions
    ]
    by_sku = {outcome.sku: outcome for outcome in bulk_revise_price_quantity(connection, changes)}
    return [ReviseOutcome(r.external_id, by_sku[r.payload.sku].error) for r in revisions]


def revise(connection, external_id: str, payload: ListingPayload, fields: frozenset[str]) -> None:
    """Push the changed fields only: price and quantity by bulkUpdatePriceQuantity, the rest by replace.

    A replace is sent (and a revision spent) only when the merged item differs from what eBay
    holds: a new SEO title whose first 80 characters are unchanged costs a read, no write."""
    if not fields & (ITEM_FIELDS | OFFER_FIELDS | PRICE_QUANTITY_FIELDS):
        return  # e.g. an SEO description or keywords: eBay shows neither, so not even a read
    connection = ebay_connection(connection)
    client = client_for(connection)
    offer = retry_transient(client.get_offer, external_id)
    published = offer.get("status") == "PUBLISHED"
    try:
        if fields & ITEM_FIELDS or (fields & {"quantity"} and not published):
            retry_transient(_write_item, client, connection, payload, published, with_quantity=not published)
        if fields & OFFER_FIELDS or (fields & PRICE_QUANTITY_FIELDS and not published):
            body = mappers.offer_body(payload, **_listing_settings(connection, payload))
            update = mappers.offer_update_body(offer, body)
            if not mappers.same_content(update, mappers.offer_update_body(offer, {})):
                if published:
                    spend_revision(connection, payload.sku)
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
        remember_error(connection, payload.sku, error)
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
    remember_offer(
        connection,
        str(offer.get("sku") or ""),
        offer_id=external_id,
        listing_id=str((offer.get("listing") or {}).get("listingId") or ""),
        status=status_text(offer),
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
