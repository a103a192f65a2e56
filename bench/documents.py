"""Benchmark of the documents: 100 labels in one PDF, a 200-line pick list, 50 packing slips.

Run it from the project root:

    .venv/bin/python bench/documents.py                       # SQLite in memory
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_documents .venv/bin/python bench/documents.py

It creates a throwaway test database (dropped at the end), fills it with one shop's
stock and orders, and prints for each document the wall time (median of --runs runs),
the CPU time of that run, the pages and bytes, and the peak Python memory measured with
tracemalloc in a separate run (tracemalloc slows the code it watches, so it is never
timed). The process's peak RSS is printed last. It is not a test: it prints figures.
Also prints whether HarfBuzz's subsetter is in use, which makes WeasyPrint several times
faster (Debian package libharfbuzz-subset0).
"""

from __future__ import annotations

import argparse
import ctypes.util
import io
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

SHELVES = [f"{aisle}-{shelf:02d}-{bin_}" for aisle in "ABCDEFGH" for shelf in range(1, 13) for bin_ in range(1, 4)]
TITLES = [
    "Fender Stratocaster 1964 Sunburst, Pre-CBS",
    "Gibson Les Paul Custom „Black Beauty“ 1957",
    "Vox AC30 Top Boost, Röhren neu",
    "Boss DS-1 Distortion (Made in Japan)",
    "Marshall JCM800 2203 Kopfteil 100 W",
    "Martin D-28 Dreadnought, Brazilian rosewood",
    "Electro-Harmonix Big Muff π, NYC",
    "Gretsch 6120 Chet Atkins – Orange Stain",  # noqa: RUF001 (typography the PDFs must render)
]


def _logo_png() -> bytes:
    """A made-up shop logo, so the packing slip is measured and shown with one."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (600, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 4, 596, 196), radius=28, fill="#1b3a6b")
    try:
        font = ImageFont.truetype("DejaVuSans-Bold.ttf", 84)
    except OSError:  # no DejaVu: Pillow's own font still makes a logo
        font = ImageFont.load_default(size=84)
    draw.text((300, 100), "BLUE NOTE", fill="white", anchor="mm", font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build(lines_wanted: int):
    """One shop: items on shelves, and open orders of 1-3 lines (some multi-quantity)."""
    from django.core.files.base import ContentFile

    from accounts.services import account_create
    from documents.services import document_settings_for
    from inventory.models import Item, Order, OrderLine

    account = account_create(name="Bench Gitarren & Verstärker", slug="bench-docs", default_currency="EUR")
    settings_row = document_settings_for(account)
    settings_row.address = "Müllerstraße 12\n80469 München\nDeutschland"
    settings_row.contact = "hallo@bench.example"
    settings_row.site_url = "https://backoffice.bench.example"
    settings_row.packing_slip_message = "Rückgabe innerhalb von 14 Tagen. Danke für Ihren Einkauf!"
    settings_row.logo.save("logo.png", ContentFile(_logo_png()), save=False)
    settings_row.save()
    items = Item.objects.bulk_create(
        Item(
            account=account,
            sku=f"GTR-{n:05d}",
            title=f"{TITLES[n % len(TITLES)]} #{n}",
            brand=TITLES[n % len(TITLES)].split()[0],
            model=f"Model {n % 17}",
            serial_number=f"SN{100000 + n}",
            # About three items a shelf, the shelves in no particular order.
            storage_location=SHELVES[(n // 3) * 7 % len(SHELVES)],
            price=Decimal("199.00") + n,
            currency="EUR",
            quantity_on_hand=3,
            state="active",
        )
        for n in range(max(lines_wanted, 300))
    )
    orders, placed = [], datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    used = 0
    while used < lines_wanted:
        n = len(orders)
        order = Order.objects.create(
            account=account,
            channel=["ebay", "reverb", "shopify", "vr"][n % 4],
            external_id=f"{10_000_000 + n}",
            placed_at=placed + timedelta(minutes=n),
            buyer_name="Jürgen Weiß",
            ship_name="Jürgen Weiß",
            ship_line1="Kärntner Straße 5",
            ship_city="München",
            ship_postal_code="80331",
            ship_country="DE",
            currency="EUR",
            subtotal=Decimal("1234.50"),
            shipping=Decimal("45.00"),
            total=Decimal("1279.50"),
        )
        for item in items[used : used + 3 - n % 3]:
            OrderLine.objects.create(
                order=order, item=item, quantity=1 + (n % 5 == 0), unit_price=item.price, sku=item.sku, title=item.title
            )
        used += 3 - n % 3
        orders.append(order)
    return account


def measure(name: str, make, runs: int) -> dict:
    times, cpus, pdf = [], [], None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        pdf = make()
        times.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    median = statistics.median(times)
    tracemalloc.start()
    make()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = {
        "name": name,
        "median_s": median,
        "best_s": min(times),
        "cpu_s": cpus[times.index(sorted(times)[len(times) // 2])],
        "peak_mb": peak / 1024 / 1024,
        "pages": pdf.pages,
        "kb": len(pdf.content) / 1024,
    }
    print(
        f"{name:<34} {row['median_s']:6.2f} s median  {row['best_s']:6.2f} s best  {row['cpu_s']:6.2f} s CPU  "
        f"{row['peak_mb']:6.1f} MB peak  {row['pages']:4d} pages  {row['kb']:7.0f} KB",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per document (median is reported)")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--pick-lines", type=int, default=200)
    parser.add_argument("--slips", type=int, default=50)
    parser.add_argument("--out", default="", help="folder to write one PDF of each kind into, to look at")
    args = parser.parse_args()

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    from documents.services import labels_pdf, packing_slips_pdf, pick_list_pdf
    from inventory.models import Item, Order

    setup_test_environment()
    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix="bench-documents-")
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        account = build(args.pick_lines)
        label_items = list(Item.objects.filter(account=account).order_by("id")[: args.labels])
        pick_orders = Order.objects.filter(account=account).order_by("placed_at")
        slip_orders = Order.objects.filter(account=account).order_by("placed_at")[: args.slips]
        subsetter = ctypes.util.find_library("harfbuzz-subset")
        print(
            f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
            f"database {connection.vendor}, HarfBuzz subsetter: {subsetter or 'MISSING (slow fallback)'}"
        )
        # The first document of a process loads fonts and caches; time it apart from the rest.
        wall = time.perf_counter()
        labels_pdf(label_items[:1])
        print(f"{'first document of the process':<34} {time.perf_counter() - wall:6.2f} s (fonts, imports)")
        rows = [
            measure(f"{args.labels} labels 62x29 mm", lambda: labels_pdf(label_items), args.runs),
            measure(f"{args.labels} labels A4 sheet", lambda: labels_pdf(label_items, label_format="a4-sheet"), 1),
            measure(f"pick list, {args.pick_lines} lines", lambda: pick_list_pdf(orders=pick_orders), args.runs),
            measure(f"{args.slips} packing slips", lambda: packing_slips_pdf(slip_orders), args.runs),
        ]
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            (out / "labels.pdf").write_bytes(labels_pdf(label_items).content)
            (out / "labels-a4-sheet.pdf").write_bytes(labels_pdf(label_items, label_format="a4-sheet").content)
            (out / "labels-4x6in.pdf").write_bytes(labels_pdf(label_items, label_format="4x6in").content)
            (out / "pick-list.pdf").write_bytes(pick_list_pdf(orders=pick_orders).content)
            (out / "packing-slips.pdf").write_bytes(packing_slips_pdf(slip_orders).content)
            print(f"PDFs written to {out}/")
        assert rows[2]["pages"] >= 1
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run: {peak_rss:.0f} MB")


if __name__ == "__main__":
    main()
