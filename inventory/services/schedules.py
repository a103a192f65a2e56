"""Periodic pulls per channel connection, kept in django-celery-beat.

Each enabled connection gets one interval task "pull <channel> #<id>" on its channel's
queue. Its start time is set to the connection's offset within the interval, so
connections with the same interval do not all pull at the same second.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from ..models import ChannelConnection

PULL_PREFIX = "pull "


def pull_task_name(connection: ChannelConnection) -> str:
    return f"{PULL_PREFIX}{connection.channel} #{connection.pk} ({connection.name})"


def _pull_task_wanted(connection: ChannelConnection) -> tuple[dict, datetime]:
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=connection.pull_interval_seconds, period=IntervalSchedule.SECONDS
    )
    now = timezone.now().replace(second=0, microsecond=0)
    start = now + timedelta(seconds=connection.pull_offset_seconds % max(connection.pull_interval_seconds, 1))
    wanted = {
        "task": "inventory.pull_connection",
        "interval": interval,
        "crontab": None,
        "args": json.dumps([connection.pk]),
        "queue": f"sync.{connection.channel}",
        "enabled": True,
    }
    return wanted, start


def _pull_task_put(connection: ChannelConnection) -> tuple[str, str | None]:
    """Create or update one connection's pull task. Returns (name, "created" | "updated" | None)."""
    wanted, start = _pull_task_wanted(connection)
    name = pull_task_name(connection)
    existing = PeriodicTask.objects.filter(name=name).first()
    if existing is None:
        PeriodicTask.objects.create(name=name, start_time=start, **wanted)
        return name, "created"
    if any(getattr(existing, k) != v for k, v in wanted.items()):
        for k, v in wanted.items():
            setattr(existing, k, v)
        existing.start_time = start
        existing.save()
        return name, "updated"
    return name, None


def _pull_tasks_of(connection_id: int):
    return PeriodicTask.objects.filter(
        name__startswith=PULL_PREFIX, task="inventory.pull_connection", args=json.dumps([connection_id])
    )


@transaction.atomic
def connection_schedule_sync(connection_id: int) -> str:
    """Bring one connection's pull task in line with it: created, updated, renamed or removed.

    Called after every create, edit, disconnect and delete, so a connection added in the admin
    or over the API is pulled from its first interval on. Paused and disconnecting connections
    keep pulling (their sales must still be recorded); disabled ones stop.
    """
    connection = ChannelConnection.objects.filter(pk=connection_id).first()
    tasks = _pull_tasks_of(connection_id)
    if connection is None or not connection.enabled:
        removed = tasks.count()
        tasks.delete()
        return "removed" if removed else "none"
    tasks.exclude(name=pull_task_name(connection)).delete()  # renamed connection: the old name goes
    _name, change = _pull_task_put(connection)
    return change or "unchanged"


@transaction.atomic
def connection_schedules_sync() -> dict[str, list[str]]:
    """Create, update or remove the pull task of every connection. Returns what changed."""
    report: dict[str, list[str]] = {"created": [], "updated": [], "removed": []}
    keep = set()
    for connection in ChannelConnection.objects.filter(enabled=True).order_by("pk"):
        name, change = _pull_task_put(connection)
        keep.add(name)
        if change:
            report[change].append(name)
    stale = PeriodicTask.objects.filter(name__startswith=PULL_PREFIX, task="inventory.pull_connection").exclude(
        name__in=keep
    )
    report["removed"] = list(stale.values_list("name", flat=True))
    stale.delete()
    return report
