"""Bulk offer changes through the JSON listings feed (JSON_LISTINGS_FEED, schemas/feeds/).

For a price or quantity sweep over many offers: one createFeedDocument, one upload to the
presigned URL (valid five minutes), one createFeed, a few getFeed polls and the processing
report, instead of one patchListingsItem per SKU. Each SKU's result (accepted, or Amazon's
issues) is recorded on its AmazonListingDetail. The engine converges listings one by one;
this is for staff and bench/amazon.py, not a contract function.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone

from inventory.channels import ListingPayload, PermanentChannelError, TransientChannelError, retry_transient

from . import mappers
from .models import AmazonListingDetail
from .sync import amazon_connection, client_for, item_attributes

FEED_TYPE = "JSON_LISTINGS_FEED"
CONTENT_TYPE = "application/json; charset=UTF-8"
MAX_MESSAGES = 25_000  # the feed schema's limit per document


@dataclass
class FeedOutcome:
    feed_id: str
    status: str
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    polls: int = 0


def feed_document(seller_id: str, messages: list[dict]) -> dict:
    return {"header": {"sellerId": seller_id, "version": "2.0", "issueLocale": "en_US"}, "messages": messages}


def offer_messages(connection, changes: Iterable[tuple[ListingPayload, frozenset[str]]]) -> list[dict]:
    """One PATCH message per SKU with only the attributes its changed fields touch."""
    messages = []
    for payload, fields in changes:
        attributes = mappers.changed_attributes(
            payload,
            fields,
            condition=mappers.condition_type(payload.condition, connection.condition_types),
            marketplace_id=connection.marketplace_id,
            channel_code=connection.fulfillment_channel_code,
        )
        if not attributes:
            continue
        product_type = item_attributes(connection, payload.sku)[1]
        messages.append(
            {
                "messageId": len(messages) + 1,
                "sku": payload.sku,
                "operationType": "PATCH",
                "productType": product_type,
                "patches": mappers.patch_body(product_type, attributes)["patches"],
            }
        )
    return messages


def offers_feed(
    connection,
    changes: Iterable[tuple[ListingPayload, frozenset[str]]],
    *,
    poll_every: float = 1.0,
    timeout: float = 600.0,
) -> FeedOutcome:
    """Send the changes as one listings feed and record each SKU's result from the processing report."""
    connection = amazon_connection(connection)
    messages = offer_messages(connection, changes)
    if not messages:
        return FeedOutcome(feed_id="", status="NOTHING_TO_SEND")
    if len(messages) > MAX_MESSAGES:
        raise PermanentChannelError(f"A listings feed takes at most {MAX_MESSAGES} messages, not {len(messages)}.")
    client = client_for(connection)
    document = retry_transient(client.create_feed_document, CONTENT_TYPE)
    content = json.dumps(feed_document(connection.seller_id, messages)).encode()
    retry_transient(client.upload_feed, document["url"], content, CONTENT_TYPE)
    feed_id = str(retry_transient(client.create_feed, FEED_TYPE, document["feedDocumentId"])["feedId"])
    outcome = FeedOutcome(feed_id=feed_id, status="IN_QUEUE")
    deadline = time.monotonic() + timeout
    while True:
        feed = retry_transient(client.get_feed, feed_id)
        outcome.polls += 1
        outcome.status = feed["processingStatus"]
        if outcome.status in ("DONE", "FATAL", "CANCELLED"):
            break
        if time.monotonic() > deadline:
            raise TransientChannelError(f"Amazon is still processing feed {feed_id}; read its report later.")
        time.sleep(poll_every)
    if outcome.status != "DONE" or not feed.get("resultFeedDocumentId"):
        raise PermanentChannelError(f"Amazon did not process feed {feed_id}: {outcome.status}.")
    report_doc = retry_transient(client.get_feed_document, feed["resultFeedDocumentId"])
    report = json.loads(client.download(report_doc["url"], report_doc.get("compressionAlgorithm")))
    problems: dict[str, list[dict]] = {}
    for issue in report.get("issues") or []:
        if issue.get("sku") and issue.get("severity") == "ERROR":
            problems.setdefault(issue["sku"], []).append(issue)
    now = timezone.now()
    for message in messages:
        sku = message["sku"]
        if sku in problems:
            outcome.refused[sku] = "; ".join(
                mappers.issue_line({**i, "attributeNames": [i["attributeName"]] if i.get("attributeName") else []})
                for i in problems[sku]
            )
        else:
            outcome.accepted.append(sku)
    rows = [
        AmazonListingDetail(
            account_id=connection.account_id,
            connection=connection,
            sku=m["sku"],
            submission_status="INVALID" if m["sku"] in problems else "ACCEPTED",
            submission_id=f"feed:{feed_id}",
            issues=problems.get(m["sku"], []),
            last_seen_at=now,
        )
        for m in messages
    ]
    AmazonListingDetail.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["connection", "sku"],
        update_fields=["submission_status", "submission_id", "issues", "last_seen_at"],
    )
    return outcome
