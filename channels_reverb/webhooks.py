"""Identify a Reverb webhook delivery: its topic and a key that is the same for every redelivery.

Reverb signs nothing (an HMAC is only promised), so the secret is the URL token, checked
by the engine before this runs. The body is the object's JSON (an order, a listing); the
topic may come in a header, else it is read from the shape of the body. No database, no
HTTP here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from inventory.channels import PermanentChannelError, WebhookSeen

from .mappers import listing_state_slug, parse_time, unwrap

TOPIC_HEADERS = ("x-reverb-topic", "x-reverb-event", "x-webhook-topic")
ORDER_TOPICS = frozenset({"orders/create", "orders/update", "orders/paid"})
LISTING_TOPICS = frozenset({"listings/update", "listings/publish", "listings/bumps-ran-out"})
MAX_KEY = 200  # WebhookEvent.dedupe_key


def topic_from_headers(headers: Mapping[str, str]) -> str:
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    for name in TOPIC_HEADERS:
        value = lowered.get(name, "").strip().lower()
        if value:
            return value
    return ""


def topic_from_shape(payload: Mapping[str, Any]) -> str:
    """The topic of a body that came without one: an order has an order_number, a listing a make/model."""
    order = unwrap(payload, "order")
    if order.get("order_number") not in (None, ""):
        created, updated = order.get("created_at"), order.get("updated_at")
        return "orders/create" if created and created == updated else "orders/update"
    listing = unwrap(payload, "listing")
    if listing.get("id") not in (None, "") and ("make" in listing or "state" in listing or "sku" in listing):
        return "listings/update"
    return "unknown"


def is_order_topic(topic: str) -> bool:
    return topic.startswith("orders/")


def dedupe_key(topic: str, payload: Mapping[str, Any], body: bytes) -> str:
    """Same for redeliveries of one event, different for distinct updates of the same object.

    An order's event is its number, update time and status; a listing's its id, state,
    inventory and update time. Anything else falls back to a hash of the exact body.
    """
    if is_order_topic(topic):
        order = unwrap(payload, "order")
        number = order.get("order_number")
        if number not in (None, ""):
            changed = _time_key(order.get("updated_at")) or _time_key(order.get("created_at"))
            key = f"{topic}:{number}:{changed}:{order.get('status') or ''}"
            return key if len(key) <= MAX_KEY else f"{topic}:{_digest(key.encode())}"
    if topic.startswith("listings/"):
        listing = unwrap(payload, "listing")
        listing_id = listing.get("id")
        if listing_id not in (None, ""):
            changed = _time_key(listing.get("updated_at")) or _time_key(listing.get("published_at"))
            key = f"{topic}:{listing_id}:{listing_state_slug(listing)}:{listing.get('inventory', '')}:{changed}"
            if not changed:  # nothing says when it changed: let the content tell updates apart
                key += f":{_digest(body)[:16]}"
            return key if len(key) <= MAX_KEY else f"{topic}:{_digest(key.encode())}"
    return f"{topic[:60]}:{_digest(body)}"


def identify(headers: Mapping[str, str], body: bytes) -> WebhookSeen:
    """A delivery, identified. Raises PermanentChannelError for a body that is not a JSON object."""
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise PermanentChannelError("A Reverb webhook whose body is not JSON.", status=400) from error
    if not isinstance(payload, dict):
        raise PermanentChannelError("A Reverb webhook whose body is not a JSON object.", status=400)
    topic = topic_from_headers(headers) or topic_from_shape(payload)
    return WebhookSeen(topic=topic, dedupe_key=dedupe_key(topic, payload, body), payload=payload)


def _time_key(value: Any) -> str:
    """A time written the same way whatever offset Reverb used, so one instant is one key."""
    parsed = parse_time(value)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if parsed else ""


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
