"""Check and identify a WooCommerce webhook delivery. No database, no HTTP here.

WooCommerce signs every delivery: `X-WC-Webhook-Signature` is base64(HMAC-SHA256(raw body,
secret)), the secret being the one given when the webhook was created (the connection's
webhook secret). The signature is computed over the bytes exactly as received: a body
decoded and encoded again (other spacing, other key order, escaped slashes) is a different
body and fails. A bad or missing signature is refused with 401 before anything is stored.

The ping WooCommerce sends when a webhook is created (a form-encoded `webhook_id=<id>`, no
signature) is answered 200 and stores nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from inventory.channels import WebhookRejected, WebhookReply, WebhookSeen

from .mappers import parse_gmt

TOPICS = ("order.created", "order.updated", "product.updated", "product.deleted")
ORDER_TOPICS = frozenset({"order.created", "order.updated"})
PING = re.compile(rb"webhook_id=(\d+)")
MAX_KEY = 200  # WebhookEvent.dedupe_key


def signature(secret: str, body: bytes) -> str:
    """What WooCommerce puts in X-WC-Webhook-Signature for this body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """The creation ping: exactly `webhook_id=<digits>` and no signed topic."""
    lowered = _lowered(headers)
    return PING.fullmatch((body or b"").strip()) is not None and "x-wc-webhook-topic" not in lowered


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Raise WebhookRejected (401) unless the body carries this secret's signature. Constant-time compare."""
    if not secret:
        raise WebhookRejected("This connection has no webhook secret: register the webhooks again.", http_status=401)
    given = _lowered(headers).get("x-wc-webhook-signature", "").strip()
    if not given:
        raise WebhookRejected("A WooCommerce delivery without X-WC-Webhook-Signature.", http_status=401)
    if not hmac.compare_digest(given.encode(), signature(secret, body or b"").encode()):
        raise WebhookRejected(
            "A WooCommerce delivery whose signature does not match this connection's webhook secret.",
            http_status=401,
        )


def dedupe_key(topic: str, headers: Mapping[str, str], payload: Mapping[str, Any], body: bytes) -> str:
    """Same for every redelivery of one change, different for two changes.

    A change of an order or product is its id, modification time and status: WooCommerce gives
    a retried delivery a new X-WC-Webhook-Delivery-ID, so the delivery id alone would let a
    retry in twice. Without a modification time (a deletion arrives as {"id": N}) the delivery
    id is the key, and without that a hash of the exact body.
    """
    resource_id = payload.get("id")
    changed = parse_gmt(payload.get("date_modified_gmt"))
    if resource_id not in (None, "") and changed is not None:
        key = f"{topic}:{resource_id}:{changed:%Y-%m-%dT%H:%M:%S}:{payload.get('status') or ''}"
    else:
        delivery = _lowered(headers).get("x-wc-webhook-delivery-id", "").strip()
        key = f"{topic}:delivery:{delivery}" if delivery else f"{topic}:{hashlib.sha256(body).hexdigest()}"
    return key if len(key) <= MAX_KEY else f"{topic[:60]}:{hashlib.sha256(key.encode()).hexdigest()}"


def identify(secret: str, headers: Mapping[str, str], body: bytes) -> WebhookSeen | WebhookReply:
    """A delivery checked and identified, or the answer to a ping. Raises WebhookRejected."""
    if is_ping(headers, body):
        webhook_id = PING.fullmatch(body.strip()).group(1).decode()
        return WebhookReply(status=200, body={"ping": "ok", "webhook_id": int(webhook_id)})
    verify(secret, headers, body)
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise WebhookRejected("A signed WooCommerce delivery whose body is not JSON.", http_status=400) from error
    if not isinstance(payload, dict):
        raise WebhookRejected("A signed WooCommerce delivery whose body is not a JSON object.", http_status=400)
    lowered = _lowered(headers)
    topic = lowered.get("x-wc-webhook-topic", "").strip().lower()
    if not topic:
        resource, event = lowered.get("x-wc-webhook-resource", ""), lowered.get("x-wc-webhook-event", "")
        topic = f"{resource}.{event}" if resource and event else "unknown"
    return WebhookSeen(topic=topic, dedupe_key=dedupe_key(topic, lowered, payload, body), payload=payload)
