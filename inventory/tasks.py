"""Celery tasks of the inventory and the sync engine. Each loads by id and calls one service.

Channel work runs on a queue per channel ("sync.<channel>") so a slow marketplace cannot
starve the others; webhooks have their own queue so a sale is never stuck behind a bulk push.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from django.conf import settings

from .channels import ListingBusy, RateLimited, TransientChannelError
from .models import ChannelConnection, ChannelListing
from .services import items_auto_archive
from .services.listings import listing_converge, listing_failed, listings_lagging
from .services.sync import connection_pull, listings_reconcile, webhook_process

log = logging.getLogger(__name__)


def channel_queue(channel_name: str) -> str:
    return f"sync.{channel_name}"


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: 0..min(cap, base * 2^n) seconds."""
    ceiling = min(settings.SYNC_RETRY_BACKOFF_MAX, settings.SYNC_RETRY_BACKOFF_BASE * (2**retries))
    return random.uniform(ceiling / 2, ceiling)


def enqueue_converge(listing_id: int) -> None:
    channel_name = ChannelListing.objects.filter(pk=listing_id).values_list("connection__channel", flat=True).first()
    if channel_name:
        converge_listing_task.apply_async(args=[listing_id], queue=channel_queue(channel_name))


def enqueue_pull(connection_id: int) -> None:
    channel_name = ChannelConnection.objects.filter(pk=connection_id).values_list("channel", flat=True).first()
    if channel_name:
        pull_connection_task.apply_async(args=[connection_id], queue=channel_queue(channel_name))


@shared_task(name="inventory.auto_archive", soft_time_limit=600, time_limit=660)
def auto_archive_task() -> dict:
    """Archive sold and shipped items past their account's auto-archive age."""
    archived = items_auto_archive()
    log.info("auto-archive: %s", {slug: len(skus) for slug, skus in archived.items()})
    return {slug: len(skus) for slug, skus in archived.items()}


@shared_task(
    bind=True, name="inventory.converge_listing", max_retries=8, soft_time_limit=60, time_limit=90, acks_late=True
)
def converge_listing_task(self, listing_id: int) -> str:
    """Make one listing on its channel match what the shop wants. Idempotent."""
    try:
        return listing_converge(listing_id)
    except ListingBusy as error:
        # Another worker is on it (e.g. publishing when the sale arrived): look again shortly.
        raise self.retry(exc=error, countdown=0.2, max_retries=self.max_retries + 50) from error
    except TransientChannelError as error:
        if self.request.retries >= self.max_retries:
            listing_failed(listing_id, error, attempt_counted=True)  # _converge counted it
            return f"gave up after {self.request.retries} retries: {error}"
        countdown = backoff_seconds(self.request.retries)
        if isinstance(error, RateLimited) and error.retry_after:
            countdown = max(countdown, error.retry_after)
        raise self.retry(exc=error, countdown=countdown) from error


@shared_task(
    bind=True, name="inventory.pull_connection", max_retries=3, soft_time_limit=120, time_limit=150, acks_late=True
)
def pull_connection_task(self, connection_id: int) -> str:
    """Read what changed on one channel connection (orders, listing states, new listings)."""
    try:
        run = connection_pull(connection_id=connection_id)
    except TransientChannelError as error:
        # The next scheduled pull reads the same window again; a short retry catches a blip.
        countdown = (
            error.retry_after
            if isinstance(error, RateLimited) and error.retry_after
            else backoff_seconds(self.request.retries)
        )
        raise self.retry(exc=error, countdown=countdown) from error
    return f"{run.status}: {run.created} new, {run.updated} updated, {run.errors} errors"


@shared_task(name="inventory.process_webhook", acks_late=True, max_retries=5, bind=True)
def process_webhook_event_task(self, event_id: int) -> str:
    """Act on a stored webhook delivery."""
    try:
        return webhook_process(event_id=event_id)
    except TransientChannelError as error:
        raise self.retry(exc=error, countdown=backoff_seconds(self.request.retries)) from error


@shared_task(name="inventory.sweep_listings", soft_time_limit=120)
def sweep_listings_task() -> int:
    """Re-enqueue listings lagging their desired state (a lost task or a crash loses nothing)."""
    lagging = listings_lagging()
    for listing_id in lagging:
        enqueue_converge(listing_id)
    if lagging:
        log.info("sweeper re-enqueued %d lagging listing(s)", len(lagging))
    return len(lagging)


@shared_task(name="inventory.reconcile_connection", soft_time_limit=3000, time_limit=3300)
def reconcile_connection_task(connection_id: int) -> str:
    """The nightly read-back of every live listing on one connection."""
    run = listings_reconcile(connection_id=connection_id)
    return f"{run.status}: {run.updated} drifted, {run.ended} ended, {run.skipped} unchanged"


@shared_task(name="inventory.reconcile_all")
def reconcile_all_task() -> int:
    ids = list(ChannelConnection.objects.filter(enabled=True).values_list("pk", "channel"))
    for connection_id, channel_name in ids:
        reconcile_connection_task.apply_async(args=[connection_id], queue=channel_queue(channel_name))
    return len(ids)
