"""Shopify operations staff trigger by hand (admin, commands), and Shopify's mandatory privacy requests.

The privacy topics are the one place this app writes inventory rows: Shopify requires the
app to erase a buyer's data when the store asks (customers/redact, and shop/redact 48 hours
after the app is uninstalled), and the engine has no verb for it yet. Only the buyer and
shipping fields of this connection's orders are blanked, and the stored deliveries about
those orders lose their bodies; the order rows themselves (stock, sales) stay.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from inventory.models import AlertKind, Order, WebhookEvent
from inventory.services.alerts import alert_raise

from .models import ShopifyConnection

logger = logging.getLogger(__name__)

REDACTED_PAYLOAD = {"redacted": True}


def privacy_request(connection: ShopifyConnection, topic: str, payload: Mapping[str, Any]) -> str:
    """Carry out customers/redact, shop/redact, or put a customers/data_request in front of staff."""
    if topic == "customers/redact":
        ids = [str(i) for i in payload.get("orders_to_redact") or []]
        count = buyer_data_redact(connection, ids)
        return f"buyer data of {count} order(s) erased"
    if topic == "shop/redact":
        count = buyer_data_redact(connection, None)
        return f"buyer data of all {count} order(s) of the store erased"
    if topic == "customers/data_request":
        ids = [str(i) for i in payload.get("orders_requested") or []]
        customer = payload.get("customer") if isinstance(payload.get("customer"), Mapping) else {}
        request_id = (
            (payload.get("data_request") or {}).get("id") if isinstance(payload.get("data_request"), Mapping) else ""
        )
        known = list(
            Order.objects.filter(connection=connection, external_id__in=ids).values_list("external_id", flat=True)
        )
        alert_raise(
            account_id=connection.account_id,
            kind=AlertKind.REVIEW,
            dedupe_key=f"shopify-data-request:{connection.pk}:{request_id or ','.join(ids)}",
            title=f"{connection.name}: a customer asked Shopify for their data",
            message=(
                f"Customer {customer.get('email') or customer.get('id') or '?'} asked for the data the shop keeps. "
                f"Orders held here: {', '.join(known) or 'none'}. Send them their order details within 30 days."
            ),
        )
        return f"data request shown to staff ({len(known)} order(s) held)"
    return "not a privacy topic"


def buyer_data_redact(connection: ShopifyConnection, order_ids: list[str] | None) -> int:
    """Blank the buyer and shipping fields of this connection's orders (all of them when order_ids is None)."""
    blank = {name: "" for name in Order.BUYER_AND_SHIPPING_FIELDS}
    with transaction.atomic():
        orders = Order.objects.filter(connection=connection)
        if order_ids is not None:
            orders = orders.filter(external_id__in=order_ids)
        count = orders.update(**blank)
        events = WebhookEvent.objects.filter(connection=connection, topic__startswith="orders/")
        if order_ids is not None:
            wanted = set(order_ids)
            ids = [e.pk for e in events.only("pk", "payload") if str((e.payload or {}).get("id")) in wanted]
            events = WebhookEvent.objects.filter(pk__in=ids)
        events.update(payload=REDACTED_PAYLOAD)
    logger.info("shopify privacy: buyer data of %d order(s) on %s erased", count, connection)
    return count


def connection_check(connection: ShopifyConnection) -> tuple[bool, str]:
    """The connection check in one line for the admin: (works, what staff should know)."""
    from .sync import check

    result = check(connection)
    return result.ok, result.summary


def webhooks_register(connection: ShopifyConnection, base_url: str | None = None) -> list[str]:
    """Register the webhook subscriptions for a connection at this site's address (SITE_URL by default)."""
    from .sync import register_webhooks

    base = base_url or settings.SITE_URL
    if not base:
        raise ValueError("SITE_URL is not set: Shopify needs this site's public https address to deliver webhooks.")
    return register_webhooks(connection, base)
