"""One Reverb connection's listing scan, in process: the first pull, then the steady-state scan.

Run it from the project root:

    .venv/bin/python bench/reverb_scan.py                        # 1 shop x 10,000 listings
    .venv/bin/python bench/reverb_scan.py --listings 2000 --profile /tmp/scan.prof --top 30

Uses the database and Redis of bench/sync_stack.py (default database `bench_sync`, emptied at
the start). The listings are built as bench/sync_reconcile.py builds them (live on the loopback
Reverb, ChannelListing rows live with what was pushed). Then, with inventory.services.sync's
connection_pull as a Celery worker runs it:
- the first pull (no watermark yet; it reads every listing and links them);
- the steady-state scan: the watermark is set, every listing is linked and unchanged, and the
  listing scan is due (a pull with `full_scan`, which takes the same listing path as a scan
  that fell due), run --repeat times;
- the same scan after --drift listings changed on Reverb (half repriced, half ended there),
  which it must find.

The loopback Reverb runs in this process's threads (it shares the GIL and the cores), so the
time is split: CPU of the thread that runs the pull (what a worker process would spend, with
its PostgreSQL client side), CPU of the other threads (the marketplace rendering and serving
pages, not a cost of ours on the real Reverb), CPU of the PostgreSQL backend serving this
process, and wall time. The pull's own thread is profiled with cProfile (--top functions by
own time, and by cumulative time). Printed with the SQL statements and the SyncRun's counts.
It is not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from contextlib import redirect_stdout
from decimal import Decimal

import sync_reconcile
import sync_stack


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def measured_pull(connection, sandbox, *, full_scan: bool, profile: cProfile.Profile | None = None) -> dict:
    """One connection_pull, with its cost split by where it was spent."""
    from inventory.models import SyncRun
    from inventory.services.sync import connection_pull

    sandbox.reset_log()
    pg = backend_pid()
    with sync_reconcile.counting_statements() as statements:
        pg_cpu = sync_stack.cpu_seconds([pg])
        wall, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
        if profile is not None:
            profile.enable()
        run = connection_pull(connection_id=connection.pk, full_scan=full_scan)
        if profile is not None:
            profile.disable()
        wall, thread, process = (
            time.perf_counter() - wall,
            time.thread_time() - thread,
            time.process_time() - process,
        )
        pg_cpu = sync_stack.cpu_seconds([pg]) - pg_cpu
    run = SyncRun.objects.get(pk=run.pk)
    return {
        "wall": wall,
        "worker_cpu": thread,
        "sandbox_cpu": process - thread,
        "pg_cpu": pg_cpu,
        "statements": sum(statements.values()),
        "by_kind": dict(statements.most_common()),
        "pages": sandbox.calls(method="GET", path_prefix="/my/listings"),
        "writes": sandbox.writes,
        "run": run,
    }


def show(label: str, figures: dict, listings: int) -> None:
    run = figures["run"]
    print(f"\n{label}")
    print(
        f"  wall {figures['wall']:.2f} s; CPU: pull's thread {figures['worker_cpu']:.2f} s (the worker), "
        f"marketplace threads {figures['sandbox_cpu']:.2f} s, PostgreSQL backend {figures['pg_cpu']:.2f} s"
    )
    per = figures["worker_cpu"] / max(listings, 1) * 1e6
    print(
        f"  worker CPU per listing: {per:.0f} us ({figures['worker_cpu'] * 10_000 / max(listings, 1):.2f} s per 10,000)"
    )
    print(
        f"  {figures['pages']} listing page reads, {figures['writes']} marketplace writes; SQL statements: "
        f"{figures['statements']} ({', '.join(f'{k} {v}' for k, v in figures['by_kind'].items())})"
    )
    print(
        f"  SyncRun: {run.status}, created {run.created}, updated {run.updated}, ended {run.ended}, "
        f"skipped {run.skipped}, errors {run.errors}, api_calls {run.api_calls}, {run.duration_ms} ms"
    )


def print_profile(profile: cProfile.Profile, top: int) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.strip_dirs().sort_stats(order).print_stats(top)
        lines = out.getvalue().splitlines()
        start = next((n for n, line in enumerate(lines) if "ncalls" in line), 0)
        print(f"\n  cProfile of the pull's thread (its CPU time), top {top} by {order}:")
        for line in lines[start : start + top + 1]:
            print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="steady-state scans measured")
    parser.add_argument("--drift", type=int, default=20, help="listings changed on Reverb before the last scan")
    parser.add_argument("--top", type=int, default=20, help="functions shown from the profile")
    parser.add_argument("--profile", default="", help="also write the steady scan's pstats here")
    args = parser.parse_args()

    sync_stack.setup()
    from channels_reverb.sandbox import ReverbSandbox
    from config.celery import app
    from inventory.models import ChannelListing

    print(sync_stack.machine())
    account = sync_stack.shop()
    ok = True
    with ReverbSandbox() as sandbox:
        connection = sync_stack.market_connection(account, sandbox, "Reverb", 1)
        with redirect_stdout(io.StringIO()):
            sync_reconcile.build(account, connection, sandbox, args.listings)
        print(f"1 shop x {args.listings:,} live listings, linked and unchanged; pid {os.getpid()}")

        first = measured_pull(connection, sandbox, full_scan=False)
        show("first pull (no watermark yet: reads every listing)", first, args.listings)
        ok &= first["run"].status == "ok" and first["run"].errors == 0
        app.control.purge()

        steady = []
        for n in range(args.repeat):
            figures = measured_pull(connection, sandbox, full_scan=True)
            steady.append(figures)
            show(
                f"steady-state scan {n + 1} (watermark set, all linked and unchanged, scan due)", figures, args.listings
            )
            run = figures["run"]
            ok &= (run.status, run.errors, run.updated, run.ended, run.created) == ("ok", 0, 0, 0, 0)
            ok &= figures["writes"] == 0
        # One more, profiled by the thread's CPU time (not wall: waiting on PostgreSQL or on the
        # marketplace's threads is not the worker's CPU); the profiler itself slows it down.
        profile = cProfile.Profile(time.thread_time)
        measured_pull(connection, sandbox, full_scan=True, profile=profile)
        print_profile(profile, args.top)
        if args.profile:
            profile.dump_stats(args.profile)
            print(f"\n  (pstats written to {args.profile})")
        best = min(steady, key=lambda f: f["worker_cpu"])
        print(
            f"\nsteady-state scan of {args.listings:,}: worker CPU best {best['worker_cpu']:.2f} s, "
            f"median {sorted(f['worker_cpu'] for f in steady)[len(steady) // 2]:.2f} s; "
            f"wall best {min(f['wall'] for f in steady):.2f} s"
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
        changed = measured_pull(connection, sandbox, full_scan=True)
        show(
            f"scan after {half} prices changed and {args.drift - half} listings ended on Reverb", changed, args.listings
        )
        run = changed["run"]
        found = (run.status, run.errors, run.updated) == ("ok", 0, args.drift)
        print(f"  found every change: {'ok' if found else 'FAILED'} (updated {run.updated} of {args.drift})")
        ok &= found
    app.control.purge()
    print(f"\nmachine after the run: {sync_stack.machine()}")
    print(f"checks: {'ok' if ok else 'FAILED'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
