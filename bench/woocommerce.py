"""Publishing to a WooCommerce shop: 1,000 items through /products/batch vs one by one (requests, seconds).

Run it from the project root:

    .venv/bin/python bench/woocommerce.py
    .venv/bin/python bench/woocommerce.py --items 300

Uses PostgreSQL (default database `bench_woocommerce`, emptied at the start) for the connection
and the product detail rows the sync keeps, and a fresh loopback shop (channels_woocommerce.sandbox,
plain http, so every request is OAuth 1.0a signed and checked against the route index) for each
way of publishing:
- one by one: `sync.publish` per item, as the engine's worker does (SKU lookup, create, read-back);
- by batch: `sync.publish_many` (one read of the shop's products, creates 100 a request, read-back
  by `include` 100 a page).
Printed: requests by method, wall and CPU seconds, and products on the shop afterwards. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_woocommerce")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/4")

import sync_stack


def payloads(count: int):
    from inventory.channels import ListingPayload

    return [
        ListingPayload(
            sku=f"BENCH-{n:05d}",
            title=f"Bench guitar {n}",
            description="A guitar made for measuring.\n\nComes with a case.",
            price=Decimal("500.00") + n % 997,
            currency="USD",
            quantity=1,
            brand=("Fender", "Gibson", "Gretsch", "Martin")[n % 4],
            model=f"Model {n}",
            condition="excellent",
            photos=(f"https://img.example.com/bench/{n}.jpg",),
        )
        for n in range(count)
    ]


def run(label: str, account, count: int, publish) -> dict:
    from channels_woocommerce.models import WooCommerceConnection
    from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox

    with WooSandbox() as shop:
        connection = WooCommerceConnection.objects.create(
            account=account,
            name=label,
            store_url=shop.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
            store_currency="USD",
        )
        items = payloads(count)
        wall, cpu = time.perf_counter(), time.process_time()
        results = publish(connection, items)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        methods = Counter(request.method for request in shop.requests())
        failed = sum(1 for r in results if not hasattr(r, "external_id"))
        assert not shop.refused_by_index(), shop.refused_by_index()[:3]
        return {
            "label": label,
            "requests": sum(methods.values()),
            "methods": dict(sorted(methods.items())),
            "wall": wall,
            "cpu": cpu,
            "products": len(shop.products()),
            "failed": failed,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    sync_stack.setup()
    from channels_woocommerce import sync

    account = sync_stack.shop("bench-woocommerce")
    print(sync_stack.machine())
    print(f"{args.items} items, loopback WooCommerce shop over plain http (OAuth 1.0a), route index checked\n")
    rows = [
        run("one by one", account, args.items, lambda c, items: [sync.publish(c, p, None) for p in items]),
        run("by batch", account, args.items, lambda c, items: sync.publish_many(c, [(p, None) for p in items])),
    ]
    print(f"{'way':<12} {'requests':>9} {'by method':<28} {'wall s':>8} {'CPU s':>7} {'products':>9} {'failed':>7}")
    for row in rows:
        methods = ", ".join(f"{m} {n}" for m, n in row["methods"].items())
        print(
            f"{row['label']:<12} {row['requests']:>9} {methods:<28} {row['wall']:>8.2f} {row['cpu']:>7.2f} "
            f"{row['products']:>9} {row['failed']:>7}"
        )
    one, batch = rows
    print(
        f"\nbatch: {one['requests'] / batch['requests']:.0f}x fewer requests, {one['wall'] / batch['wall']:.1f}x faster"
    )


if __name__ == "__main__":
    main()
