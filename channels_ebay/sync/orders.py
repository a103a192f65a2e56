"""Pull: getOrders by last-modified watermark, the listing scan, and website listings seen through their orders."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from django.core.cache import cache
from django.utils import timezone

from inventory.channels import (
    OrderSeen,
    PullResult,
    retry_transient,
)

from .. import mappers
from ..client import EbayClient
from ..models import EbayConnection, EbayLegacyListing, EbayListingDetail
from ..services import order_buyers_record
from .base import client_for, ebay_connection
from .listings import read_all_listings

logger = logging.getLogger(__name__)

ORDER_OVERLAP = timedelta(minutes=2)
FIRST_PULL_LOOKBACK = timedelta(days=1)


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
