"""The two tasks: record a sale under the item's row lock, then end each other listing with a read-back."""

import json

import urllib3
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

from floor_stack.celery_app import app, market_queue
from floor_stack.models import Item, Listing, WebhookEvent

_http: urllib3.PoolManager | None = None


def http() -> urllib3.PoolManager:
    """Kept-alive connections to the marketplaces, one pool per (pool) process, made after the fork."""
    global _http
    if _http is None:
        _http = urllib3.PoolManager(maxsize=2, retries=False, timeout=10)
    return _http


@app.task(acks_late=True, ignore_result=True)
def sale(event_id: int, listing_id: int) -> None:
    with transaction.atomic():
        item = Item.objects.select_for_update(of=("self",)).only("id").get(listings__id=listing_id)
        Item.objects.filter(pk=item.pk).update(state="sold")
        Listing.objects.filter(pk=listing_id).update(state="sold")
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=timezone.now())
        others = list(Listing.objects.filter(item_id=item.pk).exclude(pk=listing_id).values_list("pk", "market"))
        transaction.on_commit(lambda: _queue_ends(others))


def _queue_ends(others: list[tuple[int, int]]) -> None:
    for pk, market in others:
        end.apply_async(args=[pk, market], queue=market_queue(market))


@app.task(acks_late=True, ignore_result=True)
def end(listing_id: int, market: int) -> None:
    base = settings.MARKET_URLS[market]
    answer = http().request("PUT", f"{base}/listings/{listing_id}/end")
    if answer.status != 200:
        raise RuntimeError(f"end of listing {listing_id} on market {market}: HTTP {answer.status}")
    answer = http().request("GET", f"{base}/listings/{listing_id}")
    state = json.loads(answer.data)["state"] if answer.status == 200 else None
    if state != "ended":
        raise RuntimeError(f"listing {listing_id} on market {market} reads back {state!r}, not ended")
    Listing.objects.filter(pk=listing_id).update(state="ended", ended_at=Now())
