"""Calibration floor for bench/sync_latency.py: the same hops on a bare Django + Celery + Redis + PostgreSQL stack.

Run it from the project root:

    .venv/bin/python bench/floor.py --markets 3
    .venv/bin/python bench/floor.py --markets 4 --sales 100 --in-flight 8 --concurrency 4

What it is: sync_latency.py measures "sale to ended everywhere" through the product. This
measures the same path with nothing of the product in it, so that the product's figures can
be read against what the framework, the broker, the database and HTTP cost on the machine
the benchmarks ran on (machines differ from session to session by up to 2x):

  - the driver (this process) holds --markets loopback marketplaces (stdlib
    ThreadingHTTPServer, listing states in memory); a sale is t0, then the marketplace marks
    its listing sold and POSTs the webhook JSON to gunicorn;
  - gunicorn (2 sync workers, bench/floor_stack/views.py) INSERTs the WebhookEvent and, on
    commit, sends the `sale` task (event id, listing id) to the `webhooks` queue, answers 200;
  - a Celery worker (prefork x --concurrency, no gossip/mingle/heartbeat, acks_late, prefetch 1,
    JSON, results ignored; bench/floor_stack/tasks.py) runs `sale`: in one transaction SELECT
    the item FOR UPDATE by the listing, UPDATE item and listing to sold, mark the event
    processed; on commit one `end` task per other listing, each on its market's queue
    (`floor.m0`, `floor.m1`, ...);
  - `end`: PUT {market}/listings/{id}/end and GET {market}/listings/{id} (must read ended)
    over a kept-alive urllib3 pool, then UPDATE the listing's state and ended_at = now().

Latency is the last ended_at of the item's other listings minus t0. A watcher thread polls
PostgreSQL for items whose other listings are all ended and wakes the driver thread. 10
warm-up sales, then --sales one at a time, then --sales with --in-flight open at once (each
driver thread starts its next sale when its last one is done). Printed as sync_latency.py
prints them: p50/p95/max and sales/s, the median time to each step, and the CPU per sale of
each part (worker process tree, gunicorn process tree, PostgreSQL backends, this process).

Its own settings (bench/floor_stack/settings.py): PostgreSQL database `bench_floor` (created
when missing, its tables recreated at each start), Redis database 13 as the broker. The
subprocesses are stopped when this process exits (also on Ctrl-C, SIGTERM or an error).
It reuses bench/sync_stack.py's helpers (CPU accounting, subprocess start/stop, percentile).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The floor stack's own settings, for this process and for gunicorn and the worker (they inherit the environment).
os.environ["DJANGO_SETTINGS_MODULE"] = "floor_stack.settings"
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH), os.environ.get("PYTHONPATH", "")) if p)
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import django  # noqa: E402
import sync_stack  # noqa: E402
import urllib3  # noqa: E402

WARMUP = 10


class Market:
    """A loopback marketplace: its listings' states in memory, an HTTP API to end and read them."""

    def __init__(self, number: int, http: urllib3.PoolManager) -> None:
        self.number = number
        self.http = http
        self.webhook_url = ""
        self.states: dict[int, str] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _MarketHandler)
        self.server.daemon_threads = True
        self.server.market = self
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"market-{number}", daemon=True
        )
        self.thread.start()

    def sell(self, listing_id: int, item_id: int) -> None:
        """The sale on this marketplace: the listing is sold, the shop's webhook is called."""
        with self.lock:
            self.states[listing_id] = "sold"
        body = json.dumps({"event": "sale", "market": self.number, "listing": listing_id, "item": item_id})
        answer = self.http.request(
            "POST", self.webhook_url, body=body.encode(), headers={"Content-Type": "application/json"}
        )
        if answer.status != 200:
            raise RuntimeError(f"the webhook for listing {listing_id} was answered HTTP {answer.status}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _MarketHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the worker's urllib3 pool expects
    # Headers and body go out as two writes: with Nagle on, a kept-alive client waits ~40 ms for the
    # delayed ACK on every answer (the product's loopback sandboxes turn it off too).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        market: Market = self.server.market
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "listings" and parts[1].isdigit():
            listing_id = int(parts[1])
            with market.lock:
                state = market.states.get(listing_id)
            if state is not None:
                return self._answer(200, {"id": listing_id, "state": state})
        self._answer(404, {"error": "no such listing"})

    def do_PUT(self) -> None:
        market: Market = self.server.market
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "listings" and parts[1].isdigit() and parts[2] == "end":
            listing_id = int(parts[1])
            with market.lock:
                if market.states.get(listing_id) == "live":
                    market.states[listing_id] = "ended"
                state = market.states.get(listing_id)
            if state == "ended":
                return self._answer(200, {"id": listing_id, "state": state})
            if state is not None:
                return self._answer(409, {"error": f"listing is {state}"})
        self._answer(404, {"error": "no such listing"})

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # quiet
        pass


class Web(sync_stack.Web):
    """gunicorn serving the floor stack's one view (sync_stack.Web's start-up wait and stop)."""

    def __init__(self, workers: int = 2) -> None:
        self.port = sync_stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(sync_stack.VENV_BIN / "gunicorn"),
            "floor_stack.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        self.process = sync_stack._start(command)
        self._wait()  # any HTTP answer (here a 404) means gunicorn is up


class Worker:
    """The floor stack's Celery worker, started as sync_stack.Worker starts the product's."""

    def __init__(self, queues: list[str], concurrency: int, market_urls: list[str]) -> None:
        from floor_stack.celery_app import app

        with app.connection_for_write() as connection:
            for queue in queues:
                connection.default_channel.queue_purge(queue)
        self.process = sync_stack.start_worker(
            app,
            "floor_stack.celery_app",
            queues,
            f"bench-floor-{os.getpid()}@%h",
            concurrency=concurrency,
            FLOOR_MARKET_URLS=",".join(market_urls),
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


@dataclass
class Sale:
    item_id: int
    market: int
    listing_id: int
    t0: float = 0.0
    answered: float = 0.0


# The sales whose other listings are all ended (the Watcher's query).
DONE_SQL = (
    "SELECT item_id FROM floor_listing WHERE item_id = ANY(%s) AND ended_at IS NOT NULL"
    " GROUP BY item_id HAVING count(*) >= %s"
)


def database() -> None:
    """Create `bench_floor` if missing, set Django up, and (re)create the floor tables, empty."""
    import psycopg
    from floor_stack import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres", autocommit=True) as pg:
        if not pg.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            pg.execute(f'CREATE DATABASE "{db["NAME"]}"')
    django.setup()
    from django.db import connection
    from floor_stack.models import Item, Listing, WebhookEvent

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS floor_webhookevent, floor_listing, floor_item CASCADE")
    with connection.schema_editor() as editor:
        for model in (Item, Listing, WebhookEvent):
            editor.create_model(model)


def build(markets: list[Market], count: int) -> list[Sale]:
    """`count` items, each listed on every market; sale n is on market n % markets."""
    from django.db import connection
    from floor_stack.models import Item, Listing

    items = Item.objects.bulk_create([Item() for _ in range(count)])
    listings = Listing.objects.bulk_create([Listing(item=item, market=m.number) for item in items for m in markets])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE floor_item, floor_listing")
    by_item: dict[int, dict[int, int]] = {}
    for listing in listings:
        markets[listing.market].states[listing.pk] = "live"
        by_item.setdefault(listing.item_id, {})[listing.market] = listing.pk
    return [Sale(item.pk, n % len(markets), by_item[item.pk][n % len(markets)]) for n, item in enumerate(items)]


def run_phase(sales: list[Sale], markets: list[Market], watcher: sync_stack.Watcher, in_flight: int) -> float:
    """Sell, `in_flight` at a time (daemon threads, so that Ctrl-C does not wait for them). Returns the wall time."""
    todo = iter(sales)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def driver() -> None:
        try:
            while not errors:
                with lock:
                    sale = next(todo, None)
                if sale is None:
                    return
                done = watcher.wait_for(sale.item_id)
                sale.t0 = time.time()
                markets[sale.market].sell(sale.listing_id, sale.item_id)
                sale.answered = time.time()
                if not done.wait(60):
                    raise RuntimeError(f"the sale of item {sale.item_id} was not ended everywhere in 60 s")
        except BaseException as error:
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=driver, daemon=True) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"phase failed: {errors[0]!r}")
    return time.monotonic() - started


def timings(sales: list[Sale]) -> dict[str, list[float]]:
    """Milliseconds from t0 to each step, per sale, read from what the stack wrote."""
    from floor_stack.models import Listing, WebhookEvent

    ends: dict[int, list[datetime]] = {}
    for item_id, ended_at in Listing.objects.filter(
        item_id__in=[s.item_id for s in sales], ended_at__isnull=False
    ).values_list("item_id", "ended_at"):
        ends.setdefault(item_id, []).append(ended_at)
    events = {
        body["listing"]: (received, processed)
        for body, received, processed in WebhookEvent.objects.values_list("body", "received_at", "processed_at")
    }
    steps: dict[str, list[float]] = {k: [] for k in ("answered", "stored", "processed", "first", "last")}
    for sale in sales:
        t0 = datetime.fromtimestamp(sale.t0, UTC)
        received, processed = events[sale.listing_id]
        steps["answered"].append((sale.answered - sale.t0) * 1000)
        steps["stored"].append((received - t0).total_seconds() * 1000)
        steps["processed"].append((processed - t0).total_seconds() * 1000)
        steps["first"].append((min(ends[sale.item_id]) - t0).total_seconds() * 1000)
        steps["last"].append((max(ends[sale.item_id]) - t0).total_seconds() * 1000)
    return steps


STEP_NAMES = {
    "answered": "answered",
    "stored": "stored",
    "processed": "processed",
    "first": "1st end",
    "last": "last end",
}


def checks(plan: list[Sale], markets: list[Market]) -> bool:
    from floor_stack.models import Item, Listing, WebhookEvent

    others = len(plan) * (len(markets) - 1)
    sold = Item.objects.filter(state="sold").count()
    sold_listings = Listing.objects.filter(state="sold").count()
    ended = Listing.objects.filter(state="ended", ended_at__isnull=False).count()
    processed = WebhookEvent.objects.filter(processed_at__isnull=False).count()
    in_market = [state for market in markets for state in market.states.values()]
    agree = in_market.count("sold") == len(plan) and in_market.count("ended") == others
    ok = sold == sold_listings == processed == len(plan) and ended == others and agree
    print(
        f"checks: {sold} of {len(plan)} items sold, {sold_listings} listings sold, {ended} of {others} other listings"
        f" ended, {processed} events processed, marketplaces {'agree' if agree else 'DISAGREE'}"
        f" -> {'ok' if ok else 'FAILED'}"
    )
    return ok


def _terminated(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks and sync_stack's atexit clean-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=3, help="loopback marketplaces, 2 or more")
    parser.add_argument("--sales", type=int, default=100, help="sales per phase")
    parser.add_argument("--in-flight", type=int, default=8, help="sales open at once in the second phase")
    parser.add_argument("--concurrency", type=int, default=4, help="Celery worker (prefork) processes")
    args = parser.parse_args()
    if args.markets < 2:
        parser.error("--markets must be 2 or more")
    signal.signal(signal.SIGTERM, _terminated)

    database()
    from celery.fixups.django import DjangoWorkerFixup
    from floor_stack.celery_app import app, market_queue

    print(sync_stack.machine())
    http = urllib3.PoolManager(maxsize=max(args.in_flight, 1), retries=False, timeout=10)
    markets = [Market(n, http) for n in range(args.markets)]
    web = worker = watcher = None
    try:
        web = Web(workers=2)
        for market in markets:
            market.webhook_url = web.url + "/hook/"
        queues = ["webhooks", *(market_queue(m.number) for m in markets)]
        worker = Worker(queues, args.concurrency, [m.base_url for m in markets])
        print(
            f"floor stack: {args.markets} marketplaces, Celery prefork x{args.concurrency} on {app.conf.broker_url},"
            f" gunicorn x2, PostgreSQL database bench_floor; the worker's Django fixup reads CELERY_DB_REUSE_MAX ="
            f" {DjangoWorkerFixup(app).db_reuse_max!r}"
        )
        plan = build(markets, WARMUP + 2 * args.sales)
        watcher = sync_stack.Watcher(expected_ends=args.markets - 1, done_sql=DONE_SQL)
        watcher.start()
        run_phase(plan[:WARMUP], markets, watcher, 1)
        sessions_before = sync_stack.db_sessions()
        phases = (
            ("one at a time", plan[WARMUP : WARMUP + args.sales], 1),
            (f"{args.in_flight} in flight", plan[WARMUP + args.sales :], args.in_flight),
        )
        results, splits = sync_stack.measure_phases(
            phases, worker, web, lambda sales, parallel: run_phase(sales, markets, watcher, parallel)
        )
        time.sleep(1.5)  # backends report their session counts within a second of going idle
        sessions = sync_stack.db_sessions() - sessions_before
    finally:
        if watcher is not None:
            watcher.stopping.set()
        if worker is not None:
            worker.stop()
        if web is not None:
            web.stop()
        for market in markets:
            market.stop()

    sync_stack.print_report(results, splits, timings, STEP_NAMES)
    total = 2 * args.sales
    print()
    print(f"PostgreSQL sessions opened during the {total} measured sales: {sessions} ({sessions / total:.2f} per sale)")
    print(f"machine after the run: {sync_stack.machine()}")
    if not checks(plan, markets):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
