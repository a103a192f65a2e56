"""Sale-to-ended-everywhere latency through webhook and worker, on a real stack.

Run it from the project root:

    .venv/bin/python bench/sync_latency.py
    .venv/bin/python bench/sync_latency.py --markets 3 --sales 100 --in-flight 8 --concurrency 4
    CELERY_DB_REUSE_MAX=0 .venv/bin/python bench/sync_latency.py   # the worker reconnects for every task

The stack (bench/sync_stack.py): PostgreSQL (DATABASE_URL, default database `bench_sync`,
emptied at the start), Redis as the Celery broker (REDIS_URL, default database 12), gunicorn
serving the app (it answers the webhooks), a Celery worker process consuming the app's
queues, and --markets loopback marketplaces in this process, one connection each. Items are
listed everywhere through the engine first.

For each sale, t0 is taken just before the marketplace's simulate_sale (which records the
order and POSTs the webhook to gunicorn); the sale is done when every other listing of the
item has `ended_at` written, i.e. its end was confirmed by a read-back. Latency is the last
`ended_at` minus t0 (both this machine's wall clock). Sales run one at a time, then with
--in-flight sales open at once (each driver thread starts its next sale when its last one
is done). Printed: p50/p95/max, sales per second, the median time to each step (webhook
answered, event stored, sale recorded, last end confirmed), the CPU per sale of each part
(worker, gunicorn, PostgreSQL, this process), and the PostgreSQL sessions opened per sale
(0 when the worker and gunicorn reuse their connections). Then --steps sales are made in
process (bench/sale_steps.py) to count the SQL statements and the CPU of each step (webhook
store, sale record, converge, read-back) exactly. It is not a test.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import sale_steps
import sync_stack

WARMUP = 10


@dataclass
class Sale:
    item_id: int
    market: int
    t0: float = 0.0
    answered: float = 0.0
    order_number: str = ""
    done: threading.Event | None = None


# The sales whose other listings are all ended (the Watcher's query).
DONE_SQL = (
    "SELECT item_id FROM inventory_channellisting WHERE item_id = ANY(%s)"
    " AND end_reason = 'sold_elsewhere' AND ended_at IS NOT NULL"
    " GROUP BY item_id HAVING count(*) >= %s"
)


def build(account, sandboxes, count: int) -> list:
    """Items listed on every marketplace through the engine (the worker publishes them)."""
    from decimal import Decimal

    from inventory.models import ChannelListing
    from inventory.services import Actor, item_create
    from inventory.services.listings import listings_publish

    actor = Actor(source="command")
    items = [
        item_create(
            account=account,
            actor=actor,
            state="active",
            fields={
                "sku": f"LAT-{n:05d}",
                "title": f"Bench guitar {n}",
                "brand": "Fender",
                "model": f"Stratocaster {n}",
                "price": Decimal("1000.00") + n,
            },
        )
        for n in range(count)
    ]
    started = time.monotonic()
    for start in range(0, len(items), 100):
        listings_publish(account=account, item_ids=[i.pk for i in items[start : start + 100]], actor=actor)
    wanted = count * len(sandboxes)
    while ChannelListing.objects.filter(actual_state="live").count() < wanted:
        if time.monotonic() - started > 600:
            raise SystemExit("listing the bench items took over 10 minutes")
        time.sleep(0.2)
    print(f"  listed {count} items on {len(sandboxes)} marketplaces in {time.monotonic() - started:.1f} s")
    return items


def run_phase(sales: list[Sale], sandboxes, watcher: sync_stack.Watcher, in_flight: int) -> float:
    """Sell, `in_flight` at a time. Returns the phase's wall time."""
    from inventory.models import Item

    skus = dict(Item.objects.filter(pk__in=[s.item_id for s in sales]).values_list("pk", "sku"))

    def sell(sale: Sale) -> None:
        done = watcher.wait_for(sale.item_id)
        sale.t0 = time.time()
        order = sandboxes[sale.market].simulate_sale(skus[sale.item_id])
        sale.answered = time.time()
        sale.order_number = str(order["order_number"])
        if not done.wait(60):
            raise SystemExit(f"sale of item {sale.item_id} was not ended everywhere in 60 s")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        list(pool.map(sell, sales))
    return time.monotonic() - started


def timings(sales: list[Sale], connections) -> dict[str, list[float]]:
    """Milliseconds from t0 to each step, per sale, read from what the stack wrote."""
    from inventory.models import ChannelListing, Item, WebhookEvent

    items = {i.pk: i for i in Item.objects.filter(pk__in=[s.item_id for s in sales])}
    ends: dict[int, list[datetime]] = {}
    for item_id, ended_at in ChannelListing.objects.filter(
        item_id__in=list(items), end_reason="sold_elsewhere"
    ).values_list("item_id", "ended_at"):
        ends.setdefault(item_id, []).append(ended_at)
    events = {
        (event.connection_id, str(event.payload.get("order_number"))): event
        for event in WebhookEvent.objects.filter(connection__in=connections)
    }
    steps: dict[str, list[float]] = {k: [] for k in ("answered", "stored", "recorded", "processed", "first", "last")}
    for sale in sales:
        t0 = datetime.fromtimestamp(sale.t0, UTC)
        event = events[(connections[sale.market].pk, sale.order_number)]
        steps["answered"].append((sale.answered - sale.t0) * 1000)
        steps["stored"].append((event.received_at - t0).total_seconds() * 1000)
        steps["recorded"].append((items[sale.item_id].sold_recorded_at - t0).total_seconds() * 1000)
        steps["processed"].append((event.processed_at - t0).total_seconds() * 1000)
        steps["first"].append((min(ends[sale.item_id]) - t0).total_seconds() * 1000)
        steps["last"].append((max(ends[sale.item_id]) - t0).total_seconds() * 1000)
    return steps


STEP_NAMES = {
    "answered": "answered",
    "stored": "stored",
    "recorded": "recorded",
    "processed": "processed",
    "first": "1st end",
    "last": "last end",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=3, help="loopback marketplaces (connections), 2 or more")
    parser.add_argument("--sales", type=int, default=100, help="sales per phase")
    parser.add_argument("--in-flight", type=int, default=8, help="sales open at once in the second phase")
    parser.add_argument("--pool", default="prefork", help="Celery worker pool (prefork, threads)")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker processes or threads")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--profile-worker", default="", help="run the worker (solo) under cProfile, stats to this file")
    parser.add_argument(
        "--steps", type=int, default=30, help="then sell this many in process, counting statements and CPU per step"
    )
    args = parser.parse_args()

    sync_stack.setup()
    from celery.fixups.django import DjangoWorkerFixup

    from channels_reverb.sandbox import ReverbSandbox
    from config.celery import app
    from inventory.models import Conflict, Item, Order
    from inventory.selectors import stock_problems

    print(sync_stack.machine())
    account = sync_stack.shop()
    sandboxes = [ReverbSandbox().__enter__() for _ in range(args.markets)]
    connections = [
        sync_stack.market_connection(account, sandbox, f"Market {n + 1}", n + 1) for n, sandbox in enumerate(sandboxes)
    ]
    web = sync_stack.Web(workers=args.web_workers)
    for sandbox, connection in zip(sandboxes, connections, strict=True):
        sandbox.register_webhook(web.url + connection.webhook_path)
    worker = sync_stack.Worker(pool=args.pool, concurrency=args.concurrency, profile=args.profile_worker)
    reuse = DjangoWorkerFixup(app).db_reuse_max
    print(
        f"stack: {args.markets} marketplaces, Celery {args.pool} x{args.concurrency} on {app.conf.broker_url}, "
        f"gunicorn x{args.web_workers}; the worker's Django fixup reads CELERY_DB_REUSE_MAX = {reuse!r}"
    )
    watcher = sync_stack.Watcher(expected_ends=args.markets - 1, done_sql=DONE_SQL)
    watcher.start()
    try:
        items = build(account, sandboxes, WARMUP + 2 * args.sales)
        plan = [Sale(item.pk, n % args.markets) for n, item in enumerate(items)]
        warmup, one_at_a_time, in_flight = (
            plan[:WARMUP],
            plan[WARMUP : WARMUP + args.sales],
            plan[WARMUP + args.sales :],
        )
        run_phase(warmup, sandboxes, watcher, 1)
        sessions_before = sync_stack.db_sessions()
        phases = (
            ("one at a time", one_at_a_time, 1),
            (f"{args.in_flight} in flight", in_flight, args.in_flight),
        )
        results, splits = sync_stack.measure_phases(
            phases, worker, web, lambda sales, parallel: run_phase(sales, sandboxes, watcher, parallel)
        )
        time.sleep(1.5)  # backends report their session counts within a second of going idle
        sessions = sync_stack.db_sessions() - sessions_before
    finally:
        watcher.stopping.set()
        worker.stop()
        web.stop()
        for sandbox in sandboxes:
            sandbox.stop()

    sync_stack.print_report(results, splits, lambda sales: timings(sales, connections), STEP_NAMES)
    total = 2 * args.sales
    print()
    print(f"PostgreSQL sessions opened during the {total} measured sales: {sessions} ({sessions / total:.2f} per sale)")
    print(f"machine after the run: {sync_stack.machine()}")
    sold = Item.objects.filter(state="sold").count()
    problems = stock_problems()
    ok = sold == len(plan) and Order.objects.count() == len(plan) and not Conflict.objects.exists() and not problems
    print(
        f"checks: {sold} items sold, {Order.objects.count()} orders, {Conflict.objects.count()} conflicts, "
        f"{len(problems)} stock problems -> {'ok' if ok else 'FAILED'}"
    )
    if args.steps:
        print()
        sale_steps.report(sale_steps.run(markets=args.markets, sales=args.steps), args.markets)


if __name__ == "__main__":
    main()
