"""What queueing a sale's ends costs the process that records the sale (issue 14, sixth pass).

A sale on one of N channels queues N-1 converges after its commit. Timed here on the real
broker (REDIS_URL, a queue of its own, emptied before and after), CPU and wall per sale,
the three ways interleaved round after round so the machine's drift falls on each alike:

- Celery's apply_async per converge, with its defaults (before the sixth pass);
- `tasks.task_send` per converge (the arguments' repr written by us, not Celery's saferepr);
- `tasks.enqueue_converges` (one publish batch: one pipeline, one round trip).

    .venv/bin/python bench/publish.py --ends 3 --sales 300 --rounds 5   # REDIS_URL: the broker
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Production-like and on the benchmarks' own databases, as bench/sync_stack.py (Django needs its
# settings; no table is read).
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_sync")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

QUEUE_CHANNEL = "benchpublish"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ends", type=int, default=3, help="converges a sale queues (channels - 1)")
    parser.add_argument("--sales", type=int, default=300, help="sales a round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the three ways, interleaved")
    args = parser.parse_args()

    import django

    django.setup()
    import redis
    from django.conf import settings

    from config.celery import app
    from inventory import tasks

    if not app.conf.broker_url.startswith("redis"):
        raise SystemExit(f"needs the Redis broker (REDIS_URL); the broker is {app.conf.broker_url}")
    queue = tasks.channel_queue(QUEUE_CHANNEL)
    broker = redis.Redis.from_url(app.conf.broker_url)
    ends = [(1000 + n, QUEUE_CHANNEL) for n in range(args.ends)]

    def celery_defaults() -> None:
        for listing_id, channel_name in ends:
            tasks.converge_listing_task.apply_async(
                args=[listing_id], kwargs={"channel_name": channel_name, "account_id": 1}, queue=queue
            )

    def one_by_one() -> None:
        for listing_id, channel_name in ends:
            tasks.enqueue_converge(listing_id, channel_name=channel_name, account_id=1)

    def batched() -> None:
        tasks.enqueue_converges(ends, account_id=1)

    ways = {"apply_async each (before)": celery_defaults, "task_send each": one_by_one, "enqueue_converges": batched}
    cpu = {name: [] for name in ways}
    wall = {name: [] for name in ways}
    print(f"broker {app.conf.broker_url}, {args.ends} ends a sale, {args.sales} sales x {args.rounds} rounds")
    print(f"Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f}, DEBUG={settings.DEBUG}")
    try:
        for way in ways.values():  # warm: the producer pool, the queue's declaration
            way()
        for _round in range(args.rounds):
            for name, way in ways.items():
                broker.delete(queue)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _sale in range(args.sales):
                    way()
                cpu[name].append((time.process_time() - cpu0) / args.sales * 1000)
                wall[name].append((time.perf_counter() - wall0) / args.sales * 1000)
                queued = broker.llen(queue)
                if queued != args.sales * args.ends:
                    raise SystemExit(f"{name}: {queued} messages queued, {args.sales * args.ends} expected")
    finally:
        broker.delete(queue)

    print(f"\n{'ms per sale (median of rounds)':32} {'CPU':>7} {'wall':>7}   CPU per round")
    for name in ways:
        rounds = " ".join(f"{value:.2f}" for value in cpu[name])
        print(f"{name:32} {statistics.median(cpu[name]):7.3f} {statistics.median(wall[name]):7.3f}   {rounds}")
    print(f"checks: every round queued {args.sales * args.ends} messages -> ok")


if __name__ == "__main__":
    main()
