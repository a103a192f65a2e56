"""Notifications: the endpoint challenge, signed deliveries, the orders they name, and registration by API."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from django.core.cache import cache

from inventory.channels import (
    OrderSeen,
    PermanentChannelError,
    WebhookReply,
    WebhookSeen,
)

from .. import mappers, webhooks
from ..client import EbayClient
from ..models import EbayConnection
from ..services import buyer_data_erase, order_buyers_record
from .base import client_for, ebay_connection
from .orders import legacy_listings_note

logger = logging.getLogger(__name__)

ORDER_TOPIC = "ORDER_CONFIRMATION"


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
