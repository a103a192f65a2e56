"""Celery tasks of the inventory and the sync engine. Each loads by id and calls one service.

Channel work runs on a queue per channel ("sync.<channel>") so a slow marketplace cannot
starve the others; webhooks have their own queue so a sale is never stuck behind a bulk push.
"""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import BatchPublishError
from kombu.exceptions import OperationalError as BrokerUnreachable

from accounts.rls import account_scope_of, task_scope

from .channels import ChannelError, ListingBusy, RateLimited, TransientChannelError
from .health import heartbeat_record
from .models import ChannelConnection, ChannelListing, SyncRun, SyncStatus
from .services import items_auto_archive
from .services.alerts import alerts_digest_send, alerts_not_ended_check, alerts_webhooks_stopped_check
from .services.batching import listing_converge_batched
from .services.connections import connections_disconnect_finish
from .services.listings import listing_attempt_failed, listing_failed, listings_lagging
from .services.orders import shipment_push
from .services.retention import history_prune
from .services.sync import (
    connection_pull,
    connection_pull_failed,
    listings_reconcile,
    sync_request_run,
    sync_requests_stalled,
    webhook_process,
    webhooks_stalled,
)

log = logging.getLogger(__name__)


def channel_queue(channel_name: str) -> str:
    return f"sync.{channel_name}"


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: 0..min(cap, base * 2^n) seconds."""
    ceiling = min(settings.SYNC_RETRY_BACKOFF_MAX, settings.SYNC_RETRY_BACKOFF_BASE * (2**retries))
    return random.uniform(ceiling / 2, ceiling)


# Celery writes a task's arguments into its message headers for logs and monitors with its own
# saferepr, truncated at this size; the ids and names queued from here are short, so Python's repr
# says the same for a fraction of the cost (about a tenth of a publish).
ARGUMENTS_REPR_MAX = 1024


def _arguments_repr(value: list | dict) -> str | None:
    text = repr(value)
    return text if len(text) <= ARGUMENTS_REPR_MAX else None  # None: Celery truncates it itself


def task_send(task, *, args: list, kwargs: dict | None = None, queue: str | None = None, producer=None) -> bool:
    """Queue a task; False (and a warning) when the broker cannot be reached.

    What is queued from here is always on record first (a lagging listing, a pending webhook,
    a scheduled pull), so a broker outage must not fail the request that recorded it: the
    sweepers (sweep_listings_task, sweep_webhooks_task, sweep_sync_requests_task) and the scheduled pulls queue it again
    once the broker is back. `producer` is the one of a batch (enqueue_converges).
    """
    kwargs = kwargs or {}
    try:
        task.apply_async(
            args=args,
            kwargs=kwargs,
            queue=queue,
            producer=producer,
            argsrepr=_arguments_repr(args),
            kwargsrepr=_arguments_repr(kwargs),
        )
    except BrokerUnreachable as error:
        log.warning("could not queue %s%s (broker unreachable: %s); a sweeper queues it later", task.name, args, error)
        return False
    return True


def enqueue_converge(
    listing_id: int, *, channel_name: str | None = None, account_id: int | None = None, producer=None
) -> None:
    """Converge a listing on its channel's queue (looked up unless the caller knows it).

    Given the listing's account, the worker sets its row-level security scope without a lookup."""
    if channel_name is None:
        channel_name = (
            ChannelListing.objects.filter(pk=listing_id).values_list("connection__channel", flat=True).first()
        )
    if channel_name:
        kwargs = {"channel_name": channel_name}
        if account_id is not None:
            kwargs["account_id"] = account_id
        task_send(
            converge_listing_task,
            args=[listing_id],
            kwargs=kwargs,
            queue=channel_queue(channel_name),
            producer=producer,
        )


def enqueue_converges(listings: list[tuple[int, str]], *, account_id: int | None = None) -> None:
    """Converge listings whose channels the caller knows, (listing id, channel name), each on its
    channel's queue, all handed to the broker in one round trip (kombu's publish batch: one
    pipeline of LPUSHes): a sale's ends on every other channel cost one publish's overhead, not
    one each.

    A batch the broker failed while it was written may have been delivered in part: it is sent
    again one by one, with Celery's publish retries. A converge that arrives twice does its work
    once (the listing's lease), and what cannot be sent at all is left to the sweeper.
    """
    if len(listings) > 1 and not converge_listing_task.app.conf.task_always_eager:
        try:
            with converge_listing_task.app.producer_or_acquire() as producer, producer.batch():
                for listing_id, channel_name in listings:
                    enqueue_converge(listing_id, channel_name=channel_name, account_id=account_id, producer=producer)
            return
        except (BatchPublishError, BrokerUnreachable) as error:
            # Written in part, or no producer to be had: each is sent on its own, with Celery's retries.
            log.warning(
                "a batch of %d converges may not have been queued (%s); sending each again", len(listings), error
            )
    for listing_id, channel_name in listings:
        enqueue_converge(listing_id, channel_name=channel_name, account_id=account_id)


def enqueue_sync_request(run_id: int) -> None:
    """Hand a requested run to its channel's queue; the time is kept only once the broker took
    it, so the sweeper (sweep_sync_requests_task) sends what it never got as soon as it can."""
    row = SyncRun.objects.filter(pk=run_id).values_list("connection__channel", flat=True).first()
    if row and task_send(sync_request_task, args=[run_id], queue=channel_queue(row)):
        SyncRun.objects.filter(pk=run_id, status=SyncStatus.QUEUED).update(queued_at=timezone.now())


def enqueue_pull(connection_id: int) -> None:
    channel_name = ChannelConnection.objects.filter(pk=connection_id).values_list("channel", flat=True).first()
    if channel_name:
        task_send(pull_connection_task, args=[connection_id], queue=channel_queue(channel_name))


def enqueue_webhook(event_id: int, *, channel_name: str | None = None, account_id: int | None = None) -> None:
    """Process a stored delivery; given its channel, the worker reads it with its connection in one query,
    and given its account, sets the row-level security scope without a lookup."""
    kwargs = {"channel_name": channel_name} if channel_name else {}
    if account_id is not None:
        kwargs["account_id"] = account_id
    task_send(process_webhook_event_task, args=[event_id], kwargs=kwargs, queue="webhooks")


@shared_task(
    name="inventory.push_shipment",
    autoretry_for=(TransientChannelError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=60,
)
def push_shipment_task(order_id: int) -> bool:
    """Push an order's carrier and tracking to its channel (channels with a `ship_order` step)."""
    return shipment_push(order_id=order_id)


@shared_task(name="inventory.analytics_summaries_refresh", soft_time_limit=600, time_limit=660)
def analytics_summaries_refresh_task() -> int:
    """Recompute the analytics figures read in the last day (beat, every 5 minutes)."""
    from .services.analytics.summary import summaries_refresh

    return summaries_refresh()


@shared_task(name="inventory.auto_archive", soft_time_limit=600, time_limit=660)
def auto_archive_task() -> dict:
    """Archive sold and shipped items past their account's auto-archive age."""
    archived = items_auto_archive()
    log.info("auto-archive: %s", {slug: len(skus) for slug, skus in archived.items()})
    return {slug: len(skus) for slug, skus in archived.items()}


@shared_task(
    bind=True,
    name="inventory.converge_listing",
    max_retries=8,
    soft_time_limit=settings.SYNC_CONVERGE_TIME_LIMIT_SECONDS - 30,
    time_limit=settings.SYNC_CONVERGE_TIME_LIMIT_SECONDS,
    acks_late=True,
)
def converge_listing_task(self, listing_id: int, channel_name: str | None = None, account_id: int | None = None) -> str:
    """Make one listing on its channel match what the shop wants (with its connection's other
    listings waiting on a price or quantity change, where the channel revises many at once). Idempotent."""
    try:
        with task_scope("inventory.ChannelListing", listing_id, account_id, eager=self.request.is_eager):
            return listing_converge_batched(listing_id, channel_name=channel_name)
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
        log.warning("listing %s: %s; retry %d in %.1f s", listing_id, error, self.request.retries + 1, countdown)
        raise self.retry(exc=error, countdown=countdown) from error
    except SoftTimeLimitExceeded as error:
        return _unexpected(
            self, listing_id, TransientChannelError(f"the channel took longer than {self.soft_time_limit} s"), error
        )
    except Exception as error:
        # A bug or a surprise from the channel: never only a log line. The listing shows the
        # error and the attempt; after a few tries it is given up with an alert.
        log.exception("converging listing %s failed unexpectedly", listing_id)
        return _unexpected(self, listing_id, error, error)


UNEXPECTED_RETRIES = 3


def _unexpected(task, listing_id: int, error: Exception, cause: Exception) -> str:
    message = f"Unexpected error: {type(error).__name__}: {error}"
    listing_attempt_failed(listing_id, message)
    if task.request.retries >= UNEXPECTED_RETRIES:
        listing_failed(listing_id, RuntimeError(message), attempt_counted=True)
        return f"gave up after {task.request.retries} retries: {message}"
    raise task.retry(exc=cause, countdown=backoff_seconds(task.request.retries), max_retries=UNEXPECTED_RETRIES)


@shared_task(
    bind=True, name="inventory.pull_connection", max_retries=3, soft_time_limit=120, time_limit=150, acks_late=True
)
def pull_connection_task(self, connection_id: int) -> str:
    """Read what changed on one channel connection (orders, listing states, new listings)."""
    try:
        with account_scope_of("inventory.ChannelConnection", connection_id):
            run = connection_pull(connection_id=connection_id)
    except TransientChannelError as error:
        connection_pull_failed(connection_id=connection_id, error=error)
        # The next scheduled pull reads the same window again; a short retry catches a blip.
        countdown = (
            error.retry_after
            if isinstance(error, RateLimited) and error.retry_after
            else backoff_seconds(self.request.retries)
        )
        raise self.retry(exc=error, countdown=countdown) from error
    except Exception as error:
        # Refused by the channel, or a surprise: the failed SyncRun says why, staff get an alert,
        # and the next scheduled pull tries again (no retry loop on a revoked token).
        log.warning(
            "pull of connection %s failed: %s", connection_id, error, exc_info=not isinstance(error, ChannelError)
        )
        connection_pull_failed(connection_id=connection_id, error=error)
        return f"failed: {type(error).__name__}: {error}"
    return f"{run.status}: {run.created} new, {run.updated} updated, {run.errors} errors"


@shared_task(name="inventory.process_webhook", acks_late=True, max_retries=5, bind=True)
def process_webhook_event_task(
    self, event_id: int, channel_name: str | None = None, account_id: int | None = None
) -> str:
    """Act on a stored webhook delivery (of that channel and account, when the sender knew them)."""
    try:
        with task_scope("inventory.WebhookEvent", event_id, account_id, eager=self.request.is_eager):
            return webhook_process(event_id=event_id, channel_name=channel_name)
    except TransientChannelError as error:
        raise self.retry(exc=error, countdown=backoff_seconds(self.request.retries)) from error


@shared_task(
    bind=True, name="inventory.sync_request", max_retries=2, soft_time_limit=3000, time_limit=3300, acks_late=True
)
def sync_request_task(self, run_id: int) -> str:
    """A pull, reconcile, audit or import staff asked for (over the API or the admin): runs that SyncRun."""
    try:
        with account_scope_of("inventory.SyncRun", run_id):
            run = sync_request_run(run_id=run_id)
    except TransientChannelError as error:
        raise self.retry(exc=error, countdown=backoff_seconds(self.request.retries)) from error
    return f"{run.kind} {run.status}"


@shared_task(name="inventory.sweep_listings", soft_time_limit=120)
def sweep_listings_task() -> int:
    """Re-enqueue listings lagging their desired state (a lost task or a crash loses nothing),
    and finish disconnects whose listings are all ended."""
    connections_disconnect_finish()
    lagging = listings_lagging()
    for listing_id in lagging:
        enqueue_converge(listing_id)
    if lagging:
        log.info("sweeper re-enqueued %d lagging listing(s)", len(lagging))
    return len(lagging)


WEBHOOK_STALLED_AFTER_SECONDS = 120


@shared_task(name="inventory.sweep_webhooks", soft_time_limit=120)
def sweep_webhooks_task() -> int:
    """Re-queue stored webhook deliveries still pending after a couple of minutes (their task
    could not be queued, e.g. the broker was down when they arrived, or it was lost)."""
    stalled = webhooks_stalled(older_than_seconds=WEBHOOK_STALLED_AFTER_SECONDS)
    for event_id in stalled:
        enqueue_webhook(event_id)
    if stalled:
        log.info("sweeper re-queued %d pending webhook(s)", len(stalled))
    return len(stalled)


@shared_task(name="inventory.sweep_sync_requests", soft_time_limit=120)
def sweep_sync_requests_task() -> int:
    """Send requested syncs nobody took again (their task never reached the broker, or was
    lost); the ones waiting over an hour are failed with an alert instead."""
    stalled = sync_requests_stalled()
    for run_id in stalled:
        enqueue_sync_request(run_id)
    if stalled:
        log.info("sweeper re-queued %d requested sync(s)", len(stalled))
    return len(stalled)


@shared_task(name="inventory.reconcile_connection", soft_time_limit=3000, time_limit=3300)
def reconcile_connection_task(connection_id: int) -> str:
    """The nightly read-back of every live listing on one connection."""
    run = listings_reconcile(connection_id=connection_id)
    return f"{run.status}: {run.updated} drifted, {run.ended} ended, {run.skipped} unchanged"


@shared_task(name="inventory.alert_checks", soft_time_limit=300)
def alert_checks_task() -> dict:
    """Listings not ended after a sale, webhooks that stopped: raised (or kept counting) here."""
    return {"not_ended": alerts_not_ended_check(), "webhooks_stopped": alerts_webhooks_stopped_check()}


@shared_task(name="inventory.alert_digest", soft_time_limit=600)
def alert_digest_task() -> int:
    """The daily e-mail of open alerts not mailed yet."""
    return alerts_digest_send()


@shared_task(name="inventory.reconcile_all")
def reconcile_all_task() -> int:
    ids = list(ChannelConnection.objects.filter(enabled=True).values_list("pk", "channel"))
    for connection_id, channel_name in ids:
        reconcile_connection_task.apply_async(args=[connection_id], queue=channel_queue(channel_name))
    return len(ids)


@shared_task(bind=True, name="inventory.worker_heartbeat", ignore_result=True, soft_time_limit=10, time_limit=20)
def worker_heartbeat_task(self, queue: str) -> str:
    """Beat sends one a minute to every queue: the worker that runs it shows the queue is consumed."""
    heartbeat_record(queue=queue, hostname=self.request.hostname or "")
    return queue


@shared_task(name="inventory.prune_history", soft_time_limit=1200, time_limit=1260)
def prune_history_task() -> dict:
    """Delete sync runs and webhook deliveries past RETENTION_DAYS (keeping what open alerts need)."""
    result = history_prune()
    log.info("retention: %d sync run(s), %d webhook event(s) deleted", result.sync_runs, result.webhook_events)
    return {"sync_runs": result.sync_runs, "webhook_events": result.webhook_events}
