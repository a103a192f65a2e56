"""Load test: many shops with many listings on real workers, and an HTTP load of the API and admin.

Run it from the project root:

    .venv/bin/python bench/load.py                          # 100 shops x 10,000 listings, 1/2/4 workers
    .venv/bin/python bench/load.py --no-audit --http-seconds 0   # the pulls and scans only
    .venv/bin/python bench/load.py --scale 0.01             # 100 shops x 100 listings (a quick run)
    .venv/bin/python bench/load.py --accounts 20 --listings 500 --workers 2 --http-seconds 30

Uses the database and Redis of bench/sync_stack.py (default database `bench_sync`, emptied at the
start). Each shop has its own loopback Reverb (channels_reverb.sandbox, one seller each, in this
process) and one connection to it; its items, their live listings there and the matching
ChannelListing rows are made in bulk (bulk_create, as bench/sync_reconcile.py builds them).

Then, for each worker count (--workers, default 1,2,4 worker processes: one Celery worker with
that prefork concurrency, consuming every queue as in the Procfile):
- the scheduled pulls: two sales are made on each shop's marketplace, then every connection's
  pull is queued at once, as beat does each pull interval, with the listing scans of one
  interval due (shops x pull interval / scan interval of them: scans are spread over their
  interval); the time until the last pull's SyncRun finished must be inside the connections'
  pull interval (60 s by default). Before the first count, the first pulls (no watermark yet)
  and every listing scan at once (steady state: linked, unchanged) are timed and shown apart;
- the nightly audit: inventory.reconcile_all is queued, as beat does at night; it fans out one
  reconcile per connection, which reads every live listing back; the time until the last one
  finished is compared with the night (24 h), extrapolated linearly in listings when --scale < 1.
Every run must end "ok" with no error, and the pulls must have recorded every sale.

Then (unless --http-seconds 0) gunicorn serves the app (2 workers x 2 threads, LOG_FORMAT=json,
the access lines into a file) and locust (headless, bench/locustfile.py) drives the API by token and
the admin by session at a fixed offered rate (--http-users x --http-rate requests per second);
printed: requests, failures, p50/p95/p99 and the achieved rate, per endpoint and overall.
The machine's load average is printed before and after. It is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sync_reconcile
import sync_stack

NIGHT_SECONDS = 24 * 3600


def build(accounts: int, listings: int, stack: contextlib.ExitStack) -> list[tuple]:
    """Shops, each with a loopback Reverb, a connection and `listings` live listings there."""
    from channels_reverb.sandbox import ReverbSandbox

    shops = []
    started = time.monotonic()
    for n in range(accounts):
        account = sync_stack.shop(slug=f"load-{n:03d}")
        sandbox = stack.enter_context(ReverbSandbox())
        connection = sync_stack.market_connection(account, sandbox, "Reverb", 1)
        with contextlib.redirect_stdout(io.StringIO()):
            sync_reconcile.build(account, connection, sandbox, listings)
        shops.append((account, sandbox, connection))
        if (n + 1) % 10 == 0 or n + 1 == accounts:
            print(f"  built {n + 1} shops x {listings:,} listings in {time.monotonic() - started:.0f} s", flush=True)
    return shops


def wait_for_runs(kind: str, since, count: int, timeout: float) -> list:
    """The `count` SyncRuns of `kind` started after `since`, once all have finished."""
    from inventory.models import SyncRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = list(SyncRun.objects.filter(kind=kind, started_at__gte=since))
        if len(runs) >= count and all(run.finished_at for run in runs):
            return runs
        time.sleep(0.25)
    raise SystemExit(f"{kind}: not all {count} runs finished within {timeout:.0f} s")


def scans_due_in_one_interval(shops: list[tuple], sale_round: int) -> int:
    """Make due the listing scans that one pull interval carries in steady state, and no others.

    Scans are spread over their interval (a moment per connection), so each pull interval
    carries shops x pull interval / scan interval of them. Left alone between rounds (no beat
    runs here while an audit takes minutes), every scan would fall due at once and a round
    would time a backlog that a running system never builds; so the share of one interval is
    made due (a different set each round) and the rest are put ahead. Returns how many."""
    import math

    from django.utils import timezone

    from channels_reverb.models import ReverbConnection

    connections = [connection for *_, connection in shops]
    fresh = {row.pk: row for row in ReverbConnection.objects.filter(pk__in=[c.pk for c in connections])}
    pull_interval = min(connection.pull_interval_seconds for connection in connections)
    scan_interval = max(
        max(row.listing_scan_interval_seconds, row.listing_scan_effective_seconds or 0) for row in fresh.values()
    )
    due = min(len(connections), math.ceil(len(connections) * pull_interval / scan_interval))
    start = (sale_round * due) % len(connections)
    chosen = [connections[(start + n) % len(connections)].pk for n in range(due)]
    now = timezone.now()
    ReverbConnection.objects.filter(pk__in=fresh).update(listing_scan_next_at=now + timezone.timedelta(days=1))
    ReverbConnection.objects.filter(pk__in=chosen).update(listing_scan_next_at=now)
    return due


def pulls(shops: list[tuple], sale_round: int, *, steady: bool = True) -> dict:
    """Two sales on every shop's marketplace, then every connection's pull queued at once.

    steady: with the listing scans of one interval due (scans_due_in_one_interval), as beat
    meets them; False for the first pulls, which read every listing anyway."""
    from django.utils import timezone

    from inventory.models import ChannelListing, Order, SyncKind
    from inventory.tasks import enqueue_pull

    scans_due = scans_due_in_one_interval(shops, sale_round) if steady else None

    for _account, sandbox, connection in shops:
        ids = list(
            ChannelListing.objects.filter(connection=connection)
            .order_by("pk")
            .values_list("external_id", flat=True)[sale_round * 2 : sale_round * 2 + 2]
        )
        for external_id in ids:
            sandbox.simulate_sale(int(external_id))
    sales_before = Order.objects.count()
    since = timezone.now()
    started = time.perf_counter()
    for _account, _sandbox, connection in shops:
        enqueue_pull(connection.pk)
    runs = wait_for_runs(SyncKind.PULL, since, len(shops), timeout=1800)
    wall = max(run.finished_at for run in runs) - since
    return {
        "wall": wall.total_seconds(),
        "measured": time.perf_counter() - started,
        "ok": sum(run.status == "ok" for run in runs),
        "errors": sum(run.errors for run in runs),
        "runs": len(runs),
        "sales": Order.objects.count() - sales_before,
        "interval": min(connection.pull_interval_seconds for *_, connection in shops),
        "scans_due": scans_due,
    }


def forced_scans(shops: list[tuple], worker) -> dict:
    """Every connection's listing scan made due at once (watermark set, listings linked and
    unchanged), then every pull queued: the steady-state scan, timed and its worker CPU counted."""
    from django.utils import timezone

    from channels_reverb.models import ReverbConnection
    from inventory.models import SyncKind
    from inventory.tasks import enqueue_pull

    ids = [connection.pk for *_, connection in shops]
    ReverbConnection.objects.filter(pk__in=ids).update(listing_scan_next_at=timezone.now())
    for _account, sandbox, _connection in shops:
        sandbox.reset_log()
    pids = sync_stack.process_tree(worker.process.pid)
    cpu = sync_stack.cpu_seconds(pids)
    since = timezone.now()
    for connection_id in ids:
        enqueue_pull(connection_id)
    runs = wait_for_runs(SyncKind.PULL, since, len(shops), timeout=1800)
    cpu = sync_stack.cpu_seconds(pids) - cpu
    scanned = ReverbConnection.objects.filter(pk__in=ids)
    return {
        "wall": (max(run.finished_at for run in runs) - since).total_seconds(),
        "worker_cpu": cpu,
        "durations": sorted(run.duration_ms / 1000 for run in runs),
        "ok": sum(run.status == "ok" for run in runs),
        "errors": sum(run.errors for run in runs),
        "written": sum(run.updated + run.created + run.ended for run in runs),
        "runs": len(runs),
        "pages": sum(sandbox.calls(method="GET", path_prefix="/my/listings") for *_, sandbox, _c in shops),
        "summary": scanned.first().listing_scan_summary,
        "effective": sorted({c.listing_scan_effective_seconds for c in scanned}),
        "next": sorted(c.listing_scan_next_at for c in scanned),
    }


def audit(shops: list[tuple]) -> dict:
    """The nightly read-back of every live listing: inventory.reconcile_all, as beat queues it."""
    from django.utils import timezone

    from inventory.models import ChannelListing, SyncKind
    from inventory.tasks import reconcile_all_task

    live = ChannelListing.objects.filter(actual_state="live").count()
    for _account, sandbox, _connection in shops:
        sandbox.reset_log()
    since = timezone.now()
    reconcile_all_task.delay()
    runs = wait_for_runs(SyncKind.AUDIT, since, len(shops), timeout=3 * 3600)
    wall = (max(run.finished_at for run in runs) - since).total_seconds()
    return {
        "wall": wall,
        "live": live,
        "ok": sum(run.status == "ok" for run in runs),
        "errors": sum(run.errors for run in runs),
        "runs": len(runs),
        "api_calls": sum(sandbox.calls(method="GET") for _account, sandbox, _connection in shops),
        "per_second": live / wall if wall else float("nan"),
    }


def sync_rounds(
    shops: list[tuple], workers: list[int], full_listings: int, listings: int, accounts: int, *, with_audit: bool = True
) -> bool:
    from config.celery import app

    ok = True
    rows = []
    for round_number, count in enumerate(workers):
        print(f"\n{count} worker process(es): {sync_stack.machine()}", flush=True)
        worker = sync_stack.Worker(concurrency=count)
        try:
            if round_number == 0:
                # A connection's first pull has no watermark yet and reads more than the ones beat
                # repeats each interval: shown, and kept out of the comparison between worker counts.
                first = pulls(shops, len(workers), steady=False)
                print(
                    f"  first pulls (no watermark yet): {first['runs']} connections in {first['wall']:.1f} s; "
                    f"{first['ok']} ok, {first['errors']} errors, {first['sales']} sales recorded",
                    flush=True,
                )
                scans = forced_scans(shops, worker)
                per = scans["durations"]
                print(
                    f"  steady-state listing scans (all due at once): {scans['runs']} connections in "
                    f"{scans['wall']:.1f} s wall, {scans['worker_cpu']:.1f} s CPU of the worker processes "
                    f"({scans['worker_cpu'] / scans['runs']:.2f} s per connection); each pull took "
                    f"{per[0]:.1f}-{per[-1]:.1f} s; {scans['pages']} page reads; "
                    f"{scans['ok']} ok, {scans['errors']} errors, {scans['written']} listings changed",
                    flush=True,
                )
                spread = [f"{n:%H:%M:%S}" for n in scans["next"]]
                print(
                    f"    effective interval(s) {scans['effective']} s; next scans at {', '.join(spread)}", flush=True
                )
                print(f"    shown to staff: {scans['summary']}", flush=True)
                ok &= scans["ok"] == scans["runs"] == len(shops) and scans["errors"] == scans["written"] == 0
            pulled = pulls(shops, round_number)
            print(
                f"  pulls: {pulled['runs']} connections pulled in {pulled['wall']:.1f} s, "
                f"{pulled['scans_due']} of them with their listing scan due "
                f"(interval {pulled['interval']} s: {'inside' if pulled['wall'] < pulled['interval'] else 'OUTSIDE'}); "
                f"{pulled['ok']} ok, {pulled['errors']} errors, {pulled['sales']} sales recorded "
                f"({pulled['runs'] / pulled['wall']:.1f} pulls/s)",
                flush=True,
            )
            good = (
                pulled["ok"] == pulled["runs"] == len(shops)
                and pulled["errors"] == 0
                and pulled["sales"] == 2 * len(shops)
                and pulled["wall"] < pulled["interval"]
            )
            audited, projected = None, None
            if with_audit:
                audited = audit(shops)
                full = accounts * full_listings
                projected = full / audited["per_second"]
                print(
                    f"  audit: {audited['live']:,} live listings read back in {audited['wall']:.1f} s "
                    f"({audited['per_second']:.0f} listings/s, {audited['api_calls']:,} page reads); "
                    f"{audited['ok']}/{audited['runs']} ok, {audited['errors']} errors",
                    flush=True,
                )
                print(
                    f"    at {accounts} x {full_listings:,} = {full:,} listings: about {projected / 3600:.1f} h "
                    f"of the {NIGHT_SECONDS // 3600} h night"
                    + (" (extrapolated linearly from this run)" if listings != full_listings else ""),
                    flush=True,
                )
                good &= audited["errors"] == 0 and audited["ok"] == audited["runs"] == len(shops)
            print(f"  checks: {'ok' if good else 'FAILED'}", flush=True)
            ok &= good
            rows.append((count, pulled, audited, projected))
        finally:
            worker.stop()
            app.control.purge()
    if len(rows) > 1:
        print("\nscaling (throughput relative to the first worker count):")
        base_pull = rows[0][1]["runs"] / rows[0][1]["wall"]
        for count, pulled, audited, projected in rows:
            line = f"  {count} worker(s): pulls {pulled['runs'] / pulled['wall']:.1f}/s (x{pulled['runs'] / pulled['wall'] / base_pull:.2f})"
            if audited:
                base_audit = rows[0][2]["per_second"]
                line += (
                    f", audit {audited['per_second']:.0f} listings/s (x{audited['per_second'] / base_audit:.2f}), "
                    f"full night audit ~{projected / 3600:.1f} h"
                )
            print(line)
    return ok


def http_load(shops: list[tuple], *, users: int, rate: float, seconds: int) -> bool:
    """gunicorn + locust headless at users x rate requests per second; p50/p95/p99 and failures."""
    from accounts.services import api_token_create, staff_user_create
    from inventory.models import Item

    account = shops[0][0]
    password = "bench-load-password-1"
    user = staff_user_create(account=account, username="load-owner", password=password, email="load@example.com")
    _token, key = api_token_create(user=user, name="load", scope="read")
    item_ids = list(Item.objects.filter(account=account).order_by("pk").values_list("pk", flat=True)[:200])

    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    port = sync_stack.free_port()
    host = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LOG_FORMAT": "json", "DJANGO_LOG_LEVEL": "WARNING"}
    with open(workdir / "gunicorn.log", "w") as log:
        web = subprocess.Popen(
            [
                str(sync_stack.VENV_BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--threads",
                "2",
                "--log-level",
                "warning",
            ],
            cwd=sync_stack.ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            import requests

            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(host + "/health/live/", timeout=5)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline or web.poll() is not None:
                        raise SystemExit("gunicorn did not start") from None
                    time.sleep(0.2)
            print(
                f"\nHTTP: {users} users x {rate:g} req/s = {users * rate:g} req/s offered for {seconds} s "
                f"(gunicorn 2 workers x 2 threads); {sync_stack.machine()}",
                flush=True,
            )
            subprocess.run(
                [
                    str(sync_stack.VENV_BIN / "locust"),
                    "-f",
                    str(sync_stack.ROOT / "bench" / "locustfile.py"),
                    "--headless",
                    "--users",
                    str(users),
                    "--spawn-rate",
                    str(users),
                    "--run-time",
                    f"{seconds}s",
                    "--host",
                    host,
                    "--csv",
                    str(workdir / "locust"),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=sync_stack.ROOT,
                env={
                    **env,
                    "BENCH_TOKEN": key,
                    "BENCH_ADMIN_USER": user.username,
                    "BENCH_ADMIN_PASSWORD": password,
                    "BENCH_ITEM_IDS": ",".join(map(str, item_ids)),
                    "BENCH_RATE_PER_USER": str(rate),
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        finally:
            web.terminate()
            web.wait(timeout=30)
    with open(workdir / "locust_stats.csv") as stats:
        rows = list(csv.DictReader(stats))
    print(f"  {'endpoint':44} {'requests':>8} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'req/s':>6}")
    for row in rows:
        label = row["Name"] if row["Name"] != "Aggregated" else "all"
        print(
            f"  {label[:44]:44} {row['Request Count']:>8} {row['Failure Count']:>5} {row['50%']:>6} "
            f"{row['95%']:>6} {row['99%']:>6} {float(row['Requests/s']):>6.1f}"
        )
    total = rows[-1]
    with open(workdir / "gunicorn.log") as log:
        lines = [line for line in log if line.startswith("{")]
    print(f"  (milliseconds; {len(lines):,} JSON log lines with request ids in {workdir / 'gunicorn.log'})")
    failures_file = workdir / "locust_failures.csv"
    if failures_file.exists():
        with open(failures_file) as failures:
            for row in list(csv.DictReader(failures))[:5]:
                print(f"  failure: {row}")
    return int(total["Failure Count"]) == 0 and int(total["Request Count"]) > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--listings", type=int, default=10_000, help="listings per shop at full scale")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of --listings actually built")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to measure, comma separated")
    parser.add_argument("--http-users", type=int, default=10)
    parser.add_argument("--http-rate", type=float, default=2.0, help="requests per second per user")
    parser.add_argument("--http-seconds", type=int, default=60, help="0: no HTTP load")
    parser.add_argument(
        "--audit", action=argparse.BooleanOptionalAction, default=True, help="time the nightly audit per worker count"
    )
    args = parser.parse_args()
    listings = max(1, round(args.listings * args.scale))
    workers = [int(x) for x in args.workers.split(",") if x]

    sync_stack.setup()
    print(sync_stack.machine())
    print(f"{args.accounts} shops x {listings:,} listings (scale {args.scale:g} of {args.listings:,})")
    with contextlib.ExitStack() as stack:
        shops = build(args.accounts, listings, stack)
        ok = (
            sync_rounds(shops, workers, args.listings, listings, args.accounts, with_audit=args.audit)
            if workers
            else True
        )
        if args.http_seconds:
            ok &= http_load(shops, users=args.http_users, rate=args.http_rate, seconds=args.http_seconds)
    print(f"\nmachine after the run: {sync_stack.machine()}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
