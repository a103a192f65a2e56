"""Benchmark of sales analytics: the admin dashboard and every /api/v1/analytics/ endpoint.

Run it from the project root against a database of its own (created if missing, migrated,
filled once and reused on later runs; --rebuild fills it again):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_analytics .venv/bin/python bench/analytics.py

Data (bulk_create, one account of 100,000 items and 50,000 orders over the last year, plus a
second account a tenth of the size that must not slow the first): items over 60 brands and 20
categories, 80 % with a cost; one shop per channel in settings.CHANNELS; every active item
live on 2-4 shops; every sold item sold on one and ended on the others 5-600 s later; orders
of 1-2 lines (10 % cancelled, 5 % open); a push per listing and 24 pulls a day per shop.

Prints p50/p95 wall time and the query count per page, for the default 30 days and for a
year, all channels and one channel. Not a test: it prints figures (bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

MAIN_SLUG, OTHER_SLUG = "bench-analytics-main", "bench-analytics-other"
BATCH = 5000
SEED = 20261204
BRANDS = [f"Brand {i:02d}" for i in range(60)]
BRAND_WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(BRANDS))]
CATEGORIES = [f"Category {i:02d}" for i in range(20)]
ENDPOINTS = [
    "sales",
    "sales-over-time",
    "top",
    "top?by=item",
    "sell-through",
    "stock",
    "stock-by-shop",
    "platforms",
    "orders",
    "sync-health",
    "ended-everywhere",
]


def ensure_database() -> None:
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"], dbname="postgres"
    ) as conn:
        conn.autocommit = True
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
            conn.execute(f'CREATE DATABASE "{db["NAME"]}"')


def build(account, *, items: int, orders: int, rng: random.Random) -> None:
    """Items, listings, orders, sync runs of one account, in bulk."""
    from django.conf import settings
    from django.utils import timezone

    from inventory.models import ChannelConnection, ChannelListing, Item, Order, OrderLine, SyncRun

    now = timezone.now()
    year = dt.timedelta(days=365)
    connections = [
        ChannelConnection.objects.create(account=account, channel=name, name=f"{name.title()} shop", priority=i)
        for i, name in enumerate(settings.CHANNELS)
    ]
    states = ["active"] * 50 + ["sold"] * 25 + ["shipped"] * 10 + ["draft"] * 10 + ["archived"] * 5
    rows = []
    for n in range(items):
        state = rng.choice(states)
        price = Decimal(rng.randint(20, 5000))
        multi = rng.random() < 0.1
        on_hand = 0 if state in ("sold", "shipped") else (rng.randint(2, 20) if multi else 1)
        sold_at = now - year * rng.random() if state in ("sold", "shipped") else None
        rows.append(
            Item(
                account=account,
                sku=f"{account.slug[-5:]}-{n:07d}",
                title=f"Bench item {n}",
                brand=rng.choices(BRANDS, BRAND_WEIGHTS)[0],
                category=rng.choice(CATEGORIES),
                price=price,
                cost=(price * Decimal("0.6")).quantize(Decimal("0.01")) if rng.random() < 0.8 else None,
                quantity_on_hand=on_hand,
                state=state,
                sold_at=sold_at,
                sold_recorded_at=sold_at + dt.timedelta(seconds=rng.randint(1, 30)) if sold_at else None,
            )
        )
    created = []
    for start in range(0, len(rows), BATCH):
        created += Item.objects.bulk_create(rows[start : start + BATCH])
    listings, sold_items = [], []
    for item in created:
        if item.state not in ("active", "sold", "shipped"):
            continue
        shops = rng.sample(connections, rng.randint(2, 4))
        listed = (item.sold_at or now) - dt.timedelta(days=rng.randint(1, 120))
        for i, conn in enumerate(shops):
            fields = {"account": account, "item": item, "connection": conn, "created_at": listed}
            if item.state == "active":
                fields.update(actual_state="live" if rng.random() > 0.02 else "error")
            elif i == 0:
                fields.update(desired_state="ended", actual_state="sold", end_reason="sold_here")
            else:
                fields.update(
                    desired_state="ended",
                    actual_state="ended",
                    end_reason="sold_elsewhere",
                    ended_at=item.sold_recorded_at + dt.timedelta(seconds=rng.randint(5, 600)),
                )
            listings.append(ChannelListing(**fields))
        if item.state != "active":
            sold_items.append((item, shops[0]))
    for start in range(0, len(listings), BATCH):
        ChannelListing.objects.bulk_create(listings[start : start + BATCH])
    order_rows, line_specs = [], []
    active = [item for item in created if item.state == "active"]
    for n in range(orders):
        if n < len(sold_items):
            item, conn = sold_items[n]
            placed, status, price = item.sold_at, "completed", item.price
        else:
            item, conn = rng.choice(active), rng.choice([*connections, None])
            placed, price = now - year * rng.random(), item.price
            status = rng.choices(["completed", "cancelled", "open"], [85, 10, 5])[0]
        order_rows.append(
            Order(
                account=account,
                channel=conn.channel if conn else "manual",
                connection=conn,
                external_id=f"B{n:07d}",
                placed_at=placed,
                status=status,
                total=price,
                shipped_at=placed + dt.timedelta(days=2) if status == "completed" and rng.random() < 0.7 else None,
            )
        )
        line_specs.append([(item, 1, price)] + ([(rng.choice(active), 1, Decimal(25))] if rng.random() < 0.2 else []))
    made = []
    for start in range(0, len(order_rows), BATCH):
        made += Order.objects.bulk_create(order_rows[start : start + BATCH])
    lines = [
        OrderLine(order=order, item=item, quantity=q, unit_price=p, sku=item.sku, title=item.title)
        for order, specs in zip(made, line_specs, strict=True)
        for item, q, p in specs
    ]
    for start in range(0, len(lines), BATCH):
        OrderLine.objects.bulk_create(lines[start : start + BATCH])
    runs = []
    for listing in listings:
        runs.append(
            SyncRun(
                account=account,
                connection=listing.connection,
                kind="push",
                status="ok" if rng.random() > 0.03 else "failed",
                finished_at=now,
            )
        )
    for conn in connections:
        for hour in range(0, 365 * 24, 24 * 365 // 2000 or 1):
            runs.append(
                SyncRun(
                    account=account,
                    connection=conn,
                    kind="pull",
                    status="ok" if rng.random() > 0.05 else "failed",
                    created=rng.randint(0, 3),
                    finished_at=now - dt.timedelta(hours=hour),
                )
            )
    for start in range(0, len(runs), BATCH):
        SyncRun.objects.bulk_create(runs[start : start + BATCH])
    _spread_dates(account, now)


def _spread_dates(account, now) -> None:
    """auto_now_add fields were set to now by bulk_create: spread them over the year in SQL."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE inventory_channellisting l SET created_at = COALESCE(i.sold_at, %s) - (l.id %% 120 + 1) * interval '1 day'"
            " FROM inventory_item i WHERE l.item_id = i.id AND l.account_id = %s",
            [now, account.pk],
        )
        cursor.execute(
            "UPDATE inventory_syncrun SET started_at = COALESCE(finished_at, %s) - interval '2 seconds' WHERE account_id = %s",
            [now, account.pk],
        )
        cursor.execute(
            "UPDATE inventory_syncrun SET started_at = %s - (id %% 365) * interval '1 day' WHERE account_id = %s AND kind = 'push'",
            [now, account.pk],
        )
        cursor.execute("UPDATE inventory_order SET created_at = placed_at WHERE account_id = %s", [account.pk])
        cursor.execute(
            "UPDATE inventory_item i SET sold_on_id = l.connection_id FROM inventory_channellisting l"
            " WHERE l.item_id = i.id AND l.end_reason = 'sold_here' AND i.account_id = %s",
            [account.pk],
        )
        cursor.execute("VACUUM ANALYZE")  # as autovacuum would have: visibility map for index-only scans


def ensure_data(rebuild: bool):
    from accounts.models import Account
    from accounts.services import account_create, staff_user_create
    from billing.models import Plan
    from billing.services import plan_assign

    existing = Account.objects.filter(slug=MAIN_SLUG).first()
    if existing and not rebuild:
        from accounts.models import User

        return existing, User.objects.get(username="bench-analytics")
    if existing:
        raise SystemExit("--rebuild: drop and recreate the database first (it holds PROTECTed rows).")
    rng = random.Random(SEED)
    started = time.monotonic()
    main = account_create(name="Bench analytics", slug=MAIN_SLUG)
    other = account_create(name="Bench analytics other", slug=OTHER_SLUG)
    for account in (main, other):
        plan_assign(account=account, plan=Plan.objects.get(code="business"))
    user = staff_user_create(account=main, username="bench-analytics", password="bench-analytics-pass-1")
    build(main, items=ARGS.items, orders=ARGS.orders, rng=rng)
    build(other, items=ARGS.items // 10, orders=ARGS.orders // 10, rng=rng)
    print(f"Built the data in {time.monotonic() - started:.0f} s")
    return main, user


def measure(client, url: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection

    executed = []

    def count(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.content[:500])
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, len(executed)


def main() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://... to a database of its own.")
    django.setup()
    from django.conf import settings

    settings.CACHES["default"]["KEY_PREFIX"] = "bench-analytics"
    ensure_database()
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from inventory.models import Item, Order

    call_command("migrate", verbosity=0)
    account, user = ensure_data(ARGS.rebuild)
    setup_test_environment()
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # One connection for the whole run (as a pooled worker has), so the query log is not reset per request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    client = Client()
    client.force_login(user)
    print(
        f"Main account: {Item.objects.filter(account=account).count():,} items, "
        f"{Order.objects.filter(account=account).count():,} orders; load {os.getloadavg()[0]:.1f}; "
        f"ANALYTICS_SUMMARY_MAX_AGE={settings.ANALYTICS_SUMMARY_MAX_AGE} s"
        + (
            " (0: every figure computed live, as before the summaries)"
            if not settings.ANALYTICS_SUMMARY_MAX_AGE
            else ""
        )
    )
    filters = [
        ("30 days", "period=30d"),
        ("365 days", "period=365d"),
        ("365 days, reverb", "period=365d&channel=reverb"),
    ]
    print("| Page | Filter | p50 ms | p95 ms | Queries |\n|---|---|---|---|---|")
    summaries = settings.ANALYTICS_SUMMARY_MAX_AGE > 0
    for label, query in filters:
        p50, p95, n = measure(client, f"/admin/?{query}", ARGS.repeat)
        print(f"| admin dashboard | {label} | {p50:.0f} | {p95:.0f} | {n} |")
        if summaries:  # "Refresh now": every figure computed live and stored
            p50, p95, n = measure(client, f"/admin/?{query}&fresh=1", ARGS.repeat)
            print(f"| admin dashboard, fresh=1 | {label} | {p50:.0f} | {p95:.0f} | {n} |")
    for label, query in filters[1:2] if not ARGS.all_filters else filters:
        for endpoint in ENDPOINTS:
            sep = "&" if "?" in endpoint else "?"
            path, _, extra = endpoint.partition("?")
            p50, p95, n = measure(
                client, f"/api/v1/analytics/{path}/?{query}{sep if extra else ''}{extra}", ARGS.repeat
            )
            print(f"| /api/v1/analytics/{endpoint} | {label} | {p50:.0f} | {p95:.0f} | {n} |")
        p50, p95, n = measure(client, f"/api/v1/analytics/sales/?{query}&format=csv", ARGS.repeat)
        print(f"| /api/v1/analytics/sales (CSV) | {label} | {p50:.0f} | {p95:.0f} | {n} |")
        for endpoint in ENDPOINTS if summaries else ():
            path, _, extra = endpoint.partition("?")
            url = f"/api/v1/analytics/{path}/?{query}&fresh=1{'&' + extra if extra else ''}"
            p50, p95, n = measure(client, url, ARGS.repeat)
            print(f"| /api/v1/analytics/{endpoint}, fresh=1 | {label} | {p50:.0f} | {p95:.0f} | {n} |")
    if summaries:
        from inventory.services.analytics.summary import summaries_refresh

        started = time.perf_counter()
        done = summaries_refresh(older_than=dt.timedelta(0))
        print(f"Beat refresh of every figure read above: {done} figures in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=10, help="requests per page (default 10)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--all-filters", action="store_true", help="every endpoint with every filter, not just a year")
    ARGS = parser.parse_args()
    main()
