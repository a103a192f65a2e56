"""Publishing many items on Etsy within its per-second budget (default 10 requests/s).

Run it from the project root:

    .venv/bin/python bench/etsy.py                    # 80 items, 4 workers (about 40 s)
    .venv/bin/python bench/etsy.py --items 500        # the issue's 500 (about 4 minutes)

Uses the database of bench/sync_stack.py (DATABASE_URL, default `bench_etsy`, emptied at the
start) and Redis for the shared budget (REDIS_URL, default db 12). A loopback Etsy enforces
--per-second (429 beyond it) and checks every request against the OpenAPI file. `--workers`
threads publish at once through channels_etsy.sync.publish, each with its own client, all
spending one budget through the cache (as the Celery workers of a deployment do). Printed:
calls per item by operation, wall time against the minimum the budget allows (calls / rate),
the 429s met, and the most calls the sandbox saw in any one second. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections import Counter
from decimal import Decimal

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_etsy")

import sync_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=80)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-second", type=int, default=10)
    parser.add_argument("--photos", type=int, default=1)
    args = parser.parse_args()
    sync_stack.setup()

    from django.core.cache import cache
    from django.db import connection as db

    from channels_etsy import sync
    from channels_etsy.sandbox import EtsySandbox
    from inventory.channels import ListingPayload
    from tests.etsy_market import connect, photo_url

    cache.clear()
    account = sync_stack.shop("bench-etsy")
    with EtsySandbox(per_second=args.per_second) as etsy:
        conn = connect(account, etsy, name="Bench Etsy", daily_reserve=0)
        payloads = [
            ListingPayload(
                sku=f"ETSY-BENCH-{n:04d}",
                title=f"{1955 + n % 40} Vintage guitar {n}",
                description="Vintage, all original.",
                price=Decimal("900.00") + n,
                currency="USD",
                quantity=1,
                brand="Fender",
                model=f"Model {n}",
                year=str(1955 + n % 40),
                category="Electric Guitars",
                photos=tuple(photo_url(etsy, f"{n}-{p}.jpg") for p in range(args.photos)),
            )
            for n in range(args.items)
        ]
        queue = list(reversed(payloads))
        lock = threading.Lock()
        errors: list[str] = []
        clients = []

        def worker() -> None:
            client_seen = None
            try:
                while True:
                    with lock:
                        if not queue:
                            return
                        payload = queue.pop()
                    try:
                        sync.publish(conn, payload, None)
                    except Exception as error:  # counted and printed: a benchmark reports, it does not stop
                        errors.append(f"{payload.sku}: {error}")
                    client_seen = sync.client_for(conn)
            finally:
                if client_seen is not None:
                    clients.append(client_seen)
                db.close()

        started = time.monotonic()
        threads = [threading.Thread(target=worker) for _ in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - started

        requests = etsy.requests()
        by_op = Counter(r.operation_id or "(429)" for r in requests)
        answered = [r for r in requests if r.status != 429]
        per_second = Counter(int(t) for t in _stamps(etsy))
        live = sum(1 for raw in etsy.listings() if raw["state"] == "active")
        skus = Counter(raw["skus"][0] for raw in etsy.listings() if raw["skus"])
        print(f"machine: {sync_stack.machine()}")
        print(f"items {args.items}, photos each {args.photos}, workers {args.workers}, budget {args.per_second}/s")
        print(f"listings live {live}, duplicates {sum(1 for c in skus.values() if c > 1)}, errors {len(errors)}")
        for line in errors[:5]:
            print("  error:", line)
        print(f"calls {len(requests)} ({len(answered)} answered, {by_op['(429)']} answered 429)")
        print(f"calls per item {len(answered) / args.items:.2f}:")
        for op, n in sorted(by_op.items(), key=lambda kv: -kv[1]):
            print(f"  {op:28} {n:6}  ({n / args.items:.2f} per item)")
        floor = len(answered) / args.per_second
        print(f"wall {wall:.1f} s; the budget's minimum for these calls {floor:.1f} s ({wall / floor:.2f}x)")
        print(f"most calls in one second seen by Etsy: {max(per_second.values())}")
        print(f"client-side waits for the budget: {sum(c.budget.waited for c in clients):.1f} s over all workers")
        print(f"contract violations: {len(etsy.violations)}; answers outside the spec: {len(etsy.answer_violations)}")


def _stamps(etsy) -> list[float]:
    return list(etsy.request_times)


if __name__ == "__main__":
    main()
