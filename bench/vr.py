"""V&R through the browser: seconds per publish and per end, items per hour, peak browser memory.

Run it from the project root (about a minute with the defaults):

    .venv/bin/python bench/vr.py
    .venv/bin/python bench/vr.py --items 10 --slow-ms 300   # a slower site

Uses PostgreSQL (default database `bench_vr`, emptied at the start) and the loopback V&R
dealer site in this process. Each listing goes through the worker's own path,
inventory.services.listings.listing_converge, one at a time as the sync.vr queue runs them
(concurrency 1): publish = export lookup, brand check, add-item form with one photo, submit,
export to find the id; end = export, mark sold (half) or delete (the other half), export to
confirm. The browser is launched and logged in once, before the timed part (its cost is
printed separately). Memory is the resident set of Chromium's whole process tree (browser,
renderer, GPU/utility), sampled after every step. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_vr")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")

import sync_stack

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 200  # a 51 KB stand-in photo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--slow-ms", type=float, default=0.0, help="Delay every V&R page and request by this much.")
    args = parser.parse_args()

    sync_stack.setup()
    from django.conf import settings

    from channels_vr import sync
    from channels_vr.client import close_all_sessions
    from channels_vr.models import VRCategoryMapping, VRConnection
    from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, VRSandbox
    from inventory.models import ChannelListing, ItemPhoto
    from inventory.services import Actor, item_create
    from inventory.services.listings import listing_converge, listings_end

    settings.MEDIA_ROOT = Path("/tmp/bench-vr-media")
    print(sync_stack.machine())
    account = sync_stack.shop("bench-vr")
    with VRSandbox() as site:
        site.set_switches(slow_ms=args.slow_ms)
        photo = site.host_photo("photo.jpg", JPEG)
        connection = VRConnection.objects.create(
            account=account,
            name="V&R bench",
            username=DEFAULT_USERNAME,
            password=DEFAULT_PASSWORD,
            base_url=site.base_url,
            step_timeout_seconds=30,
        )
        VRCategoryMapping.objects.create(
            account=account, connection=connection, category="Electric Guitars", level_0="51", level_1="83"
        )
        listings = []
        for n in range(args.items):
            item = item_create(
                account=account,
                actor=Actor(source="bench"),
                state="active",
                fields={
                    "sku": f"VRB-{n:04d}",
                    "title": f"Bench guitar {n}",
                    "brand": ("Fender", "Gibson", "Gretsch", "Martin")[n % 4],
                    "model": f"Model {n}",
                    "year": str(1955 + n % 40),
                    "finish": "Sunburst",
                    "category": "Electric Guitars",
                    "description": f"Bench guitar number {n}.\n\nAll original.",
                    "price": 1000 + n,
                },
            )
            ItemPhoto.objects.create(item=item, url=photo, position=0)
            listings.append(ChannelListing.objects.create(account=account, item=item, connection=connection))

        browser = sync.browser_for(connection)
        started = time.monotonic()
        browser.login()
        startup = time.monotonic() - started
        peak = browser.memory_bytes()

        publish_times = []
        for listing in listings:
            started = time.monotonic()
            outcome = listing_converge(listing.pk)
            publish_times.append(time.monotonic() - started)
            assert outcome == "published", outcome
            peak = max(peak, browser.memory_bytes())
        half = len(listings) // 2
        listings_end(
            account=account,
            item_ids=[x.item_id for x in listings[:half]],
            actor=Actor(source="bench"),
            reason="sold_elsewhere",
        )
        listings_end(
            account=account,
            item_ids=[x.item_id for x in listings[half:]],
            actor=Actor(source="bench"),
            reason="withdrawn",
        )
        end_times = []
        for listing in listings:
            started = time.monotonic()
            outcome = listing_converge(listing.pk)
            end_times.append(time.monotonic() - started)
            assert outcome == "ended", outcome
            peak = max(peak, browser.memory_bytes())
        logins, launches = browser.logins, browser.launches
        close_all_sessions()

    assert len(site.requests("add")) == args.items, "an item was created twice"

    def line(name: str, times: list[float]) -> str:
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return f"{name:<8} median {statistics.median(times):.2f} s  p95 {p95:.2f} s  max {max(times):.2f} s"

    print(f"items: {args.items}, site delay per page: {args.slow_ms:g} ms")
    print(f"launch + login: {startup:.2f} s (once per worker; logins {logins}, browser launches {launches})")
    print(line("publish", publish_times))
    print(line("end", end_times))
    print(f"items/hour one worker publishes: {3600 / statistics.mean(publish_times):,.0f}")
    print(f"peak browser memory (RSS of Chromium's process tree): {peak / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
