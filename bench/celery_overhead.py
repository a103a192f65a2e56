"""Celery's own CPU per task: a worker running a task that does nothing (issue 14).

    .venv/bin/python bench/celery_overhead.py --tasks 500
    .venv/bin/python bench/celery_overhead.py --tasks 500 --pool solo --loglevel INFO

A sale is three tasks (the webhook, two converges with three marketplaces). What the
worker spends around the service it runs (taking the message from Redis, decoding it,
tracing the task, acking, the pool's hand-over to its child) is measured here with
Celery's built-in `celery.accumulate` (it returns its arguments), sent with the
arguments and options our converge task is sent with, on the worker of
`bench/sync_stack.py` (the Procfile's queues, no gossip, mingle or heartbeat). The
figure is the worker's process tree CPU (user + system, /proc) over the tasks, less its
CPU while idle for the same time. Needs Redis (REDIS_URL) and the database of the
settings (the worker's Django set-up reads nothing per task).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo"])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--loglevel", default="WARNING", help="INFO is the Procfile's: two log lines a task")
    options = parser.parse_args()

    import django

    django.setup()
    import redis
    import sync_stack
    from django.conf import settings

    from config.celery import app

    queue = "sync.reverb"
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    worker = _worker_with_loglevel(options, sync_stack)
    try:
        pids = sync_stack.process_tree(worker.process.pid)
        time.sleep(1.0)
        idle_start, clock = sync_stack.cpu_seconds(pids), time.monotonic()
        time.sleep(2.0)
        idle_per_s = (sync_stack.cpu_seconds(pids) - idle_start) / (time.monotonic() - clock)

        start, clock = sync_stack.cpu_seconds(pids), time.monotonic()
        for n in range(options.tasks):
            app.send_task("celery.accumulate", args=[n], kwargs={}, queue=queue)
        while broker.llen(queue):
            time.sleep(0.01)
        time.sleep(0.3)  # the last message taken is run and acked
        spent, took = sync_stack.cpu_seconds(pids) - start, time.monotonic() - clock
    finally:
        worker.stop()
    per_task = (spent - idle_per_s * took) / options.tasks * 1000
    load = os.getloadavg()
    print(
        f"pool {options.pool} x{options.concurrency}, loglevel {options.loglevel}, {options.tasks} tasks in"
        f" {took:.1f} s, load average {load[0]:.2f}: worker CPU {per_task:.2f} ms a task"
        f" (idle {idle_per_s * 1000:.1f} ms/s taken off)"
    )


def _worker_with_loglevel(options, sync_stack):
    """sync_stack.Worker with another --loglevel (the Procfile runs INFO)."""
    original = sync_stack._start

    def start(command, **env):
        command = list(command)
        command[command.index("--loglevel") + 1] = options.loglevel
        return original(command, **env)

    sync_stack._start = start
    try:
        return sync_stack.Worker(pool=options.pool, concurrency=options.concurrency)
    finally:
        sync_stack._start = original


if __name__ == "__main__":
    main()
