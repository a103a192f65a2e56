"""eBay operations outside the engine's converge/pull loop: buyer data erasure, legacy listing migration."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.utils import timezone

from inventory.channels import ChannelError
from inventory.services.orders import orders_buyer_redact

from .models import EbayConnection, EbayLegacyListing, EbayOrderBuyer

logger = logging.getLogger(__name__)

ERASED = "(deleted eBay user)"


def order_buyers_record(connection: EbayConnection, orders: Iterable[Mapping]) -> None:
    """Remember each order's eBay username (for a later account deletion notice)."""
    rows = [
        EbayOrderBuyer(
            account_id=connection.account_id,
            connection=connection,
            order_id=str(order.get("orderId")),
            username=str((order.get("buyer") or {}).get("username"))[:100],
        )
        for order in orders
        if order.get("orderId") and (order.get("buyer") or {}).get("username")
    ]
    if rows:
        EbayOrderBuyer.objects.bulk_create(rows, ignore_conflicts=True)


def buyer_data_erase(connection: EbayConnection, notification: Mapping) -> int:
    """A marketplace account deletion: blank the buyer's name, email and address on their orders.

    eBay requires it of every app that keeps eBay user data. The orders themselves (amounts,
    items, dates) stay for the books. Returns how many orders were anonymised.
    """
    data = (notification.get("notification") or {}).get("data") or {}
    username = str(data.get("username") or "")
    if not username:
        return 0
    with transaction.atomic():
        order_ids = list(
            EbayOrderBuyer.objects.filter(connection=connection, username=username).values_list("order_id", flat=True)
        )
        erased = orders_buyer_redact(connection_id=connection.pk, external_ids=order_ids, name_placeholder=ERASED)
        EbayOrderBuyer.objects.filter(connection=connection, username=username).delete()
    logger.info("eBay account deletion: %d order(s) of one buyer anonymised on %s", erased, connection)
    return erased


def legacy_listings_migrate(connection: EbayConnection, listing_ids: list[str]) -> list[str]:
    """bulkMigrateListing for listings made on eBay's site, 5 at a time: one plain line per listing.

    One way: a migrated listing can no longer be revised through the Trading API or the site's
    old tools. Staff run it from the admin, on purpose.
    """
    from .sync import client_for, listing_scan_due_now

    client = client_for(connection)
    lines: list[str] = []
    for start in range(0, len(listing_ids), 5):
        batch = listing_ids[start : start + 5]
        try:
            answers = client.bulk_migrate_listing(batch)
        except ChannelError as error:
            lines.extend(f"{listing_id}: {error.message}" for listing_id in batch)
            continue
        for answer in answers:
            listing_id = str(answer.get("listingId") or "?")
            status = int(answer.get("statusCode") or 0)
            legacy = EbayLegacyListing.objects.filter(connection=connection, listing_id=listing_id)
            if 200 <= status < 300:
                skus = ", ".join(str(i.get("sku")) for i in answer.get("inventoryItems") or [])
                lines.append(f"{listing_id}: migrated (SKU {skus or '?'}); the next pull imports it")
                legacy.update(migrated_at=timezone.now(), last_error="")
            else:
                messages = "; ".join(str(e.get("message") or e.get("errorId")) for e in answer.get("errors") or [])
                lines.append(f"{listing_id}: not migrated: {messages or f'HTTP {status}'}")
                legacy.update(last_error=messages or f"HTTP {status}")
    if any(": migrated" in line for line in lines):
        listing_scan_due_now(connection)  # the next pull reads every listing and imports the migrated ones
    return lines
