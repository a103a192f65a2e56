"""Amazon price and quantity sweep: N offers changed by patchListingsItem, then by one JSON listings feed.

Against the loopback SP-API (bench/../channels_amazon/sandbox), which enforces each
operation's token bucket from Amazon's models; the client paces itself with its own shared
buckets (the rate the sandbox reports in x-amzn-RateLimit-Limit). Prints calls, seconds and
the minimum the buckets allow for each way. `--rate-scale` multiplies every rate so a short
run shows the shape (the minimum at Amazon's true rates is printed too). No database: the
client and mappers only; the cache is this process's memory unless REDIS_URL is set.

    .venv/bin/python bench/amazon.py                      # 1,000 offers, rates x20 (about 15 s)
    .venv/bin/python bench/amazon.py --offers 200 --rate-scale 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from channels_amazon import mappers  # noqa: E402
from channels_amazon.client import OPERATION_LIMITS, LwaCredentials, SpApiClient  # noqa: E402
from channels_amazon.sandbox import (  # noqa: E402
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SELLER_ID,
    AmazonSandbox,
)
from inventory.channels import ListingPayload  # noqa: E402

US = "ATVPDKIKX0DER"


def minimum_seconds(operation: str, calls: int, scale: float) -> float:
    rate, burst = OPERATION_LIMITS[operation]
    return max(calls - burst, 0) / (rate * scale)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--rate-scale", type=float, default=20.0)
    args = parser.parse_args()
    n, scale = args.offers, args.rate_scale

    with AmazonSandbox(rate_scale=scale) as sandbox:
        for i in range(n):
            sandbox.add_external_listing(f"B-{i:05d}", asin="B07N4M94X4", price="100.00", quantity=3)
        client = SpApiClient(
            sandbox.base_url,
            DEFAULT_SELLER_ID,
            US,
            LwaCredentials(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, sandbox.token_url),
            max_wait=5.0,
        )
        client.access_token()
        next(client.search_listings(page_size=1))  # learn the applied rate (x-amzn-RateLimit-Limit)
        sandbox.reset_log()

        def change(i: int) -> ListingPayload:
            return ListingPayload(
                sku=f"B-{i:05d}", title="", description="", price=Decimal("90.00") + i % 7, currency="USD", quantity=2
            )

        # 1. One patch per offer (price and quantity)
        started = time.monotonic()
        for i in range(n):
            attributes = mappers.changed_attributes(
                change(i), {"price", "quantity"}, condition="", marketplace_id=US, channel_code="DEFAULT"
            )
            answer = client.patch_listing(f"B-{i:05d}", mappers.patch_body("GUITARS", attributes))
            assert answer["status"] == "ACCEPTED", answer
        patch_seconds = time.monotonic() - started
        patch_calls = len(sandbox.requests())
        throttled = len([r for r in sandbox.requests() if r.status == 429])
        assert all(mappers.listing_quantity(sandbox.listing(f"B-{i:05d}")) == 2 for i in range(n))
        sandbox.reset_log()

        # 2. The same sweep as one JSON listings feed
        started = time.monotonic()
        document = client.create_feed_document()
        messages = []
        for i in range(n):
            payload = change(i)
            payload = ListingPayload(**{**payload.__dict__, "price": payload.price + 1, "quantity": 1})
            attributes = mappers.changed_attributes(
                payload, {"price", "quantity"}, condition="", marketplace_id=US, channel_code="DEFAULT"
            )
            patches = mappers.patch_body("GUITARS", attributes)["patches"]
            messages.append(
                {
                    "messageId": i + 1,
                    "sku": payload.sku,
                    "operationType": "PATCH",
                    "productType": "GUITARS",
                    "patches": patches,
                }
            )
        body = {"header": {"sellerId": DEFAULT_SELLER_ID, "version": "2.0"}, "messages": messages}
        client.upload_feed(document["url"], json.dumps(body).encode())
        feed_id = client.create_feed("JSON_LISTINGS_FEED", document["feedDocumentId"])["feedId"]
        while (feed := client.get_feed(feed_id))["processingStatus"] not in ("DONE", "FATAL"):
            time.sleep(0.5)
        report_doc = client.get_feed_document(feed["resultFeedDocumentId"])
        report = json.loads(
            gzip.decompress(client.download(report_doc["url"]))
            if report_doc.get("compressionAlgorithm")
            else client.download(report_doc["url"])
        )
        feed_seconds = time.monotonic() - started
        feed_calls = len(sandbox.requests())
        assert report["summary"]["messagesAccepted"] == n, report["summary"]
        assert all(mappers.listing_quantity(sandbox.listing(f"B-{i:05d}")) == 1 for i in range(n))
        assert sandbox.violations == [], sandbox.violations[:3]

    print(f"Amazon offer sweep: {n} offers, price and quantity, rates x{scale:g}")
    print(
        f"  by patch: {patch_calls} calls ({throttled} answered 429), {patch_seconds:.1f} s; "
        f"the bucket allows {minimum_seconds('patchListingsItem', n, scale):.1f} s at x{scale:g}, "
        f"{minimum_seconds('patchListingsItem', n, 1):.0f} s at Amazon's 5/s burst 5"
    )
    print(
        f"  by feed:  {feed_calls} SP-API calls + 1 upload + 1 download, {feed_seconds:.1f} s "
        f"(createFeed burst 15, one call; the processing time is Amazon's, minutes in production)"
    )


if __name__ == "__main__":
    main()
