"""Cost-based throttling with a small bucket (50 points, 10 restored a second), two workers at once.

The bulk figures (500 and 1,000 items) are in bench/shopify.py; this keeps the item count small
enough to run in seconds while the bucket still runs dry many times over.
"""

import threading
import time
from dataclasses import replace
from decimal import Decimal

import pytest
from django.db import connections

from channels_shopify import sync
from channels_shopify.sandbox import ShopifySandbox
from inventory.channels import ListingPayload
from tests.shopify_market import shopify_connection

ITEMS = 6
PAYLOAD = ListingPayload(
    sku="BULK-00", title="Bulk guitar", description="", price=Decimal("500.00"), currency="USD", quantity=1
)


@pytest.mark.django_db(transaction=True)
def test_a_bulk_publish_on_a_small_bucket_never_reaches_staff_as_throttled_and_never_overdraws(account):
    with ShopifySandbox(bucket_size=50, restore_rate=10) as shop:
        connection = shopify_connection(account, shop)
        failures: list[Exception] = []
        results: dict[str, str] = {}

        def worker(skus: list[str]) -> None:
            try:
                for sku in skus:
                    results[sku] = sync.publish(
                        connection, replace(PAYLOAD, sku=sku, title=f"Bulk {sku}"), None
                    ).external_id
            except Exception as error:  # anything reaching the caller is what staff would see
                failures.append(error)
            finally:
                connections.close_all()

        skus = [f"BULK-{n:02d}" for n in range(ITEMS)]
        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(skus[n::2],)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - started

        # Then every item is on Shopify once, and no THROTTLED error reached the callers
        assert failures == []
        assert sorted(results) == skus
        assert sorted(len(shop.products(sku=sku)) for sku in skus) == [1] * ITEMS
        # And the bucket was never overdrawn: no call was let through on points the bucket did not have
        assert shop.bucket.lowest >= 0
        # And the pacing is what kept it so: throttled answers are rare (a first guess of a document's
        # cost), and the run took no less than the bucket allows, nor much more
        answered = [r for r in shop.requests() if not r.throttled]
        throttled = [r for r in shop.requests() if r.throttled]
        assert len(throttled) <= 4, [r.operation for r in throttled]
        spent = sum(r.actual_cost for r in answered)
        minimum = max(0.0, (spent - 50) / 10)
        assert minimum > 5  # the bucket really was the limit here
        print(
            f"{ITEMS} items: {spent:.0f} points, {elapsed:.1f} s (bucket minimum {minimum:.1f} s), {len(throttled)} throttled"
        )
        assert minimum * 0.9 <= elapsed <= minimum * 1.6 + 2, (elapsed, minimum)
