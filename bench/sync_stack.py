"""The real stack the sync benchmarks run on: a database of their own, gunicorn, a Celery worker, loopback marketplaces.

Imported by bench/sync_latency.py and bench/sync_reconcile.py (not a benchmark itself).
The database named in DATABASE_URL (default `bench_sync`) is created when missing, migrated
and emptied at the start of each run; Redis database 12 is the broker unless REDIS_URL says
otherwise. Only `market_connection` knows which marketplace is driven (the loopback Reverb).
"""

from __future__ import annotations

import atexit
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_sync")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
# Production-like: no DEBUG (no query log), quiet logs.
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def setup() -> None:
    """Create the benchmark's database if needed, set Django up, migrate, and empty every table."""
    _ensure_database()
    django.setup()
    from django.core.management import call_command

    from billing.services import plans_ensure

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    plans_ensure()


def _ensure_database() -> None:
    import environ
    import psycopg

    db = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    if "postgresql" not in db["ENGINE"]:
        raise SystemExit("The sync benchmarks need PostgreSQL: set DATABASE_URL=postgres://...")
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname="postgres"
    ) as conn:
        conn.autocommit = True
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.node()}: {os.cpu_count()} CPUs, load average {load}, Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shop(slug: str = "bench-sync"):
    """The benchmark's shop, on the internal unlimited plan (no plan limit in the way)."""
    from accounts.services import account_create
    from billing.services import plan_assign, plan_get

    account = account_create(name="Bench Sync Guitars", slug=slug)
    plan_assign(account=account, plan=plan_get("admin"), source="bench")
    return account


def market_connection(account, sandbox, name: str, priority: int):
    """A connection of the shop to one loopback marketplace."""
    from channels_reverb.models import ReverbConnection
    from channels_reverb.sandbox import DEFAULT_TOKEN

    return ReverbConnection.objects.create(
        account=account,
        name=name,
        priority=priority,
        api_token=DEFAULT_TOKEN,
        base_url=sandbox.base_url,
        timeout_seconds=10,
    )


def db_sessions() -> int:
    """Connections ever opened to this database (PostgreSQL's own counter)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (e.g. the Celery worker and its pool processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (from /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def db_backends() -> list[int]:
    """PostgreSQL server processes now serving this database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return [row[0] for row in cursor.fetchall()]


_children: list[subprocess.Popen] = []


def _start(command: list[str], **env: str) -> subprocess.Popen:
    """A child process that is stopped when this one exits, however it exits."""
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    _children.append(process)
    return process


@atexit.register
def _stop_children() -> None:
    for process in _children:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


class Web:
    """The Django app served by gunicorn (as in the Procfile), for the marketplaces' webhooks."""

    def __init__(self, workers: int = 2, threads: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ]
        self.process = _start(command)
        self._wait()

    def _wait(self) -> None:
        import requests

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("gunicorn exited at start")
            try:
                requests.get(self.url + "/hooks/reverb/none/", timeout=10)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise SystemExit("gunicorn did not answer in 30 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_worker(
    app,
    app_module: str,
    queues: list[str],
    hostname: str,
    *,
    pool: str = "prefork",
    concurrency: int = 2,
    launcher: list[str] | None = None,
    **env: str,
) -> subprocess.Popen:
    """A Celery worker of `app` (given as `-A app_module`) on these queues, started as the
    benchmarks start one (no gossip, mingle or heartbeat; warnings only), once it answers a ping."""
    command = [
        *(launcher or [str(VENV_BIN / "celery")]),
        "-A",
        app_module,
        "worker",
        "--pool",
        pool,
        "--concurrency",
        str(concurrency),
        "--queues",
        ",".join(queues),
        "--hostname",
        hostname,
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        "WARNING",
    ]
    process = _start(command, **env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the Celery worker exited at start")
        if app.control.ping(timeout=0.5):
            return process
    raise SystemExit("the Celery worker did not answer a ping in 60 s")


class Worker:
    """A Celery worker process consuming the app's queues (as in the Procfile)."""

    def __init__(self, pool: str = "prefork", concurrency: int = 2, profile: str = "", **env: str) -> None:
        from django.conf import settings

        from config.celery import app

        app.control.purge()
        self.name = f"bench-sync-{os.getpid()}@%h"
        launcher = None
        if profile:  # one process (solo pool) under cProfile; the stats are written when it stops
            pool, concurrency = "solo", 1
            launcher = [sys.executable, "-m", "cProfile", "-o", profile, str(VENV_BIN / "celery")]
        self.process = start_worker(
            app,
            "config",
            settings.CELERY_WORKER_QUEUES,
            self.name,
            pool=pool,
            concurrency=concurrency,
            launcher=launcher,
            **env,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class Watcher(threading.Thread):
    """Polls the database for sales whose other listings are all ended, and wakes their driver.

    `done_sql` answers the item ids, of those given (`%s`, an array), with at least `%s` ended
    listings (the other listings of the sale)."""

    def __init__(self, expected_ends: int, done_sql: str) -> None:
        super().__init__(daemon=True)
        self.expected_ends = expected_ends
        self.done_sql = done_sql
        self.waiting: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def wait_for(self, item_id: int) -> threading.Event:
        event = threading.Event()
        with self.lock:
            self.waiting[item_id] = event
        return event

    def run(self) -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                while not self.stopping.is_set():
                    with self.lock:
                        ids = list(self.waiting)
                    if ids:
                        cursor.execute(self.done_sql, [ids, self.expected_ends])
                        for (item_id,) in cursor.fetchall():
                            with self.lock:
                                event = self.waiting.pop(item_id, None)
                            if event is not None:
                                event.set()
                    # Latency is read from ended_at afterwards: polling more often would only take CPU
                    # from the stack being measured.
                    time.sleep(0.01)
        finally:
            connection.close()


def cpu_by_part(worker, web) -> dict[str, dict[int, float]]:
    """CPU seconds used so far by each part of a benchmark's stack, per process: the worker's and
    gunicorn's process trees, the PostgreSQL backends, and this process (marketplaces, driver)."""
    parts = {
        "worker": process_tree(worker.process.pid),
        "gunicorn": process_tree(web.process.pid),
        "postgres": db_backends(),
        "marketplaces+driver": [os.getpid()],
    }
    return {part: {pid: cpu_seconds([pid]) for pid in pids} for part, pids in parts.items()}


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    return {part: sum(cpu - before[part].get(pid, 0.0) for pid, cpu in after[part].items()) for part in after}


def worker_split(worker, before: dict, after: dict, sales: int) -> str:
    """The worker's CPU a sale in its main process (the consumer; the tasks too with a threads
    pool) and in its pool processes."""
    main = worker.process.pid
    used = {pid: cpu - before["worker"].get(pid, 0.0) for pid, cpu in after["worker"].items()}
    parent = used.get(main, 0.0) * 1000 / sales
    pool = sum(cpu for pid, cpu in used.items() if pid != main) * 1000 / sales
    return f"main process {parent:.1f}, pool processes {pool:.1f}"


def measure_phases(phases, worker, web, run) -> tuple[list, list]:
    """Run each (label, sales, in flight) phase with `run(sales, in_flight)` (answering its wall
    seconds): answers [(label, sales, wall, CPU by part)] and [(label, worker split)]."""
    results, splits = [], []
    for label, sales, in_flight in phases:
        before = cpu_by_part(worker, web)
        wall = run(sales, in_flight)
        after = cpu_by_part(worker, web)
        results.append((label, sales, wall, cpu_used(before, after)))
        splits.append((label, worker_split(worker, before, after, len(sales))))
    return results, splits


def print_report(results: list, splits: list, steps_of, step_names: dict[str, str]) -> None:
    """The latency table (from each sale's "last" step), the median ms to each step (`steps_of(sales)`
    answers {step: [ms]}; `step_names` maps the step to its column heading) and the CPU tables."""
    print()
    print(f"{'sale -> ended everywhere':<26}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'sales/s':>9}")
    for label, sales, wall, _cpu in results:
        last = steps_of(sales)["last"]
        print(
            f"{label:<26}{len(sales):>5}{statistics.median(last):>9.1f}{percentile(last, 95):>9.1f}"
            f"{max(last):>9.1f}{len(sales) / wall:>9.1f}"
        )
    print()
    print("median ms from t0 to:     " + "".join(f"{name:>10}" for name in step_names.values()))
    for label, sales, _wall, _cpu in results:
        steps = steps_of(sales)
        print(f"  {label:<24}" + "".join(f"{statistics.median(steps[step]):>10.1f}" for step in step_names))
    print()
    parts = list(results[0][3])
    print("CPU ms per sale:            " + "".join(f"{part:>12}" for part in parts) + "       total")
    for label, sales, _wall, cpu in results:
        cells = [cpu[part] * 1000 / len(sales) for part in parts]
        print(f"  {label:<26}" + "".join(f"{c:>12.1f}" for c in cells) + f"{sum(cells):>12.1f}")
    print("worker CPU ms per sale by process:")
    for label, split in splits:
        print(f"  {label:<26}{split}")


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[rank]
