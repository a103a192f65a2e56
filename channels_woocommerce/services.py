"""WooCommerce operations staff trigger by hand (admin, commands); the sync engine uses sync.py.

The grant flow (WooCommerce's /wc-auth/v1/authorize): staff open the shop's own page to approve
a key for this back office; the shop POSTs the key as JSON to our callback, which stores it on
the connection that started the flow, checked by a one-time nonce carried in `user_id`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.db import transaction

from inventory.channels import ChannelError, ConnectionCheck
from inventory.models import AlertKind
from inventory.services.alerts import alert_raise

from . import sync
from .models import WooCommerceConnection

APP_NAME = "Gear back office"
GRANT_SCOPE = "read_write"
GRANT_FIELDS = ("key_id", "user_id", "consumer_key", "consumer_secret", "key_permissions")


class GrantRefused(Exception):
    """A callback that does not belong to a connection waiting for keys: nothing is stored."""


def connection_check(connection: WooCommerceConnection) -> ConnectionCheck:
    """The channel's check (reads, and re-enables a webhook the shop disabled, with an alert for staff:
    sales made while it was off reached us only through the scheduled pull)."""
    result, revived = sync.check_and_repair(connection)
    if revived:
        alert_raise(
            account_id=connection.account_id,
            kind=AlertKind.SYNC_ERROR,
            dedupe_key=f"woocommerce-webhooks-disabled:{connection.pk}",
            title=f"{connection.name} had stopped sending {', '.join(revived)}: re-enabled",
            message=(
                "WooCommerce disables a webhook after more than 5 failed deliveries (this site down, a firewall, "
                "a changed webhook secret). It is active again; orders in between were read by the scheduled pull. "
                "If it happens again, check that the shop can reach this site's webhook URL."
            ),
        )
    return result


def webhooks_register(connection: WooCommerceConnection, base_url: str) -> list[str]:
    """Subscribe the shop's order and product webhooks to this site; one line per topic."""
    try:
        return sync.register_webhooks(connection, base_url)
    except ChannelError as error:
        return [f"Not registered: {error.message}"]


def grant_start(connection: WooCommerceConnection, *, return_url: str, callback_url: str) -> str:
    """The shop's grant page for this connection (open it in the browser). A new nonce each time."""
    nonce = secrets.token_urlsafe(24)
    WooCommerceConnection.objects.filter(pk=connection.pk).update(grant_nonce=nonce)
    connection.grant_nonce = nonce
    query = {
        "app_name": APP_NAME,
        "scope": GRANT_SCOPE,
        "user_id": f"{connection.pk}:{nonce}",
        "return_url": return_url,
        "callback_url": callback_url,
    }
    return f"{connection.store_url.rstrip('/')}/wc-auth/v1/authorize?{urlencode(query)}"


def grant_receive(connection_id: int, payload: Mapping[str, Any]) -> WooCommerceConnection:
    """Store the keys the shop posted, if they are for this connection's pending grant. Raises GrantRefused."""
    missing = [name for name in GRANT_FIELDS if name not in payload]
    if missing:
        raise GrantRefused(f"The callback lacks {', '.join(missing)}.")
    with transaction.atomic():
        connection = WooCommerceConnection.objects.select_for_update().filter(pk=connection_id).first()
        if connection is None or not connection.grant_nonce:
            raise GrantRefused("No connection is waiting for keys here.")
        expected = f"{connection.pk}:{connection.grant_nonce}"
        if not hmac.compare_digest(str(payload["user_id"]).encode(), expected.encode()):
            raise GrantRefused("These keys were granted for another request.")
        key, secret = str(payload["consumer_key"]), str(payload["consumer_secret"])
        if not key.startswith("ck_") or not secret.startswith("cs_"):
            raise GrantRefused("The callback's keys are not WooCommerce keys (ck_..., cs_...).")
        connection.consumer_key = key
        connection.consumer_secret = secret
        connection.key_permissions = str(payload["key_permissions"])[:20]
        connection.grant_nonce = ""
        connection.save(update_fields=["consumer_key", "consumer_secret", "key_permissions", "grant_nonce"])
    return connection
