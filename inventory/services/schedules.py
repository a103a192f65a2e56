"""Periodic pulls per channel connection, kept in django-celery-beat.

Each enabled connection gets one interval task "pull <channel> #<id>" on its channel's
queue. Its start time is set to the connection's offset within the interval, so
connections with the same interval do not all pull at the same second.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ..models import ChannelConnection

PULL_PREFIX = "pull "


def pull_task_name(connection: ChannelConnection) -> str:
    return f"{PULL_PREFIX}{connection.channel} #{connection.pk} ({connection.name})"


@transaction.atomic
def connection_schedules_sync() -> dict[str, list[str]]:
    """Create, update or remove the pull task of every connection. Returns what changed."""
    report: dict[str, list[str]] = {"created": [], "updated": [], "removed": []}
    keep = set()
    now = timezone.now().replace(second=0, microsecond=0)
    for connection in ChannelConnection.objects.filter(enabled=True).order_by("pk"):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=connection.pull_interval_seconds, period=IntervalSchedule.SECONDS
        )
        name = pull_task_name(connection)
        keep.add(name)
        start = now + timedelta(seconds=connection.pull_offset_seconds % max(connection.pull_interval_seconds, 1))
        existing = PeriodicTask.objects.filter(name=name).first()
        wanted = {
            "task": "inventory.pull_connection",
            "interval": interval,
            "crontab": None,
            "args": json.dumps([connection.pk]),
            "queue": f"sync.{connection.channel}",
            "enabled": True,
        }
        if existing is None:
            PeriodicTask.objects.create(name=name, start_time=start, **wanted)
            report["created"].append(name)
        elif any(getattr(existing, k) != v for k, v in wanted.items()):
            for k, v in wanted.items():
                setattr(existing, k, v)
            existing.start_time = start
            existing.save()
            report["updated"].append(name)
    stale = PeriodicTask.objects.filter(name__startswith=PULL_PREFIX, task="inventory.pull_connection").exclude(
        name__in=keep
    )
    report["removed"] = list(stale.values_list("name", flat=True))
    stale.delete()
    return report
