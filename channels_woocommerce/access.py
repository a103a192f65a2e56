"""The WooCommerce connection row and its client, for every module of the app (one client per thread)."""

from __future__ import annotations

import hashlib
import threading

from inventory.channels import ListingPayload, PermanentChannelError, retry_transient

from . import mappers
from .client import WooCommerceClient
from .models import WooCommerceConnection

_clients = threading.local()


def woo_connection(connection) -> WooCommerceConnection:
    """The WooCommerceConnection row for a connection (the engine may hold the base ChannelConnection)."""
    if isinstance(connection, WooCommerceConnection):
        return connection
    return WooCommerceConnection.objects.select_related("account").get(pk=connection.pk)


def client_for(connection) -> WooCommerceClient:
    """A client for this connection, kept per thread so keep-alive saves a TLS handshake per call."""
    connection = woo_connection(connection)
    keys = hashlib.sha256(f"{connection.consumer_key}:{connection.consumer_secret}".encode()).hexdigest()[:16]
    key = (connection.pk, connection.store_url, keys, connection.auth_method, connection.timeout_seconds)
    cached: dict = getattr(_clients, "by_connection", None) or {}
    _clients.by_connection = cached
    client = cached.get(key)
    if client is None:
        for stale in [k for k in cached if k[0] == connection.pk]:
            cached.pop(stale).session.close()
        client = WooCommerceClient(
            connection.store_url,
            connection.consumer_key,
            connection.consumer_secret,
            auth_method=connection.auth_method,
            timeout=connection.timeout_seconds,
        )
        cached[key] = client
    return client


def store_currency(connection: WooCommerceConnection, client: WooCommerceClient) -> str:
    """The shop's currency, read once and kept on the connection (prices are sent in it, not converted)."""
    if not connection.store_currency:
        currency = retry_transient(client.currency)
        if currency:
            WooCommerceConnection.objects.filter(pk=connection.pk).update(store_currency=currency)
            connection.store_currency = currency
    return connection.store_currency


def category_ids(connection: WooCommerceConnection, category: str) -> list[int]:
    if not category:
        return []
    value = (connection.category_ids or {}).get(category)
    if value in (None, "", []):
        return []
    values = value if isinstance(value, list) else [value]
    return [int(v) for v in values if str(v).strip().isdigit()]


def check_payload(connection: WooCommerceConnection, client: WooCommerceClient, payload: ListingPayload) -> None:
    problems = mappers.listing_problems(payload, store_currency(connection, client))
    if problems:
        raise PermanentChannelError("The shop cannot list this item: " + "; ".join(problems) + ".")
