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
import subprocess
import sys
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


class Worker:
    """A Celery worker process consuming the app's queues (as in the Procfile)."""

    def __init__(self, pool: str = "prefork", concurrency: int = 2, profile: str = "", **env: str) -> None:
        from django.conf import settings

        from config.celery import app

        app.control.purge()
        self.name = f"bench-sync-{os.getpid()}@%h"
        if profile:  # one process (solo pool) under cProfile; the stats are written when it stops
            pool, concurrency = "solo", 1
            launcher = [sys.executable, "-m", "cProfile", "-o", profile, str(VENV_BIN / "celery")]
        else:
            launcher = [str(VENV_BIN / "celery")]
        command = [
            *launcher,
            "-A",
            "config",
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(concurrency),
            "--queues",
            ",".join(settings.CELERY_WORKER_QUEUES),
            "--hostname",
            self.name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
        self.process = _start(command, **env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("the Celery worker exited at start")
            if app.control.ping(timeout=0.5):
                return
        raise SystemExit("the Celery worker did not answer a ping in 60 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[rank]
