"""Shopify: bulk publish against the cost bucket, and sale-to-ended-everywhere across Shopify + Reverb.

Run from the project root:

    .venv/bin/python bench/shopify.py bulk --items 1000 --bucket 1000 --restore 1000 --workers 4
    .venv/bin/python bench/shopify.py bulk --items 500 --bucket 50 --restore 10 --virtual
    .venv/bin/python bench/shopify.py latency --sales 30

bulk: `--items` products published with the real sync.publish (lookup by SKU, productSet) by
`--workers` threads against the loopback store, whose bucket holds `--bucket` points and
refills `--restore` a second. Printed: calls by document, THROTTLED answers, points spent
(Shopify's actual cost), wall seconds, and the minimum the bucket allows,
(points spent - bucket) / restore rate. `--virtual` runs the bucket on a virtual clock (one
worker): the client's waits advance it instead of sleeping, so a run that would take 20
minutes on a 10-points-a-second bucket takes seconds, with the same calls, waits and points.

latency: the stack of bench/sync_latency.py (PostgreSQL, gunicorn answering the webhooks, a
Celery worker process) with one loopback Shopify store and one loopback Reverb shop; items are
listed on both, then sold one at a time, alternately on Shopify (signed orders/create +
orders/paid) and on Reverb. Latency: from just before the sale to the other listing's
`ended_at` (its end confirmed by a read-back).

The database is DATABASE_URL (default `bench_shopify`, emptied at the start). Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_shopify")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_stack


class VirtualClock:
    """Monotonic time plus every wait the client asked for (which it then does not sleep)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.offset += seconds


def shopify_connection(account, sandbox, name: str = "Website", priority: int = 10):
    from channels_shopify.models import ShopifyConnection
    from channels_shopify.sandbox import DEFAULT_SECRET, DEFAULT_TOKEN, LOCATION_ID

    return ShopifyConnection.objects.create(
        account=account,
        name=name,
        priority=priority,
        shop_domain=sandbox.store.shop_domain,
        access_token=DEFAULT_TOKEN,
        webhook_secret=DEFAULT_SECRET,
        location_id=LOCATION_ID,
        api_url=sandbox.endpoint,
        timeout_seconds=10,
    )


def bulk(args) -> None:
    sync_stack.setup()
    from django.db import connections

    from channels_shopify import client as client_module
    from channels_shopify import sync
    from channels_shopify.sandbox import ShopifySandbox
    from inventory.channels import ListingPayload

    if args.virtual and args.workers != 1:
        raise SystemExit("--virtual runs one worker (concurrent waits would each advance the shared clock)")
    clock = VirtualClock() if args.virtual else None
    print(sync_stack.machine())
    account = sync_stack.shop("bench-shopify")
    sandbox = ShopifySandbox(
        bucket_size=args.bucket, restore_rate=args.restore, bucket_clock=clock or time.monotonic
    ).start()
    connection = shopify_connection(account, sandbox)
    if clock is not None:  # the connection's clients wait on the virtual clock, and its bucket reads it
        real_client = sync.ShopifyClient
        sync.ShopifyClient = lambda *a, **k: real_client(*a, sleep=clock.sleep, **k)
        client_module._buckets[f"{connection.shop_domain}|{connection.endpoint}"] = client_module.CostBucket(
            clock=clock
        )
    base = ListingPayload(
        sku="",
        title="",
        description="A bench guitar.",
        price=Decimal("900.00"),
        currency="USD",
        quantity=1,
        brand="Fender",
        category="Electric Guitars",
        photos=("https://cdn.example.com/bench.jpg",),
    )
    skus = [f"BULK-{n:05d}" for n in range(args.items)]
    failures: list[str] = []

    def work(chunk: list[str]) -> None:
        try:
            for sku in chunk:
                try:
                    sync.publish(connection, replace(base, sku=sku, title=f"Bench guitar {sku}"), None)
                except Exception as error:  # what staff would see
                    failures.append(f"{sku}: {error}")
        finally:
            connections.close_all()

    started = time.monotonic()
    virtual_started = clock() if clock else 0.0
    threads = [threading.Thread(target=work, args=(skus[n :: args.workers],)) for n in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    seconds = (clock() - virtual_started) if clock else wall
    sandbox.stop()

    requests = sandbox.requests()
    answered = [r for r in requests if not r.throttled]
    spent = sum(r.actual_cost for r in answered)
    requested = sum(r.requested_cost for r in answered)
    minimum = max(0.0, (spent - args.bucket) / args.restore)
    products = Counter(v["sku"] for p in sandbox.products() for v in p["variants"]["nodes"])
    print(
        f"bulk publish: {args.items} items, {args.workers} worker(s), bucket {args.bucket:g} points, "
        f"restore {args.restore:g}/s{' (virtual clock)' if clock else ''}"
    )
    print(
        f"  calls: {len(requests)} ({', '.join(f'{op} {n}' for op, n in Counter(r.operation for r in requests).items())})"
    )
    print(
        f"  THROTTLED answers: {sum(r.throttled for r in requests)} (retried by the client); reaching staff: {len(failures)}"
    )
    print(f"  points: {spent:.0f} spent (actual), {requested:.0f} requested, {spent / args.items:.1f} per item")
    print(
        f"  seconds: {seconds:.1f}{f' virtual ({wall:.1f} s wall)' if clock else ''}; the bucket allows no less than "
        f"{minimum:.1f} s -> {seconds / minimum if minimum else float('nan'):.2f}x the minimum"
    )
    print(f"  lowest bucket level seen: {sandbox.bucket.lowest:.1f} points")
    doubles = {sku: n for sku, n in products.items() if n != 1}
    ok = not failures and len(products) == args.items and not doubles and sandbox.bucket.lowest >= 0
    print(
        f"checks: {len(products)} products, {len(doubles)} SKUs twice, {len(failures)} failures -> {'ok' if ok else 'FAILED'}"
    )
    for failure in failures[:5]:
        print("  " + failure)


def latency(args) -> None:
    sync_stack.setup()
    from channels_reverb.sandbox import ReverbSandbox
    from channels_shopify.sandbox import ShopifySandbox
    from inventory.models import ChannelListing, Conflict, Order
    from inventory.services import Actor, item_create
    from inventory.services.listings import listings_publish

    print(sync_stack.machine())
    account = sync_stack.shop("bench-shopify")
    shopify = ShopifySandbox().start()
    reverb = ReverbSandbox()
    reverb.start()
    website = shopify_connection(account, shopify)
    reverb_shop = sync_stack.market_connection(account, reverb, "Reverb", 20)
    web = sync_stack.Web(workers=2)
    shopify.webhook_urls.append(web.url + website.webhook_path)
    reverb.register_webhook(web.url + reverb_shop.webhook_path)
    worker = sync_stack.Worker(pool="prefork", concurrency=args.concurrency)
    try:
        actor = Actor(source="command")
        items = [
            item_create(
                account=account,
                actor=actor,
                state="active",
                fields={
                    "sku": f"LAT-{n:04d}",
                    "title": f"Bench guitar {n}",
                    "brand": "Fender",
                    "model": f"Strat {n}",
                    "price": Decimal("1000.00") + n,
                },
            )
            for n in range(args.sales)
        ]
        listings_publish(account=account, item_ids=[i.pk for i in items], actor=actor)
        deadline = time.monotonic() + 300
        while ChannelListing.objects.filter(actual_state="live").count() < 2 * len(items):
            if time.monotonic() > deadline:
                raise SystemExit("listing the bench items took over 5 minutes")
            time.sleep(0.2)
        latencies: dict[str, list[float]] = {"Shopify sale -> Reverb ended": [], "Reverb sale -> Shopify ended": []}
        for n, item in enumerate(items):
            on_shopify = n % 2 == 0
            other = reverb_shop if on_shopify else website
            t0 = time.time()
            if on_shopify:
                shopify.simulate_sale(item.sku)
            else:
                reverb.simulate_sale(item.sku)
            listing = ChannelListing.objects.get(item=item, connection=other)
            deadline = time.monotonic() + 60
            while True:
                listing.refresh_from_db(fields=["ended_at"])
                if listing.ended_at is not None:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{item.sku} was not ended on {other} in 60 s")
                time.sleep(0.005)
            label = "Shopify sale -> Reverb ended" if on_shopify else "Reverb sale -> Shopify ended"
            latencies[label].append((listing.ended_at - datetime.fromtimestamp(t0, UTC)).total_seconds() * 1000)
    finally:
        worker.stop()
        web.stop()
        shopify.stop()
        reverb.stop()
    print(f"{'sale -> ended on the other':<32}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for label, values in latencies.items():
        print(
            f"{label:<32}{len(values):>5}{statistics.median(values):>9.1f}"
            f"{sync_stack.percentile(values, 95):>9.1f}{max(values):>9.1f}"
        )
    print(f"checks: {Order.objects.count()} orders for {args.sales} sales, {Conflict.objects.count()} conflicts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    bulk_parser = commands.add_parser("bulk", help="bulk publish against the cost bucket")
    bulk_parser.add_argument("--items", type=int, default=1000)
    bulk_parser.add_argument("--bucket", type=float, default=1000.0, help="maximumAvailable points")
    bulk_parser.add_argument("--restore", type=float, default=1000.0, help="restoreRate, points a second")
    bulk_parser.add_argument("--workers", type=int, default=4)
    bulk_parser.add_argument("--virtual", action="store_true", help="run the bucket on a virtual clock (1 worker)")
    latency_parser = commands.add_parser("latency", help="sale-to-ended-everywhere across Shopify and Reverb")
    latency_parser.add_argument("--sales", type=int, default=30)
    latency_parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    args = parser.parse_args()
    bulk(args) if args.command == "bulk" else latency(args)


if __name__ == "__main__":
    main()
