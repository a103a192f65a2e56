"""eBay: publishing 1,000 items, then a price/quantity sweep over the 1,000 live offers.

Run it from the project root (about half a minute on the 2-vCPU box):

    .venv/bin/python bench/ebay.py
    .venv/bin/python bench/ebay.py --items 200

Uses its own PostgreSQL database (default `bench_ebay`, emptied at the start) and the loopback
eBay in this process; no worker runs: the channel's own functions are timed (channels_ebay.sync
publish and bulk_revise_price_quantity), then the engine's own path for a price sweep (the
converge tasks run one after the other, as a worker runs them). Printed: calls by kind
against the minimum eBay allows (25 per bulk call), revisions spent, tokens granted, seconds.
It is not a test; it checks what it prints (one offer per SKU, every change applied).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections import Counter
from decimal import Decimal

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_ebay")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")

import sync_stack


def kinds(sandbox) -> Counter:
    counted: Counter = Counter()
    for request in sandbox.requests():
        path = request.path
        if path.startswith("/identity/"):
            counted["token"] += 1
            continue
        tail = path.split("/v1/", 1)[1]
        name = tail.split("/")[0]
        if name == "offer" and tail.endswith("/publish/"):
            name = "offer/publish"
        counted[f"{request.method} {name}"] += 1
    return counted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    sync_stack.setup()
    from django.core.cache import cache

    from channels_ebay import sync
    from channels_ebay.models import EbayConnection, EbayListingDetail
    from channels_ebay.sandbox import EbaySandbox
    from inventory.channels import ListingPayload

    cache.clear()
    account = sync_stack.shop("bench-ebay")
    n = args.items
    print(sync_stack.machine())
    with EbaySandbox() as sandbox:
        connection = EbayConnection.objects.create(
            account=account, name="eBay bench", category_ids={"Amps": "38072"}, **sandbox.connection_fields()
        )
        payloads = [
            ListingPayload(
                sku=f"EBB-{i:05d}",
                title=f"Bench amp {i} 1x12 combo, all tube, serviced",
                description="Serviced, new tubes.",
                price=Decimal("400.00") + i % 300,
                currency="USD",
                quantity=1 + i % 3,
                brand=("Fender", "Vox", "Marshall")[i % 3],
                model=f"Model {i}",
                category="Amps",
                condition="very_good",
                photos=(f"https://cdn.example.com/amp-{i}.jpg",),
            )
            for i in range(n)
        ]

        started, cpu = time.monotonic(), time.process_time()
        offer_ids = [sync.publish(connection, payload, None).external_id for payload in payloads]
        publish_s, publish_cpu = time.monotonic() - started, time.process_time() - cpu
        published = kinds(sandbox)
        assert len(set(offer_ids)) == n and all(len(sandbox.store.offers_by_sku(p.sku)) == 1 for p in payloads)
        writes = sum(v for k, v in published.items() if not k.startswith("GET") and k != "token")
        print(
            f"\nPublish {n} items (sync.publish, one item at a time): {publish_s:.1f} s, CPU {publish_cpu:.1f} s, "
            f"{publish_s / n * 1000:.1f} ms per item"
        )
        print(f"  calls: {sum(v for k, v in published.items() if k != 'token')} ({dict(sorted(published.items()))})")
        print(
            f"  writes {writes} = 3 per item; the minimum with eBay's bulk calls (25 per call: "
            f"bulkCreateOrReplaceInventoryItem, bulkCreateOffer, bulkPublishOffer) is {3 * math.ceil(n / 25)}"
        )
        print(f"  tokens granted: {published['token']}")

        sandbox.reset_log()
        bulk_payloads = [ListingPayload(**{**p.__dict__, "sku": p.sku.replace("EBB", "EBK")}) for p in payloads]
        started, cpu = time.monotonic(), time.process_time()
        bulk_outcomes = sync.bulk_publish(connection, bulk_payloads)
        bulk_s, bulk_cpu = time.monotonic() - started, time.process_time() - cpu
        bulked = kinds(sandbox)
        assert all(o.ok for o in bulk_outcomes) and len(bulk_outcomes) == n
        assert all(len(sandbox.store.offers_by_sku(p.sku)) == 1 for p in bulk_payloads)
        print(
            f"\nPublish {n} other items with the bulk calls (sync.bulk_publish, 25 per call): {bulk_s:.1f} s, "
            f"CPU {bulk_cpu:.1f} s"
        )
        print(
            f"  calls: {sum(bulked.values())} ({dict(sorted(bulked.items()))}); "
            f"minimum {3 * math.ceil(n / 25)} without the merge read, {4 * math.ceil(n / 25)} with it"
        )

        sandbox.reset_log()
        changes = [
            sync.PriceQuantityChange(p.sku, oid, p.price - 10, "USD", p.quantity + 1)
            for p, oid in zip(payloads, offer_ids, strict=True)
        ]
        started, cpu = time.monotonic(), time.process_time()
        outcomes = sync.bulk_revise_price_quantity(connection, changes)
        sweep_s, sweep_cpu = time.monotonic() - started, time.process_time() - cpu
        swept = kinds(sandbox)
        assert all(o.ok for o in outcomes) and len(outcomes) == n
        assert all(
            sandbox.store.offers[oid]["availableQuantity"] == p.quantity + 1
            for p, oid in zip(payloads, offer_ids, strict=True)
        )
        spent = sum(EbayListingDetail.objects.filter(connection=connection).values_list("revisions_today", flat=True))
        print(
            f"\nPrice/quantity sweep over {n} live offers (bulk_revise_price_quantity): {sweep_s:.2f} s, CPU {sweep_cpu:.2f} s"
        )
        print(
            f"  calls: {sum(v for k, v in swept.items() if k != 'token')} ({dict(swept)}); minimum {math.ceil(n / 25)}"
        )
        print(f"  revisions spent: {spent} (one per listing; eBay allows 250 per listing per day)")

        sandbox.reset_log()
        sample = 100
        started = time.monotonic()
        for p, oid in list(zip(payloads, offer_ids, strict=True))[:sample]:
            sync.revise(connection, oid, ListingPayload(**{**p.__dict__, "price": p.price - 20}), frozenset({"price"}))
        one_s = time.monotonic() - started
        single = kinds(sandbox)
        print(
            f"\nThe engine's path, one listing per converge (sync.revise, price only), {sample} listings: "
            f"{one_s:.2f} s, calls {dict(single)} = {sum(single.values()) / sample:.0f} per listing"
        )

        sandbox.reset_log()
        started = time.monotonic()
        for p, oid in list(zip(payloads, offer_ids, strict=True))[:sample]:
            sync.revise(connection, oid, ListingPayload(**{**p.__dict__, "price": p.price - 20}), frozenset({"price"}))
        unchanged = kinds(sandbox)
        print(
            f"  the same {sample} again, unchanged: {time.monotonic() - started:.2f} s, calls {dict(unchanged)}, "
            f"writes {sum(v for k, v in unchanged.items() if not k.startswith('GET'))}"
        )

        engine_sweep(connection, sandbox, account, payloads, offer_ids)


def engine_sweep(connection, sandbox, account, payloads, offer_ids) -> None:
    """The same kind of sweep as staff make it: items repriced, then the worker's converge tasks,
    one per listing in queue order (inventory.services.batching shares the bulk calls)."""
    from django.db.models import F

    from inventory.models import ChannelListing, DesiredState, Item, ListingState
    from inventory.services.batching import listing_converge_batched
    from inventory.services.listings import content_fingerprint, listing_payload, payload_content
    from inventory.states import ItemState

    n = len(payloads)
    items = Item.objects.bulk_create(
        Item(
            account=account,
            sku=p.sku,
            title=p.title,
            description=p.description,
            brand=p.brand,
            model=p.model,
            category=p.category,
            condition=p.condition,
            price=p.price - 10,
            quantity_on_hand=p.quantity + 1,
            state=ItemState.ACTIVE,
        )
        for p in payloads
    )
    listings = ChannelListing.objects.bulk_create(
        ChannelListing(
            account=account,
            item=item,
            connection=connection,
            desired_state=DesiredState.LIVE,
            actual_state=ListingState.LIVE,
            external_id=oid,
        )
        for item, oid in zip(items, offer_ids, strict=True)
    )
    for listing in ChannelListing.objects.select_related("item", "connection").filter(connection=connection):
        content = payload_content(listing_payload(listing))  # what eBay holds now, as the engine last pushed it
        ChannelListing.objects.filter(pk=listing.pk).update(
            pushed_content=content, pushed_fingerprint=content_fingerprint(content)
        )
    # Staff reprice everything by 5 (what item_update does, without queueing tasks to a broker).
    Item.objects.filter(account=account).update(price=F("price") - 5)
    ChannelListing.objects.filter(connection=connection).update(needs_push=True)
    sandbox.reset_log()
    started, cpu = time.monotonic(), time.process_time()
    outcomes = [listing_converge_batched(listing.pk) for listing in listings]
    sweep_s, sweep_cpu = time.monotonic() - started, time.process_time() - cpu
    swept = kinds(sandbox)
    calls = sum(v for k, v in swept.items() if k != "token")
    assert not ChannelListing.objects.filter(connection=connection, needs_push=True).exists(), "not all revised"
    assert all(
        Decimal(sandbox.store.offers[oid]["pricingSummary"]["price"]["value"]) == p.price - 15
        for p, oid in zip(payloads, offer_ids, strict=True)
    )
    batched = sum(1 for o in outcomes if o.startswith("revised"))
    print(
        f"\nThe engine's path: {n} items repriced, then {n} converge tasks (listing_converge_batched): "
        f"{sweep_s:.2f} s, CPU {sweep_cpu:.2f} s"
    )
    print(
        f"  calls: {calls} ({dict(swept)}); minimum {math.ceil(n / 25)}; "
        f"{batched} tasks sent a batch, {n - batched} found their listing already revised"
    )


if __name__ == "__main__":
    main()
