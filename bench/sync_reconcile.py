"""The nightly reconcile of one connection with 10,000 live, unchanged listings: calls, time, SyncRun.

Run it from the project root:

    .venv/bin/python bench/sync_reconcile.py
    .venv/bin/python bench/sync_reconcile.py --listings 2000 --drift 20

Uses the database and Redis of bench/sync_stack.py (default database `bench_sync`, emptied
at the start; no worker runs: anything the reconcile enqueues is counted, then purged). The
listings are built directly in a consistent state: the loopback marketplace holds each one
as the engine would have published it (same body, live), and each ChannelListing row is live
with that marketplace id and the content it was pushed with. Then
inventory.services.sync.listings_reconcile runs once on unchanged listings (it must only
read pages and write nothing), and once more after --drift listings were changed on the
marketplace behind the shop's back (price changed, or ended there), which it must find.
Printed: the marketplace calls by kind, wall and CPU time, where the time went, the SQL
statements, and the SyncRun's counts. It is not a test.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import contextmanager
from decimal import Decimal

import sync_stack


def build(account, connection, sandbox, count: int) -> None:
    """Items, their listings on the marketplace, and ChannelListing rows that agree with them."""
    from channels_reverb import mappers
    from inventory.models import ChannelListing, Item, MovementKind, StockMovement
    from inventory.services.listings import content_fingerprint, listing_payload, payload_content

    started = time.monotonic()
    items = Item.objects.bulk_create(
        [
            Item(
                account=account,
                sku=f"REC-{n:06d}",
                title=f"Reconciled guitar {n}",
                brand=("Fender", "Gibson", "Gretsch", "Martin")[n % 4],
                model=f"Model {n}",
                price=Decimal("500.00") + n % 997,
                quantity_on_hand=1,
                state="active",
            )
            for n in range(count)
        ],
        batch_size=2000,
    )
    StockMovement.objects.bulk_create(
        [
            StockMovement(
                account=account,
                item=item,
                kind=MovementKind.RECEIVED,
                on_hand_delta=1,
                on_hand_after=1,
                locked_after=0,
                source="command",
                reason="initial stock",
            )
            for item in items
        ],
        batch_size=2000,
    )
    rows = []
    for item in Item.objects.filter(account=account).prefetch_related("photos").order_by("pk"):
        listing = ChannelListing(account=account, item=item, connection=connection)
        payload = listing_payload(listing)
        status, answer = sandbox.store.create_listing({**mappers.listing_body(payload), "publish": True})
        assert status == 201 and answer["listing"]["state"]["slug"] == "live", answer
        content = payload_content(payload)
        listing.external_id = str(answer["listing"]["id"])
        listing.actual_state = "live"
        listing.pushed_content = content
        listing.pushed_fingerprint = content_fingerprint(content)
        listing.last_synced_at = item.created_at
        rows.append(listing)
    ChannelListing.objects.bulk_create(rows, batch_size=2000)
    print(
        f"  built {count:,} items, marketplace listings and ChannelListing rows in {time.monotonic() - started:.1f} s"
    )


@contextmanager
def counting_statements():
    """Counts SQL statements by their first word (works with DEBUG off)."""
    from django.db import connection

    counts: Counter[str] = Counter()

    def count(execute, sql, params, many, context):
        counts[sql.split(None, 1)[0].upper()] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counts


@contextmanager
def timed(module, name: str, totals: Counter):
    """Adds the wall time spent in module.name to totals[name] while inside."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def queued_tasks() -> int:
    """Messages waiting in the broker's queues (no worker runs here)."""
    from config.celery import app

    with app.connection_for_read() as conn:
        return sum(conn.default_channel.client.llen(queue) for queue in app.amqp.queues)


def reconcile(connection, sandbox, label: str, *, expect_updated: int, expect_ended: int) -> bool:
    """Run the reconcile once, print what it did, and say whether it did only what it should."""
    from channels_reverb import client as reverb_client
    from channels_reverb import sync as reverb_sync
    from config.celery import app
    from inventory.models import Alert, ChannelListing
    from inventory.services.sync import listings_reconcile

    sandbox.reset_log()
    app.control.purge()
    spent: Counter = Counter()
    with (
        counting_statements() as statements,
        timed(reverb_client.ReverbClient, "_request", spent),
        timed(reverb_sync, "_remember_many", spent),
    ):
        cpu, wall = time.process_time(), time.perf_counter()
        run = listings_reconcile(connection_id=connection.pk)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    enqueued = queued_tasks()
    calls = Counter(f"{r.method} {r.path}" for r in sandbox.requests())
    pages = calls.pop("GET /my/listings", 0)
    marked = ChannelListing.objects.filter(connection=connection, needs_push=True).count()
    print(f"\n{label}")
    print(
        f"  marketplace calls: {sandbox.calls()} ({pages} page reads of GET /my/listings, {sandbox.writes} writes"
        + (f", other: {dict(calls)}" if calls else "")
        + ")"
    )
    print(f"  time: {wall:.2f} s wall, {cpu:.2f} s CPU in this process (which also serves the marketplace)")
    print(
        f"    of which page requests {spent['_request']:.2f} s (HTTP, the marketplace rendering, JSON), "
        f"marketplace detail rows {spent['_remember_many']:.2f} s, "
        f"the rest (loading our rows, comparing) {wall - sum(spent.values()):.2f} s"
    )
    print(
        f"  SQL statements: {sum(statements.values())} ({', '.join(f'{k} {v}' for k, v in statements.most_common())})"
    )
    print(
        f"  SyncRun {run.kind}: status {run.status}, skipped {run.skipped}, updated {run.updated}, "
        f"ended {run.ended}, errors {run.errors}, api_calls {run.api_calls}, duration {run.duration_ms} ms"
    )
    print(
        f"  listings marked to push: {marked}; tasks enqueued: {enqueued}; "
        f"price-drift alerts: {Alert.objects.filter(kind='price_drift').count()}"
    )
    # Only page reads, no write to the marketplace; what drifted is found, and nothing else.
    ok = (
        sandbox.writes == 0
        and not calls
        and pages == sandbox.calls()
        and (run.status, run.updated, run.ended, run.errors) == ("ok", expect_updated, expect_ended, 0)
        and marked == enqueued == expect_updated
    )
    print(f"  checks: {'ok' if ok else 'FAILED'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--drift", type=int, default=10, help="listings changed on the marketplace for the 2nd run")
    args = parser.parse_args()

    sync_stack.setup()
    from channels_reverb.sandbox import ReverbSandbox
    from config.celery import app
    from inventory.models import ChannelListing

    print(sync_stack.machine())
    account = sync_stack.shop()
    with ReverbSandbox() as sandbox:
        connection = sync_stack.market_connection(account, sandbox, "Reverb", 1)
        build(account, connection, sandbox, args.listings)
        print(f"  the marketplace answers {sandbox.store.page_size} listings a page (Reverb's default)")
        ok = reconcile(
            connection,
            sandbox,
            f"reconcile of {args.listings:,} unchanged live listings",
            expect_updated=0,
            expect_ended=0,
        )

        half = args.drift // 2
        drifted = list(
            ChannelListing.objects.filter(connection=connection)
            .order_by("?")
            .values_list("external_id", flat=True)[: args.drift]
        )
        with sandbox.store.lock:
            for external_id in drifted[:half]:
                sandbox.store.listings[int(external_id)]["price"] += Decimal("25.00")
        for external_id in drifted[half:]:
            sandbox.set_listing_state(external_id, "ended")
        ok &= reconcile(
            connection,
            sandbox,
            f"again, after {half} prices were changed and {args.drift - half} ended there",
            expect_updated=half,
            expect_ended=args.drift - half,
        )
    app.control.purge()
    print(f"\nmachine after the run: {sync_stack.machine()}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
