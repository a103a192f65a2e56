"""Check and identify a Shopify webhook delivery. No database, no HTTP here.

Shopify signs the raw body: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the
exact bytes, keyed with the app's client secret. The signature is checked before anything
is read or stored, and compared in constant time. Deliveries are at-least-once and
unordered; `X-Shopify-Event-Id` is the same on every delivery of one event, so it is the
dedupe key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from inventory.channels import WebhookRejected, WebhookSeen

ORDER_TOPICS = frozenset({"orders/create", "orders/paid", "orders/cancelled", "orders/updated"})
PRODUCT_TOPICS = frozenset({"products/update", "inventory_levels/update"})
PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
MAX_KEY = 200  # WebhookEvent.dedupe_key


def sign(secret: str, body: bytes) -> str:
    """The X-Shopify-Hmac-Sha256 value of a body (what Shopify sends; the sandbox signs with it too)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def verify(secrets: str | list[str], headers: Mapping[str, str], body: bytes) -> None:
    """Raise WebhookRejected (401) unless the body carries a valid signature under one of `secrets`
    (the current secret, and the previous one for an hour after a rotation)."""
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    candidates = [secret for secret in candidates if secret]
    if not candidates:
        raise WebhookRejected(
            "This Shopify connection has no webhook signing secret: set the app's client secret on it.",
            http_status=401,
        )
    given = _lowered(headers).get("x-shopify-hmac-sha256", "").strip()
    if not given:
        raise WebhookRejected("A Shopify webhook without X-Shopify-Hmac-Sha256: not signed, not stored.")
    try:
        given_digest = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRejected("A Shopify webhook whose signature is not base64: not stored.") from None
    matches = [
        hmac.compare_digest(given_digest, hmac.new(secret.encode(), body, hashlib.sha256).digest())
        for secret in candidates  # every candidate is compared, so the time says nothing of which matched
    ]
    if not any(matches):
        raise WebhookRejected("A Shopify webhook whose signature does not match the body: not stored.")


def identify(headers: Mapping[str, str], body: bytes, *, shop_domain: str = "") -> WebhookSeen:
    """A verified delivery, identified: its topic and a key shared by every delivery of the event."""
    lowered = _lowered(headers)
    sender = lowered.get("x-shopify-shop-domain", "").strip().lower()
    if shop_domain and sender and sender != shop_domain.lower():
        raise WebhookRejected(f"A Shopify webhook from {sender}, not from this connection's store: not stored.")
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("A signed Shopify webhook whose body is not JSON.", http_status=400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("A signed Shopify webhook whose body is not a JSON object.", http_status=400)
    topic = lowered.get("x-shopify-topic", "").strip().lower() or "unknown"
    return WebhookSeen(topic=topic, dedupe_key=dedupe_key(topic, lowered, body), payload=payload)


def dedupe_key(topic: str, lowered_headers: Mapping[str, str], body: bytes) -> str:
    """X-Shopify-Event-Id; else the webhook id (kept across retries); else the body's hash."""
    event_id = lowered_headers.get("x-shopify-event-id", "").strip()
    if event_id:
        key = f"event:{event_id}"
    elif lowered_headers.get("x-shopify-webhook-id", "").strip():
        key = f"webhook:{lowered_headers['x-shopify-webhook-id'].strip()}"
    else:
        key = f"{topic[:60]}:{hashlib.sha256(body).hexdigest()}"
    return key if len(key) <= MAX_KEY else f"event:{hashlib.sha256(key.encode()).hexdigest()}"


def order_id(payload: Mapping[str, Any]) -> str:
    """The order an orders/* delivery is about: its admin_graphql_api_id, else its numeric id."""
    gid = payload.get("admin_graphql_api_id")
    if gid:
        return str(gid)
    value = payload.get("id")
    return f"gid://shopify/Order/{value}" if value not in (None, "") else ""
