"""Etsy webhook deliveries, checked the Standard Webhooks way before anything is stored.

Headers `webhook-id`, `webhook-timestamp` and `webhook-signature` ("v1,<base64>", several
separated by spaces while a secret rotates); the signature is HMAC-SHA256, keyed with the
base64-decoded secret (its `whsec_` prefix removed), over "<id>.<timestamp>.<body>". A
delivery older or newer than five minutes is refused (replays). The event identity is the
webhook-id, the same on every redelivery. No database, no HTTP here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from inventory.channels import WebhookRejected, WebhookSeen

TOLERANCE_SECONDS = 300
ORDER_TOPICS = frozenset(
    {"order.paid", "order.canceled", "order.cancelled", "order.shipped", "order.delivered", "order_paid"}
)


def secret_key(secret: str) -> bytes:
    raw = secret.strip()
    if raw.startswith("whsec_"):
        raw = raw[len("whsec_") :]
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode()


def sign(secret: str, webhook_id: str, timestamp: int | str, body: bytes) -> str:
    """The `webhook-signature` header value for a delivery (the sandbox signs with this too)."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> WebhookSeen:
    """The delivery, identified, or WebhookRejected(401) with why (nothing may be stored)."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    webhook_id = lowered.get("webhook-id", "").strip()
    timestamp = lowered.get("webhook-timestamp", "").strip()
    signatures = lowered.get("webhook-signature", "").strip()
    if not secret:
        raise WebhookRejected("No Etsy webhook signing secret is set on this connection: deliveries are refused.")
    if not (webhook_id and timestamp and signatures):
        raise WebhookRejected("An Etsy delivery without webhook-id, webhook-timestamp or webhook-signature.")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise WebhookRejected("An Etsy delivery whose webhook-timestamp is not a number.") from None
    if abs((now if now is not None else time.time()) - sent_at) > TOLERANCE_SECONDS:
        raise WebhookRejected("An Etsy delivery signed more than five minutes from now (a replay?).")
    expected = sign(secret, webhook_id, timestamp, body)
    if not any(
        hmac.compare_digest(expected, candidate) for candidate in signatures.split() if candidate.startswith("v1,")
    ):
        raise WebhookRejected("An Etsy delivery whose signature does not match (wrong secret or a changed body).")
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("A signed Etsy delivery whose body is not JSON.", http_status=400) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("A signed Etsy delivery whose body is not a JSON object.", http_status=400)
    topic = str(payload.get("event_type") or payload.get("type") or "unknown").lower()[:60]
    return WebhookSeen(topic=topic, dedupe_key=f"etsy:{webhook_id[:180]}", payload=payload)


def is_order_topic(topic: str) -> bool:
    return topic in ORDER_TOPICS or topic.startswith("order")


def receipt_ref(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(shop_id, receipt_id) a delivery is about: from `data` when given, else the resource_url's last ids."""
    data = payload.get("data") if isinstance(payload.get("data"), Mapping) else {}
    receipt_id = str(data.get("receipt_id") or payload.get("receipt_id") or "")
    shop_id = str(payload.get("shop_id") or data.get("shop_id") or "")
    url = str(payload.get("resource_url") or "")
    parts = [p for p in url.split("?")[0].split("/") if p]
    if not receipt_id and "receipts" in parts:
        index = parts.index("receipts")
        if index + 1 < len(parts):
            receipt_id = parts[index + 1]
    if not shop_id and "shops" in parts:
        index = parts.index("shops")
        if index + 1 < len(parts):
            shop_id = parts[index + 1]
    return shop_id, receipt_id
