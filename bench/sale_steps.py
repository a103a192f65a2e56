"""SQL statements and CPU per step of one sale, in process (deterministic counts, no stack noise).

Run it from the project root (bench/sync_latency.py runs it too, after the stack phases):

    .venv/bin/python bench/sale_steps.py --markets 3 --sales 30
    .venv/bin/python bench/sale_steps.py --profile /tmp/steps.prof   # cProfile of the steps

The same services production runs, called in order in this process: the webhook POSTed to
the app through Django's test client (the view, as gunicorn would run it), the stored
delivery processed (`webhook_process`: the order read back from the marketplace and the
sale recorded), then each other listing converged (`listing_converge_batched`, the converge task's entry point, with the arguments the task was sent), and inside it the
marketplace's end and its read-back (the channel module's `end`) counted apart. Tasks are
not sent to a broker: their `apply_async` is replaced by a list, so the on-commit enqueue
code (and any SQL it runs) is still counted. CPU is this thread's (time.thread_time), so
the loopback marketplaces' server threads in the same process are not in it. PG CPU is the
CPU of this session's PostgreSQL server process during the step (the kernel's count in
/proc/<pid>/schedstat, so PostgreSQL must run on this machine): parsing, planning, executing
and committing the step's statements, foreign key checks and index upkeep included.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import statistics
import time
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

STEPS = ("webhook store", "sale record", "converge", "read-back")


class Counter:
    """Statements and thread CPU per step, summed over the sales measured."""

    def __init__(self) -> None:
        self.statements = {step: [] for step in STEPS}
        self.cpu_ms = {step: [] for step in STEPS}
        self.wall_ms = {step: [] for step in STEPS}
        self.db_cpu_ms = {step: [] for step in STEPS}
        self._sale: dict[str, list[float]] = {}
        self.last_sql: dict[str, list[str]] = {}

    def start_sale(self) -> None:
        self._sale = {step: [0, 0.0, 0.0, 0.0] for step in STEPS}
        self.last_sql = {step: [] for step in STEPS}

    def end_sale(self) -> None:
        for step, (n, cpu, wall, db_cpu) in self._sale.items():
            self.statements[step].append(n)
            self.cpu_ms[step].append(cpu)
            self.wall_ms[step].append(wall)
            self.db_cpu_ms[step].append(db_cpu)

    @contextmanager
    def step(self, name: str):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        connection.ensure_connection()
        backend = connection.connection.info.backend_pid
        db_cpu = _backend_cpu_ms(backend)
        cpu, wall = time.thread_time(), time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            yield
        cells = self._sale[name]
        after = _backend_cpu_ms(backend)
        # NaN when PostgreSQL is on another machine; nothing when Django closed the session
        # during the step (CONN_MAX_AGE) and the process is gone.
        cells[3] += after - db_cpu if after else 0.0
        self.last_sql[name].extend(q["sql"] for q in queries.captured_queries)
        cells[0] += len(queries.captured_queries)
        cells[1] += (time.thread_time() - cpu) * 1000
        cells[2] += (time.perf_counter() - wall) * 1000


def _backend_cpu_ms(pid: int) -> float:
    """CPU time so far of a PostgreSQL server process on this machine (the scheduler's count, in
    nanoseconds, so a statement's fraction of a millisecond shows): NaN when this machine has no
    PostgreSQL process of that id (the server is elsewhere), 0.0 when the process has ended."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            if not cmdline.read().startswith(b"postgres"):
                return math.nan
        with open(f"/proc/{pid}/schedstat") as stats:
            return int(stats.read().split()[0]) / 1e6
    except FileNotFoundError:
        return 0.0


def _for_service(kwargs: dict) -> dict:
    """What a task passes on to its service: all it was sent but the account (the task's scope)."""
    return {name: value for name, value in kwargs.items() if name != "account_id"}


def _sent(queue: list):
    def apply_async(args=None, kwargs=None, **options):
        queue.append(args[0] if not kwargs else (args[0], kwargs))

    return apply_async


def run(*, markets: int = 3, sales: int = 30, profile: str = "", slug: str = "bench-steps") -> Counter:
    """Sell `sales` items one by one on rotating marketplaces, counting each step. Needs Django set up."""
    import sync_stack
    from django.test import Client

    from channels_reverb import sync as reverb_sync
    from channels_reverb.sandbox import ReverbSandbox
    from inventory import tasks
    from inventory.models import ChannelListing
    from inventory.services import Actor, item_create
    from inventory.services.batching import listing_converge_batched
    from inventory.services.listings import listings_publish
    from inventory.services.sync import webhook_process

    account = sync_stack.shop(slug)
    sandboxes = [ReverbSandbox().__enter__() for _ in range(markets)]
    connections = [
        sync_stack.market_connection(account, sandbox, f"Steps {n + 1}", n + 1) for n, sandbox in enumerate(sandboxes)
    ]
    events: list[int] = []
    converges: list[int] = []
    counter = Counter()
    real_end = reverb_sync.end

    def end(*args, **kwargs):
        with counter.step("read-back"):
            return real_end(*args, **kwargs)

    client = Client()
    actor = Actor(source="command")
    with (
        mock.patch.object(tasks.process_webhook_event_task, "apply_async", _sent(events)),
        mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)),
        mock.patch.object(tasks.pull_connection_task, "apply_async", _sent([])),
    ):
        warm = 3
        items = [
            item_create(
                account=account,
                actor=actor,
                state="active",
                fields={
                    "sku": f"STEP-{n:05d}",
                    "title": f"Bench guitar {n}",
                    "brand": "Fender",
                    "model": f"Stratocaster {n}",
                    "price": Decimal("1000.00") + n,
                },
            )
            for n in range(warm + sales)
        ]
        listings_publish(account=account, item_ids=[i.pk for i in items], actor=actor)

        def converge(sent) -> None:
            # What the converge task runs, with the arguments it was sent.
            listing_id, kwargs = sent if isinstance(sent, tuple) else (sent, {})
            listing_converge_batched(listing_id, **_for_service(kwargs))

        while converges:
            converge(converges.pop())
        assert ChannelListing.objects.filter(account=account, actual_state="live").count() == len(items) * markets

        profiler = cProfile.Profile(time.thread_time) if profile else None  # CPU time, not waits
        with mock.patch.object(reverb_sync, "end", end):
            for n, item in enumerate(items):
                measured = n >= warm
                counter.start_sale()
                order = sandboxes[n % markets].simulate_sale(item.sku, deliver_webhook=False)
                connection = connections[n % markets]
                if profiler and measured:
                    profiler.enable()
                with counter.step("webhook store"):
                    answer = client.post(connection.webhook_path, json.dumps(order), content_type="application/json")
                assert answer.status_code == 200, answer.content
                with counter.step("sale record"):
                    event_id, kwargs = sent if isinstance(sent := events.pop(), tuple) else (sent, {})
                    webhook_process(event_id=event_id, **_for_service(kwargs))
                pending = list(converges)
                converges.clear()
                for sent in pending:
                    with counter.step("converge"):
                        converge(sent)
                if profiler and measured:
                    profiler.disable()
                assert len(pending) == markets - 1, pending
                if measured:
                    counter.end_sale()
        # "converge" includes the channel's end and read-back; report them apart.
        for i, inner in enumerate(counter.statements["read-back"]):
            counter.statements["converge"][i] -= inner
            counter.cpu_ms["converge"][i] -= counter.cpu_ms["read-back"][i]
            counter.wall_ms["converge"][i] -= counter.wall_ms["read-back"][i]
            counter.db_cpu_ms["converge"][i] -= counter.db_cpu_ms["read-back"][i]
        ended = ChannelListing.objects.filter(
            account=account, end_reason="sold_elsewhere", ended_at__isnull=False
        ).count()
        assert ended == len(items) * (markets - 1), ended
    for sandbox in sandboxes:
        sandbox.stop()
    if profiler:
        profiler.dump_stats(profile)
    return counter


def report(counter: Counter, markets: int) -> None:
    print(f"per sale, {markets} marketplaces ({markets - 1} ends), in process; median of the sales measured:")
    print(f"  {'step':<16}{'statements':>11}{'CPU ms':>9}{'wall ms':>9}{'PG CPU ms':>11}")
    totals = [0.0, 0.0, 0.0, 0.0]
    for step in STEPS:
        cells = [
            statistics.median(counter.statements[step]),
            statistics.median(counter.cpu_ms[step]),
            statistics.median(counter.wall_ms[step]),
            statistics.median(counter.db_cpu_ms[step]),
        ]
        totals = [t + c for t, c in zip(totals, cells, strict=True)]
        print(f"  {step:<16}{cells[0]:>11.0f}{cells[1]:>9.1f}{cells[2]:>9.1f}{cells[3]:>11.2f}")
    print(f"  {'total':<16}{totals[0]:>11.0f}{totals[1]:>9.1f}{totals[2]:>9.1f}{totals[3]:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=3)
    parser.add_argument("--sales", type=int, default=30)
    parser.add_argument("--profile", default="", help="cProfile the measured sales' steps, stats to this file")
    parser.add_argument("--sql", action="store_true", help="print the last sale's statements, step by step")
    args = parser.parse_args()
    import sync_stack

    sync_stack.setup()
    print(sync_stack.machine())
    counter = run(markets=args.markets, sales=args.sales, profile=args.profile)
    report(counter, args.markets)
    if args.sql:
        for step, statements in counter.last_sql.items():
            print(f"\n--- {step} (converge includes read-back here): {len(statements)}")
            for sql in statements:
                print("  " + sql[:300])


if __name__ == "__main__":
    main()
