"""Retention: old sync runs and processed webhook deliveries are deleted after a configurable age.

Never deleted, whatever their age: runs still queued or running, deliveries still pending or
failed (work not done, or evidence of why), and anything of a connection that an open alert
points to (the runs and deliveries staff may need to read to settle it). An open conflict
points to orders and an item, not to runs or deliveries; its connections' alerts keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import Alert, ChannelListing, Conflict, ConflictStatus, SyncRun, SyncStatus, WebhookEvent, WebhookStatus

BATCH = 1000


@dataclass(frozen=True)
class PruneResult:
    sync_runs: int
    webhook_events: int
    kept_connections: tuple[int, ...]


def _connections_in_use() -> set[int]:
    """Connections an open alert or an open conflict's item points to, directly or through a listing."""
    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    ids = set(open_alerts.exclude(connection_id=None).values_list("connection_id", flat=True))
    ids |= set(
        ChannelListing.objects.filter(pk__in=open_alerts.exclude(listing_id=None).values("listing_id")).values_list(
            "connection_id", flat=True
        )
    )
    open_conflict_items = Conflict.objects.filter(status=ConflictStatus.OPEN).values("item_id")
    ids |= set(ChannelListing.objects.filter(item_id__in=open_conflict_items).values_list("connection_id", flat=True))
    return ids


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while True:
        ids = list(queryset.values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]


def history_prune(*, older_than: timedelta | None = None, dry_run: bool = False) -> PruneResult:
    """Delete finished sync runs and processed webhook deliveries older than `older_than`
    (RETENTION_DAYS by default), in batches, keeping what open alerts and conflicts need."""
    age = older_than if older_than is not None else timedelta(days=settings.RETENTION_DAYS)
    cutoff = timezone.now() - age
    keep = _connections_in_use()
    runs = (
        SyncRun.objects.filter(started_at__lt=cutoff)
        .exclude(status__in=[SyncStatus.QUEUED, SyncStatus.RUNNING])
        .exclude(connection_id__in=keep)
    )
    events = WebhookEvent.objects.filter(received_at__lt=cutoff, status=WebhookStatus.PROCESSED).exclude(
        connection_id__in=keep
    )
    if dry_run:
        return PruneResult(runs.count(), events.count(), tuple(sorted(keep)))
    return PruneResult(_delete_in_batches(runs), _delete_in_batches(events), tuple(sorted(keep)))
