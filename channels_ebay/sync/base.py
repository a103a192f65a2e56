"""The eBay connection row, its client (one per connection and thread), and this app's record of each offer."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping

from django.utils import timezone

from inventory.channels import ChannelError

from ..client import EbayClient
from ..models import EbayConnection, EbayListingDetail

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


# --- listing details -----------------------------------------------------------------------------


def status_text(offer: Mapping) -> str:
    listing_status = (offer.get("listing") or {}).get("listingStatus") or ""
    return f"{offer.get('status') or ''}{' / ' + listing_status if listing_status else ''}"[:30]


def remember_offer(
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


def remember_error(connection: EbayConnection, sku: str, error: ChannelError) -> None:
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
