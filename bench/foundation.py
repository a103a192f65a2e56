"""Benchmark of the foundation on PostgreSQL: list pages, bulk transition, CSV export.

Run it from the project root (it sets up Django and migrates its own database):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_backoffice .venv/bin/python bench/foundation.py

It builds N items (default 100,000) for one account plus N/10 for a second account,
reuses them on later runs, and prints p50/p95 per page of the admin item changelist and
of the API item list, the time of a bulk transition of 10,000 items, and the time and
peak memory of the streaming CSV export. It is not a test: it prints figures.
See bench/README.md for the figures measured and what they mean.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import string
import sys
import time
import tracemalloc
from collections import Counter
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Production-like: DEBUG off (no query log, no debug toolbar of any kind).
os.environ.setdefault("DJANGO_DEBUG", "false")
# The filter-option cache lives in Redis in production; use a database of its own here.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

MAIN_SLUG = "bench-main"
OTHER_SLUG = "bench-other"
BATCH = 5000
SEED = 20240601

# --- Realistic-looking stock -------------------------------------------------------------

BRANDS = [
    "Fender", "Gibson", "Ibanez", "Boss", "Marshall", "Gretsch", "Martin", "Taylor", "PRS", "Epiphone",
    "Squier", "Yamaha", "Vox", "Orange", "Mesa/Boogie", "Electro-Harmonix", "MXR", "Strymon", "Eventide",
    "Rickenbacker", "Guild", "Music Man", "Jackson", "ESP", "Schecter", "Danelectro", "Hofner", "Ampeg",
    "Fulltone", "Walrus Audio", "JHS", "Keeley", "Line 6", "Kemper", "Roland", "Korg", "Moog", "Dunlop",
    "TC Electronic", "Suhr", "Collings", "Eastman", "Godin", "Washburn", "Peavey", "Hiwatt", "Supro",
    "Silvertone", "Kay", "Harmony", "Takamine", "Ovation", "Gallien-Krueger", "Tech 21", "Catalinbread",
    "Chase Bliss", "EarthQuaker Devices", "Hughes & Kettner", "Friedman", "Dr. Z",
]  # fmt: skip
BRAND_WEIGHTS = [1 / (rank + 1) ** 0.9 for rank in range(len(BRANDS))]
CATEGORIES = [
    ("Electric Guitars", 30), ("Effects and Pedals", 20), ("Amps", 12), ("Acoustic Guitars", 10),
    ("Bass Guitars", 7), ("Keyboards and Synths", 4), ("Parts", 4), ("Cabinets", 2), ("Amp Heads", 2),
    ("Pro Audio", 2), ("Drums", 1.5), ("Accessories", 1.5), ("Microphones", 1), ("Cases", 1),
    ("Ukuleles", 0.5), ("Mandolins", 0.5), ("Banjos", 0.5), ("Folk Instruments", 0.5), ("DJ Gear", 0.3),
    ("Strings", 0.2),
]  # fmt: skip
MODELS = [
    "Stratocaster", "Telecaster", "Les Paul Standard", "Les Paul Custom", "SG Standard", "ES-335",
    "Jazzmaster", "Jaguar", "Precision Bass", "Jazz Bass", "D-28", "000-18", "814ce", "Custom 24",
    "McCarty 594", "RG550", "AS73", "DS-1 Distortion", "TS9 Tube Screamer", "Big Muff Pi", "JCM800 2203",
    "Plexi 1959SLP", "AC30", "AC15", "Rockerverb 50", "Mark V", "Rectifier", "Timeline", "BigSky", "H9",
    "Deluxe Reverb", "Twin Reverb", "Bassman", "Blues Junior", "Hot Rod Deville", "White Falcon",
    "Country Gentleman", "6120", "Duo Jet", "330", "4003", "StingRay", "Soloist", "Eclipse", "Hellraiser",
    "Longhorn", "Club 40", "SVT Classic", "B-15", "OCD", "Carbon Copy", "Phase 90", "Micro Amp", "Juno-60",
    "Minimoog", "MS-20", "SM57", "Kemper Profiler", "Helix", "Memory Man",
]  # fmt: skip
FINISHES = [
    "Sunburst", "Olympic White", "Black", "Cherry", "Natural", "Fiesta Red", "Sonic Blue", "Goldtop",
    "Tobacco Burst", "Surf Green", "Shell Pink", "Vintage White", "Heritage Cherry Sunburst", "",
]  # fmt: skip
CONDITIONS = [
    ("brand_new", 15), ("mint", 10), ("excellent", 30), ("very_good", 25), ("good", 10),
    ("fair", 4), ("poor", 1), ("non_functioning", 1), ("b_stock", 4),
]  # fmt: skip
# The share of items in each state, and the history each one went through to get there.
STATES = [("active", 50), ("draft", 15), ("sold", 10), ("shipped", 10), ("archived", 15)]
PATHS = {
    "draft": ["draft"],
    "active": ["draft", "active"],
    "sold": ["draft", "active", "sold"],
    "shipped": ["draft", "active", "sold", "shipped"],
    "archived": ["draft", "active", "sold", "shipped", "archived"],
}
DESCRIPTIONS = [
    "All original, plays great, low action and no fret buzz. Electronics clean, pots quiet. "
    "Some finish checking and buckle rash on the back, see photos. Comes with the original case.",
    "Player grade with honest wear. Refret by our tech last year, new nut, set up with 10s. "
    "Neck is straight, truss rod has plenty of adjustment left. Ships in a padded gig bag.",
    "Pedal works perfectly, tested through a clean amp and on the board. Velcro on the bottom, "
    "small scuffs on the enclosure. Box and manual included.",
    "Serviced amp: new filter caps, bias checked, tubes tested strong. Sounds huge, no hum. "
    "Tolex has a small tear on the corner. Local pickup welcome, freight shipping available.",
    "Near mint, barely played, still has the film on the pickguard. All case candy included.",
]
SEARCH_TITLE = "Les Paul"


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def item_specs(count: int, seed: int):
    """Deterministic, realistic item fields: Zipf-like brands, log-normal prices, shelves."""
    rng = random.Random(seed)
    categories, category_weights = zip(*CATEGORIES, strict=True)
    conditions, condition_weights = zip(*CONDITIONS, strict=True)
    states, state_weights = zip(*STATES, strict=True)
    for n in range(count):
        brand = "" if rng.random() < 0.03 else rng.choices(BRANDS, BRAND_WEIGHTS)[0]
        model = rng.choice(MODELS)
        year = str(rng.randint(1952, 2025)) if rng.random() < 0.9 else f"{rng.randint(195, 201)}0s"
        finish = rng.choice(FINISHES)
        price = min(max(rng.lognormvariate(math.log(600), 1.1), 5), 60_000)
        price = round(price) - (0.01 if rng.random() < 0.5 else 0)
        quantity = 1 if rng.random() < 0.88 else rng.randint(2, 25)
        location = (
            "" if rng.random() < 0.1 else f"{rng.choice('ABCDEFGH')}-{rng.randint(1, 30):02d}-{rng.randint(1, 6)}"
        )
        yield {
            "sku": f"{(''.join(ch for ch in brand.upper() if ch.isalnum())[:4] or 'ITM')}-{n:06d}",
            "title": f"{year} {brand} {model} {finish}".replace("  ", " ").strip(),
            "brand": brand,
            "model": model,
            "year": year,
            "finish": finish,
            "category": rng.choices(categories, category_weights)[0],
            "condition": rng.choices(conditions, condition_weights)[0],
            "serial_number": "".join(rng.choices(string.ascii_uppercase + string.digits, k=9)),
            "description": rng.choice(DESCRIPTIONS),
            "price": _money(max(price, 1)),
            "cost": _money(price * 0.6) if rng.random() < 0.7 else None,
            "storage_location": location,
            "quantity": quantity,
            "state": rng.choices(states, state_weights)[0],
        }


def build_account_items(account, count: int, seed: int, user) -> None:
    """bulk_create items, their history (one row per step of their path) and a consistent ledger."""
    from django.db import transaction

    from inventory.models import Item, ItemStateChange, MovementKind, StockMovement

    specs = item_specs(count, seed)
    done = 0
    while done < count:
        batch = [next(specs) for _ in range(min(BATCH, count - done))]
        with transaction.atomic():
            items = []
            for spec in batch:
                fields = {k: v for k, v in spec.items() if k not in ("quantity", "state")}
                sold = spec["state"] in ("sold", "shipped") or (spec["state"] == "archived" and spec["quantity"] == 1)
                items.append(
                    Item(
                        account=account,
                        currency="USD",
                        state=spec["state"],
                        quantity_on_hand=0 if sold else spec["quantity"],
                        **fields,
                    )
                )
            Item.objects.bulk_create(items, batch_size=1000)
            history, ledger = [], []
            for item, spec in zip(items, batch, strict=True):
                path = PATHS[spec["state"]]
                for from_state, to_state in zip(["", *path], path, strict=False):
                    history.append(
                        ItemStateChange(
                            account=account,
                            item=item,
                            from_state=from_state,
                            to_state=to_state,
                            user=user,
                            source="command",
                            reason="created" if not from_state else "bench data",
                        )
                    )
                # Stock arrives through the ledger; sold stock leaves through it, so it adds up.
                ledger.append(
                    StockMovement(
                        account=account,
                        item=item,
                        kind=MovementKind.RECEIVED,
                        on_hand_delta=spec["quantity"],
                        on_hand_after=spec["quantity"],
                        locked_after=0,
                        source="command",
                        reason="initial stock",
                    )
                )
                if item.quantity_on_hand == 0:
                    ledger.append(
                        StockMovement(
                            account=account,
                            item=item,
                            kind=MovementKind.ADJUSTED,
                            on_hand_delta=-spec["quantity"],
                            on_hand_after=0,
                            locked_after=0,
                            source="command",
                            reason="sold in the shop (bench data)",
                        )
                    )
            ItemStateChange.objects.bulk_create(history, batch_size=2000)
            StockMovement.objects.bulk_create(ledger, batch_size=2000)
        done += len(batch)
        print(f"\r  {account.slug}: {done:,}/{count:,} items", end="", flush=True)
    print()


def spread_dates(account) -> None:
    """Items were made over two years, not all in the last minute: spread the timestamps
    (one UPDATE per table; the build ends with VACUUM FULL, so the tables are not bloated)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE inventory_item i SET created_at = r.created, state_changed_at = r.changed, updated_at = r.changed
            FROM (
                SELECT id, created, created + random() * (now() - created) AS changed
                FROM (SELECT id, now() - random() * interval '730 days' AS created
                      FROM inventory_item WHERE account_id = %s) AS x
            ) AS r
            WHERE i.id = r.id;
            UPDATE inventory_itemstatechange h SET
                created_at = CASE WHEN h.from_state = '' THEN i.created_at ELSE i.state_changed_at END
            FROM inventory_item i WHERE h.item_id = i.id AND h.account_id = %s;
            """,
            [account.pk] * 2,
        )


def vacuum() -> None:
    """What autovacuum does soon after a bulk change: keeps later index-only scans honest."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE inventory_item, inventory_itemstatechange")


def ensure_data(items: int, rebuild: bool):
    """The two accounts, their staff and items: reused when they already have the right size."""
    from django.db import connection

    from accounts.models import Account, User
    from accounts.services import account_create, staff_user_create
    from inventory.models import Item

    other_items = max(items // 10, 1)
    main = Account.objects.filter(slug=MAIN_SLUG).first()
    other = Account.objects.filter(slug=OTHER_SLUG).first()
    ready = (
        not rebuild
        and main is not None
        and other is not None
        and Item.objects.filter(account=main).count() == items
        and Item.objects.filter(account=other).count() == other_items
    )
    if ready:
        print(f"Reusing {items:,} + {other_items:,} items already built (--rebuild to start over).")
        return main, other, User.objects.get(username="bench-main"), User.objects.get(username="bench-other")

    print(f"Building {items:,} items for {MAIN_SLUG} and {other_items:,} for {OTHER_SLUG} ...")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # The bench database is ours alone: empty every account-owned table at once.
        cursor.execute("TRUNCATE accounts_account RESTART IDENTITY CASCADE")
        cursor.execute("DELETE FROM django_session")
    main = account_create(name="Bench Main Guitars", slug=MAIN_SLUG)
    other = account_create(name="Bench Other Music", slug=OTHER_SLUG)
    password = "bench-" + "".join(random.choices(string.ascii_letters, k=16))
    main_user = staff_user_create(account=main, username="bench-main", password=password)
    other_user = staff_user_create(account=other, username="bench-other", password=password)
    build_account_items(main, items, SEED, main_user)
    build_account_items(other, other_items, SEED + 1, other_user)
    spread_dates(main)
    spread_dates(other)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM FULL ANALYZE inventory_item, inventory_itemstatechange, inventory_stockmovement")
    print(f"Built in {time.perf_counter() - started:.1f} s (VACUUM FULL ANALYZE done).")
    return main, other, main_user, other_user


def ensure_api_plan(*accounts) -> str:
    """API access is a plan feature: put the bench accounts on the internal unlimited plan
    (no API throttle, so the figures measure the code rather than the rate limit)."""
    try:
        from billing.selectors import billing_state_cached
        from billing.services.plans import plan_assign, plan_get
    except ImportError:  # a tree without billing: the API is not gated
        return "no billing app"
    plan = plan_get("admin")
    for account in accounts:
        if billing_state_cached(account.pk).plan.code != plan.code:
            plan_assign(account=account, plan=plan, source="bench")
    return f"plan {plan.code!r} (API access, no throttle)"


# --- Measuring ------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile: the value at or below which pct% of the samples fall."""
    ordered = sorted(values)
    return ordered[max(math.ceil(pct / 100 * len(ordered)) - 1, 0)]


def count_queries(call):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        result = call()
    return result, captured.captured_queries


def measure_page(client, url: str, repeat: int, *, before=None, warmup: int = 2) -> dict:
    """Time `repeat` GETs of a page (whole response read) and count the queries of one more."""
    for _ in range(warmup):
        if before:
            before()
        client.get(url)
    timings, cpu = [], []
    response = None
    for _ in range(repeat):
        if before:
            before()
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(url)
        body = response.content
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}: {body[:500]!r}")
    if before:
        before()
    response, queries = count_queries(lambda: client.get(url))
    return {
        "p50": percentile(timings, 50),
        "p95": percentile(timings, 95),
        "max": max(timings),
        "cpu": percentile(cpu, 50),
        "queries": len(queries),
        "sql": [q["sql"] for q in queries],
        "response": response,
    }


def clear_filter_cache(account_id: int) -> None:
    from django.conf import settings
    from django.core.cache import cache

    order = settings.INVENTORY_FILTER_OPTION_ORDER
    cache.delete_many(
        [f"item-filter:{name}:{account_id}:{order}" for name in ("brand", "category", "storage_location")]
    )


def admin_sort_param(field: str, descending: bool = False) -> str | None:
    """The changelist's `o=` value that sorts by a model field, or None when no column does."""
    from django.contrib import admin

    from inventory.models import Item

    model_admin = admin.site._registry[Item]
    for index, name in enumerate(model_admin.list_display, start=1):
        target = name if name in {f.name for f in Item._meta.fields} else None
        if target is None:
            attribute = getattr(model_admin, name, None) or getattr(Item, name, None)
            target = getattr(attribute, "admin_order_field", None)
        if target and target.lstrip("-") == field:
            return f"o={'-' if descending else ''}{index}"
    return None


def admin_rows(response) -> int:
    return response.content.count(b'class="action-select"')


def admin_scenarios(client, account, repeat: int, top_brand: str, sku: str, deep: int) -> list[dict]:
    base = "/admin/inventory/item/"
    pages = [
        ("first page (cold filter cache)", base, True),
        ("first page", base, False),
        (f"deep page (p={deep}, offset {(deep - 1) * 50:,})", f"{base}?p={deep}", False),
        ("state=active", f"{base}?state__exact=active", False),
        (f"brand={top_brand}", f"{base}?brand={quote(top_brand)}", False),
        ("price 1,000-2,500", f"{base}?price_range=1000-2500", False),
        ("state+brand+price", f"{base}?state__exact=active&brand={quote(top_brand)}&price_range=1000-2500", False),
        (f"search {SEARCH_TITLE!r}", f"{base}?q={SEARCH_TITLE.replace(' ', '+')}", False),
        ("search by SKU", f"{base}?q={sku}", False),
    ]
    for field in ("title", "updated_at"):
        sort = admin_sort_param(field)
        if sort:
            pages.append((f"sorted by {field} ({sort})", f"{base}?{sort}", False))
    results = []
    for label, url, cold in pages:
        before = (lambda: clear_filter_cache(account.pk)) if cold else None
        row = measure_page(client, url, repeat, before=before)
        row.update(label=label, url=url, rows=admin_rows(row["response"]))
        results.append(row)
    return results


def api_scenarios(client, repeat: int, top_brand: str, sku: str, deep: int, location: str) -> list[dict]:
    base = "/api/v1/items/"
    pages = [
        ("first page", base),
        (f"deep page (page={deep})", f"{base}?page={deep}"),
        ("state=active", f"{base}?state=active"),
        (f"brand={top_brand}", f"{base}?brand={quote(top_brand)}"),
        ("price 1,000-2,500", f"{base}?price_min=1000&price_max=2500"),
        (f"storage_location={location.lower()}", f"{base}?storage_location={quote(location.lower())}"),
        ("state+brand+price", f"{base}?state=active&brand={quote(top_brand)}&price_min=1000&price_max=2500"),
        ("ordering=price", f"{base}?ordering=price"),
        ("ordering=-updated_at", f"{base}?ordering=-updated_at"),
        ("ordering=title", f"{base}?ordering=title"),
        ("ordering=-created_at", f"{base}?ordering=-created_at"),
        (f"search {SEARCH_TITLE!r}", f"{base}?search={SEARCH_TITLE.replace(' ', '+')}"),
        ("search by SKU", f"{base}?search={sku}"),
    ]
    results = []
    for label, url in pages:
        row = measure_page(client, url, repeat)
        data = row["response"].json()
        row.update(
            label=label,
            url=url,
            rows=len(data["results"]),
            count=f"{data['count']:,}{'~' if data.get('count_is_estimate') else ''}",
        )
        results.append(row)
    return results


def check_tenancy(client, other_sku: str) -> None:
    """The main account's user never sees the other account's items (the filter is real)."""
    data = client.get(f"/api/v1/items/?search={other_sku}").json()
    if any(row["sku"] == other_sku for row in data["results"]):
        raise SystemExit(f"Tenancy broken: the main account's API list shows {other_sku} of the other account.")
    print(f"Tenancy check passed (the other account's SKU {other_sku} is invisible to the main account).")


def bench_bulk_transition(account, user, size: int, seed: int) -> list[dict]:
    """Move `size` draft items to active through the service, check, then put them back."""
    from inventory.models import Item, ItemStateChange
    from inventory.services import Actor, item_bulk_transition

    drafts = list(Item.objects.filter(account=account, state="draft").values_list("pk", flat=True))
    if len(drafts) < size:
        raise SystemExit(f"Only {len(drafts):,} draft items; rebuild with more items (--rebuild).")
    ids = random.Random(seed).sample(drafts, size)
    actor = Actor(user=user, source="command")
    history_before = ItemStateChange.objects.filter(account=account).count()

    gc.collect()
    started = time.perf_counter()
    result = item_bulk_transition(account=account, item_ids=ids, to_state="active", actor=actor, reason="bench")
    forward = time.perf_counter() - started

    moved = Item.objects.filter(pk__in=ids, state="active").count()
    history_written = ItemStateChange.objects.filter(account=account).count() - history_before
    problems = []
    if len(result.moved) != size or result.not_moved:
        problems.append(f"service reported {len(result.moved)} moved, {len(result.not_moved)} not moved")
    if moved != size:
        problems.append(f"{moved} of {size} items are active")
    if history_written != size:
        problems.append(f"{history_written} history rows written, expected {size}")

    # Put them back (same shape of work), counting the queries this time.
    started = time.perf_counter()
    back, queries = count_queries(
        lambda: item_bulk_transition(account=account, item_ids=ids, to_state="draft", actor=actor, reason="bench undo")
    )
    backward = time.perf_counter() - started
    if len(back.moved) != size:
        problems.append(f"undo moved {len(back.moved)} of {size}")
    if problems:
        raise SystemExit("Bulk transition check failed: " + "; ".join(problems))
    vacuum()
    return [
        {
            "label": f"service draft->active, {size:,} items",
            "seconds": forward,
            "queries": len(queries),
            "check": f"{moved:,} moved, {history_written:,} history rows",
        },
        {
            "label": f"service active->draft, {size:,} items (undo)",
            "seconds": backward,
            "queries": len(queries),
            "check": f"{len(back.moved):,} moved back",
        },
    ]


def bench_api_bulk_transition(client, account, size: int, seed: int) -> dict:
    """The same through POST /api/v1/items/bulk-transition/ (input + output serializers)."""
    from inventory.models import Item
    from inventory.services import Actor, item_bulk_transition

    drafts = list(Item.objects.filter(account=account, state="draft").values_list("pk", flat=True))
    ids = random.Random(seed + 1).sample(drafts, size)
    started = time.perf_counter()
    response = client.post(
        "/api/v1/items/bulk-transition/",
        {"ids": ids, "to_state": "active", "reason": "bench api"},
        content_type="application/json",
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or len(response.json()["moved"]) != size:
        raise SystemExit(f"API bulk transition failed: {response.status_code} {response.content[:300]!r}")
    item_bulk_transition(account=account, item_ids=ids, to_state="draft", actor=Actor(source="command"))
    vacuum()
    return {
        "label": f"API POST bulk-transition, {size:,} items",
        "seconds": elapsed,
        "queries": None,
        "check": f"{size:,} moved ({len(response.content) / 1e6:.1f} MB JSON)",
    }


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def consume_export(client, url: str) -> tuple[int, int, bool]:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code}")
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    return size, lines, response.streaming


def bench_export(client, expected_rows: int, label: str) -> dict:
    url = "/api/v1/items/export/"
    consume_export(client, url + "?state=draft")  # warm up imports and the connection
    gc.collect()
    rss_reset = _reset_peak_rss()
    rss_before = _rss_kib("VmRSS")
    started = time.perf_counter()
    size, lines, streaming = consume_export(client, url)
    elapsed = time.perf_counter() - started
    rss_growth = max(_rss_kib("VmHWM") - rss_before, 0) / 1024 if rss_reset else None
    if lines != expected_rows + 1:
        raise SystemExit(f"Export gave {lines - 1:,} rows, expected {expected_rows:,}.")

    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    consume_export(client, url)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "label": label,
        "rows": expected_rows,
        "seconds": elapsed,
        "mb": size / 1e6,
        "streaming": streaming,
        "tracemalloc_peak_mb": peak / 1e6,
        "rss_growth_mb": rss_growth,
    }


# --- Output ---------------------------------------------------------------------------


def explain_queries(statements: list[str], slower_than_ms: float = 5.0) -> None:
    """EXPLAIN ANALYZE each SELECT of a page; print the plan of those slower than the threshold."""
    from django.db import connection

    for sql in statements:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = [line for (line,) in cursor.fetchall()]
        total = next((float(line.split(":")[1].split()[0]) for line in plan if line.startswith("Execution Time")), 0.0)
        if total >= slower_than_ms:
            print(f"      {total:.1f} ms: {sql[:400]}")
            for line in plan:
                print(f"        {line}")


def print_pages(title: str, rows: list[dict], show_sql: bool, explain: bool = False) -> None:
    print(f"\n{title}")
    print(f"  {'page':<34} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'py cpu':>7} {'queries':>7} {'rows':>5}  count")
    for row in rows:
        flag = "  <-- over 150 ms p95" if row["p95"] > 150 else ""
        print(
            f"  {row['label']:<34} {row['p50']:>7.1f} {row['p95']:>7.1f} {row['max']:>7.1f} {row['cpu']:>7.1f} "
            f"{row['queries']:>7} {row['rows']:>5}  {row.get('count', '')}{flag}"
        )
        if show_sql:
            for sql in row["sql"]:
                print(f"      {sql[:300]}")
        if explain:
            explain_queries(row["sql"])


def wait_for_quiet(threshold: float, limit_seconds: int = 900) -> None:
    """On a shared machine, start measuring once the others have calmed down (or give up waiting)."""
    deadline = time.monotonic() + limit_seconds
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        print(f"  load average {os.getloadavg()[0]:.2f} >= {threshold}: waiting ...", flush=True)
        time.sleep(20)


def machine() -> str:
    from django.db import connection

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    return (
        f"{os.cpu_count()} vCPU ({cpu}), Python {platform.python_version()}, Django {django.get_version()}, "
        f"PostgreSQL {pg}, load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000, help="items of the main account (default 100,000)")
    parser.add_argument("--repeat", type=int, default=30, help="requests per page (default 30)")
    parser.add_argument("--transition", type=int, default=10_000, help="items in the bulk transition (10,000)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the data even if it exists")
    parser.add_argument("--only", choices=["admin", "api", "transition", "export"], action="append")
    parser.add_argument("--sql", action="store_true", help="print the SQL of each page")
    parser.add_argument(
        "--wait-load",
        type=float,
        metavar="LOAD",
        help="before measuring, wait (up to 15 min) until the 1-minute load average is below LOAD",
    )
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the queries of each page over 5 ms")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("Set DATABASE_URL=postgres://... to a database of its own (it is emptied and rebuilt).")
    django.setup()
    from django.conf import settings

    # Several processes may share this Redis: keep the bench's cache keys apart.
    settings.CACHES["default"]["KEY_PREFIX"] = "bench-foundation"

    from django.core.management import call_command
    from django.test import Client

    from inventory.models import Item

    call_command("migrate", verbosity=0)
    main_account, other_account, main_user, other_user = ensure_data(args.items, args.rebuild)
    only = set(args.only or ["admin", "api", "transition", "export"])
    if args.wait_load:
        wait_for_quiet(args.wait_load)
    billing = ensure_api_plan(main_account, other_account)
    print(f"Machine: {machine()}")
    print(
        f"Settings: DEBUG={settings.DEBUG}, INVENTORY_EXACT_COUNT_LIMIT={settings.INVENTORY_EXACT_COUNT_LIMIT:,}, "
        f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, billing: {billing}"
    )
    states = Counter(Item.objects.filter(account=main_account).values_list("state", flat=True))
    print("Main account items by state: " + ", ".join(f"{k} {v:,}" for k, v in sorted(states.items())))

    brands = Counter(Item.objects.filter(account=main_account).exclude(brand="").values_list("brand", flat=True))
    top_brand = brands.most_common(2)[1][0]  # the second brand: common, not the single largest
    sku = Item.objects.filter(account=main_account).order_by("pk")[args.items // 2].sku
    location = Item.objects.filter(account=main_account).exclude(storage_location="").order_by("pk")[0].storage_location
    other_sku = Item.objects.filter(account=other_account).order_by("pk").first().sku

    deep = max(1, min(1000, args.items // 100))  # page 1000 of 50 rows = offset 49,950 at 100,000 items
    client = Client()
    client.force_login(main_user)
    other_client = Client()
    other_client.force_login(other_user)
    check_tenancy(client, other_sku)

    if "admin" in only:
        rows = admin_scenarios(client, main_account, args.repeat, top_brand, sku, deep)
        print_pages(
            f"Admin item changelist, {args.items:,} items, {args.repeat} requests per page",
            rows,
            args.sql,
            args.explain,
        )
    if "api" in only:
        rows = api_scenarios(client, args.repeat, top_brand, sku, deep, location)
        print_pages(
            f"API GET /api/v1/items/, {args.items:,} items, {args.repeat} requests per page",
            rows,
            args.sql,
            args.explain,
        )
    if "transition" in only:
        size = min(args.transition, states.get("draft", 0))
        rows = bench_bulk_transition(main_account, main_user, size, SEED)
        rows.append(bench_api_bulk_transition(client, main_account, size, SEED))
        print("\nBulk transition")
        for row in rows:
            flag = "  <-- over 5 s" if row["seconds"] > 5 else ""
            queries = "" if row["queries"] is None else f"{row['queries']} queries, "
            print(f"  {row['label']:<46} {row['seconds']:>7.2f} s  ({queries}{row['check']}){flag}")
    if "export" in only:
        small = bench_export(other_client, Item.objects.filter(account=other_account).count(), "other account")
        large = bench_export(client, args.items, "main account")
        print("\nCSV export GET /api/v1/items/export/ (streamed, whole body consumed)")
        print(f"  {'rows':>8} {'seconds':>8} {'rows/s':>8} {'MB out':>7} {'tracemalloc peak':>17} {'RSS growth':>11}")
        for row in (small, large):
            rss = "n/a" if row["rss_growth_mb"] is None else f"{row['rss_growth_mb']:.1f} MB"
            print(
                f"  {row['rows']:>8,} {row['seconds']:>8.2f} {row['rows'] / row['seconds']:>8,.0f} {row['mb']:>7.1f} "
                f"{row['tracemalloc_peak_mb']:>14.2f} MB {rss:>11}" + ("" if row["streaming"] else "  <-- NOT STREAMED")
            )
        ratio = large["tracemalloc_peak_mb"] / max(small["tracemalloc_peak_mb"], 0.001)
        print(f"  peak ratio {large['rows']:,} vs {small['rows']:,} rows: {ratio:.2f}x (1.0x = constant memory)")


if __name__ == "__main__":
    main()
