"""Listing under faults: how long until N items are live on two marketplaces when one call in five fails.

Production retry settings (backoff base 2 s, cap 300 s, 8 retries) on the real stack of
bench/sync_stack.py: a Celery worker process over Redis, PostgreSQL, two loopback Reverb
shops answering 8% 500s, 6% 429s (Retry-After 1 s) and 6% timeouts (applied, answered
late). Prints the seconds from "list everywhere" to every listing live (each run, and
p50 / max over runs), what the marketplaces answered, and checks no SKU was listed twice.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sync .venv/bin/python bench/sync_faults.py --items 20 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import sync_stack

FAULTS = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 1.5, "retry_after": 1}


def one_run(account, run: int, items: int, seed: int) -> tuple[float, Counter, dict[str, int]]:
    from channels_reverb.sandbox import ReverbSandbox
    from inventory.models import ChannelListing, ListingState
    from inventory.services import Actor
    from inventory.services.listings import listings_publish
    from tests.factories import make_item

    sandboxes = [ReverbSandbox(seed=seed + n, **FAULTS).__enter__() for n in range(2)]
    connections = [
        sync_stack.market_connection(account, sandbox, f"Run {run} market {n + 1}", n + 1)
        for n, sandbox in enumerate(sandboxes)
    ]
    for connection in connections:
        type(connection).objects.filter(pk=connection.pk).update(timeout_seconds=1.0)
    made = [make_item(account, n=run * 1000 + n, sku=f"F{run}-{n:03d}") for n in range(items)]
    try:
        started = time.monotonic()
        listings_publish(
            account=account,
            item_ids=[item.pk for item in made],
            actor=Actor(source="bench"),
            connection_ids=[c.pk for c in connections],
        )
        listings = ChannelListing.objects.filter(connection__in=connections)
        deadline = started + 300
        while time.monotonic() < deadline:
            if listings.filter(actual_state=ListingState.LIVE).count() == 2 * items:
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        answers = Counter(r.fault or str(r.status) for sandbox in sandboxes for r in sandbox.requests())
        counts = Counter((n, listing["sku"]) for n, sandbox in enumerate(sandboxes) for listing in sandbox.listings())
        duplicates = {f"market {n + 1} {sku}": count for (n, sku), count in counts.items() if count > 1}
        missing = {f"market {n + 1} {item.sku}" for n in range(2) for item in made if (n, item.sku) not in counts}
        duplicates.update(dict.fromkeys(missing, 0))
        if listings.filter(actual_state=ListingState.LIVE).count() != 2 * items:
            print(
                f"  run {run}: NOT all live after {seconds:.0f} s: {listings.exclude(actual_state='live').count()} lag"
            )
        return seconds, answers, duplicates
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes")
    args = parser.parse_args()

    sync_stack.setup()
    print(sync_stack.machine())
    account = sync_stack.shop()
    worker = sync_stack.Worker(
        pool="prefork", concurrency=args.concurrency, SYNC_RETRY_BACKOFF_BASE="2", SYNC_RETRY_BACKOFF_MAX="300"
    )
    print(f"{args.items} items on 2 marketplaces, faults {FAULTS}, production backoff (2 s base, 300 s cap)")
    results = []
    try:
        for run in range(args.runs):
            seconds, answers, duplicates = one_run(account, run, args.items, seed=100 + 10 * run)
            results.append(seconds)
            print(
                f"  run {run}: all {2 * args.items} live in {seconds:5.1f} s; answers: {dict(sorted(answers.items()))}; "
                f"duplicates or missing: {duplicates or 'none'}"
            )
    finally:
        worker.stop()
    print(f"seconds to all live: p50 {statistics.median(results):.1f}, max {max(results):.1f} (aim: under 15 s)")
    print(f"machine after the run: {sync_stack.machine()}")


if __name__ == "__main__":
    main()
