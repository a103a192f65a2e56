"""Identify an SP-API notification (the body of an SQS message): its type and its NotificationId.

Amazon delivers notifications to an SQS queue, not over HTTP, so there is no signature: trust
comes from the queue's policy, and an order is read back from Amazon before anything acts on
it. Each notification is checked against Amazon's JSON Schema for its type
(contracts/amazon/schemas/notifications/); one that does not match is refused, not stored.
No database, no network here.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from django.conf import settings

from inventory.channels import PermanentChannelError, WebhookSeen

SCHEMAS = {
    "ORDER_CHANGE": "OrderChangeNotification.json",
    "LISTINGS_ITEM_STATUS_CHANGE": "ListingsItemStatusChangeNotification.json",
    "LISTINGS_ITEM_STATUS_CHANGED": "ListingsItemStatusChangeNotification.json",
    "LISTINGS_ITEM_ISSUES_CHANGE": "ListingsItemIssuesChangeNotification.json",
    "LISTINGS_ITEM_MFN_QUANTITY_CHANGE": "ListingsItemMfnQuantityChange.json",
    "FEED_PROCESSING_FINISHED": "FeedProcessingFinishedNotification.json",
}
# A payload version with a schema of its own (the subscription asks for 1.0; a newer one may be chosen).
VERSIONED = {("LISTINGS_ITEM_ISSUES_CHANGE", "2023-12-13"): "ListingsItemIssuesChangeNotification_2023-12-13.json"}
SUBSCRIBED = ("ORDER_CHANGE", "LISTINGS_ITEM_STATUS_CHANGE", "LISTINGS_ITEM_ISSUES_CHANGE")


def schema_dir() -> Path:
    return Path(settings.BASE_DIR) / "contracts" / "amazon" / "schemas" / "notifications"


@cache
def _validator(name: str):
    from jsonschema import Draft7Validator

    path = schema_dir() / name
    if not path.exists():
        raise PermanentChannelError(f"Amazon's notification schema {path} is missing from contracts/.")
    schema = json.loads(path.read_text())
    kind = (schema.get("properties") or {}).get("NotificationType") or {}
    if kind.get("enum") == ["LISTINGS_ITEM_STATUS_CHANGED"]:
        # Amazon's schema lists LISTINGS_ITEM_STATUS_CHANGED while its own example, the subscription
        # name and the deliveries say LISTINGS_ITEM_STATUS_CHANGE: accept both, or real ones are refused.
        kind["enum"] = ["LISTINGS_ITEM_STATUS_CHANGE", "LISTINGS_ITEM_STATUS_CHANGED"]
    return Draft7Validator(schema)


def problems(notification: dict) -> list[str]:
    """Where a notification departs from Amazon's schema for its type (empty when it matches)."""
    kind = str(notification.get("NotificationType") or "")
    name = VERSIONED.get((kind, str(notification.get("PayloadVersion") or ""))) or SCHEMAS.get(kind)
    if name is None:
        return [f"unknown NotificationType {kind!r}"]
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in _validator(name).iter_errors(notification)
    ]


def identify(body: bytes | str) -> WebhookSeen:
    try:
        notification = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise PermanentChannelError("An Amazon notification that is not JSON.", status=400) from error
    if not isinstance(notification, dict):
        raise PermanentChannelError("An Amazon notification that is not a JSON object.", status=400)
    found = problems(notification)
    if found:
        raise PermanentChannelError("An Amazon notification that does not match its schema: " + "; ".join(found[:5]))
    notification_id = str(notification["NotificationMetadata"]["NotificationId"])
    return WebhookSeen(
        topic=str(notification["NotificationType"]),
        dedupe_key=f"amazon:{notification_id}"[:200],
        payload=notification,
    )


def order_id(event: WebhookSeen) -> str:
    if event.topic != "ORDER_CHANGE":
        return ""
    change = (event.payload.get("Payload") or {}).get("OrderChangeNotification") or {}
    return str(change.get("AmazonOrderId") or "")
