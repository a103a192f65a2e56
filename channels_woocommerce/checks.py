"""Setting a shop up and checking it: webhook registration, the connection check, disabled webhooks."""

from __future__ import annotations

import logging

from inventory.channels import ChannelError, CheckStep, ConnectionCheck, retry_transient

from .access import client_for, woo_connection
from .client import WooCommerceClient
from .models import WooCommerceConnection
from .webhooks import TOPICS as WEBHOOK_TOPICS

logger = logging.getLogger(__name__)


def register_webhooks(connection, base_url: str) -> list[str]:
    """Create (or repair) the four subscriptions to base_url + webhook_path with the connection's secret.

    Idempotent: a subscription already there for the topic and URL is updated (secret, active)
    instead of made again. WooCommerce pings the URL when one is created; it must answer 200.
    """
    connection = woo_connection(connection)
    client = client_for(connection)
    delivery_url = base_url.rstrip("/") + connection.webhook_path
    existing = {
        (str(hook.get("topic")), str(hook.get("delivery_url"))): hook for hook in retry_transient(client.webhooks)
    }
    lines = []
    for topic in WEBHOOK_TOPICS:
        hook = existing.get((topic, delivery_url))
        name = f"Back office: {topic} ({connection.name})"[:190]
        if hook is None:
            made = client.create_webhook(
                name=name, topic=topic, delivery_url=delivery_url, secret=connection.webhook_secret
            )
            lines.append(f"{topic}: subscribed (webhook {made.get('id')}) -> {delivery_url}")
        else:
            client.update_webhook(hook["id"], {"status": "active", "secret": connection.webhook_secret, "name": name})
            was = hook.get("status")
            lines.append(
                f"{topic}: already subscribed (webhook {hook['id']}), "
                + ("secret refreshed" if was == "active" else f"re-enabled (it was {was})")
            )
    return lines


def check(connection) -> ConnectionCheck:
    """Does the connection work, step by step in plain words, and what to fix where it does not.

    Reads the namespace index, a product page (the keys), the currency and the webhooks. The one
    write: a webhook of ours that the shop disabled after failed deliveries is re-enabled (and
    said so), since a disabled webhook silently delays every sale until the next pull.
    """
    return check_and_repair(connection)[0]


def check_and_repair(connection) -> tuple[ConnectionCheck, list[str]]:
    """The check, and the topics whose webhook it re-enabled (for the caller to alert staff)."""
    connection = woo_connection(connection)
    revived: list[str] = []
    steps: list[CheckStep] = []
    try:
        client = client_for(connection)
    except ChannelError as error:
        return ConnectionCheck(steps=(CheckStep("Keys", False, error.message),)), revived

    try:
        index = client.index()
        routes = index.get("routes") or {}
        if "/wc/v3/products" in routes and "/wc/v3/orders" in routes:
            steps.append(CheckStep("Shop", True, f"{connection.store_url} answers the WooCommerce REST API (wc/v3)."))
        else:
            steps.append(
                CheckStep(
                    "Shop",
                    False,
                    f"{connection.store_url}/wp-json/wc/v3 answers but lists no products or orders routes: "
                    "is WooCommerce 3.5 or newer active?",
                )
            )
    except ChannelError as error:
        message = _plain(error)
        if error.status == 404 and "permalinks" not in message:
            message += (
                " No WooCommerce REST API answers at this address: check the store URL (the site's home address), "
                "that WooCommerce is active, and that WordPress permalinks are not Plain (Settings > Permalinks)."
            )
        steps.append(CheckStep("Shop", False, message))
        return ConnectionCheck(steps=tuple(steps)), revived

    try:
        client.first_product_page()
        steps.append(CheckStep("Keys", True, f"The key {connection.key_hint} reads products ({client.auth_method})."))
    except ChannelError as error:
        steps.append(CheckStep("Keys", False, _plain(error)))
        return ConnectionCheck(steps=tuple(steps)), revived

    permissions = connection.key_permissions
    if permissions == "read":
        steps.append(
            CheckStep(
                "Permissions",
                False,
                "The key is read-only: products cannot be listed or ended. Edit the key in WooCommerce > Settings > "
                "Advanced > REST API and choose Read/Write.",
            )
        )
    elif permissions in ("write", "read_write"):
        steps.append(CheckStep("Permissions", True, f"The key may {permissions.replace('_', ' and ')}."))
    else:
        steps.append(
            CheckStep(
                "Permissions",
                True,
                "Pasted keys do not say whether they may write; make sure the key is Read/Write "
                "(a read-only key fails the first publish with a plain message).",
            )
        )

    try:
        currency = client.currency()
        if currency and currency != connection.store_currency:
            WooCommerceConnection.objects.filter(pk=connection.pk).update(store_currency=currency)
            connection.store_currency = currency
        default = getattr(connection.account, "default_currency", "") or ""
        if currency and default and currency != default.upper():
            steps.append(
                CheckStep(
                    "Currency",
                    False,
                    f"The shop sells in {currency}, the catalogue prices in {default}: prices are not converted, "
                    "so items priced in another currency are refused. Set the shop's currency in WooCommerce > "
                    "Settings > General, or price these items in " + currency + ".",
                )
            )
        else:
            steps.append(CheckStep("Currency", True, f"The shop sells in {currency or 'an unknown currency'}."))
    except ChannelError as error:
        steps.append(CheckStep("Currency", False, _plain(error)))

    steps.append(_webhook_step(connection, client, revived))
    return ConnectionCheck(steps=tuple(steps)), revived


def _webhook_step(connection: WooCommerceConnection, client: WooCommerceClient, revived_topics: list[str]) -> CheckStep:
    try:
        hooks = [h for h in client.webhooks() if str(h.get("delivery_url", "")).endswith(connection.webhook_path)]
    except ChannelError as error:
        return CheckStep("Webhooks", False, _plain(error) + " (the key's user must be allowed to manage WooCommerce)")
    by_topic = {str(h.get("topic")): h for h in hooks}
    missing = [topic for topic in WEBHOOK_TOPICS if topic not in by_topic]
    revived, failed = [], []
    for topic, hook in by_topic.items():
        if topic in WEBHOOK_TOPICS and hook.get("status") != "active":
            try:
                client.update_webhook(hook["id"], {"status": "active"})
                revived.append(f"{topic} (was {hook.get('status')})")
                revived_topics.append(topic)
            except ChannelError as error:
                failed.append(f"{topic}: {error.message}")
    if revived:
        logger.warning("WooCommerce connection %s: re-enabled webhooks %s", connection.pk, ", ".join(revived))
    if failed or missing:
        text = []
        if missing:
            text.append(f"not subscribed: {', '.join(missing)} (use the admin action Register webhooks)")
        if failed:
            text.append("could not re-enable " + "; ".join(failed))
        if revived:
            text.append("re-enabled " + ", ".join(revived))
        return CheckStep("Webhooks", False, "; ".join(text) + ".")
    if revived:
        return CheckStep(
            "Webhooks",
            True,
            "The shop had disabled " + ", ".join(revived) + " after failed deliveries; re-enabled now. "
            "Sales in between are read by the scheduled pull.",
        )
    return CheckStep("Webhooks", True, f"All {len(WEBHOOK_TOPICS)} subscriptions are active.")


def disabled_webhooks(connection) -> list[str]:
    """Topics of ours the shop has disabled or paused (reads only)."""
    connection = woo_connection(connection)
    return [
        str(h.get("topic"))
        for h in client_for(connection).webhooks()
        if str(h.get("delivery_url", "")).endswith(connection.webhook_path) and h.get("status") != "active"
    ]


def _plain(error: ChannelError) -> str:
    return error.message
