"""A real Celery worker on the Redis broker runs the scheduled inventory work.

The worker runs in threads of the test process (the e2e harness's worker, which also ends
its database sessions afterwards) against the broker in
REDIS_URL; the task is sent with `.delay()` over Redis, not run eagerly. The test uses a
committed database (transactional) so the worker's own connection sees the rows.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app
from inventory.models import Item, ItemStateChange
from inventory.services import Actor, item_transition
from inventory.states import ItemState
from inventory.tasks import auto_archive_task
from tests.factories import make_item
from tests.test_sync_e2e_harness import real_worker

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def wait_for(condition, *, timeout: float = 20.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def test_auto_archive_sent_over_redis_is_run_by_a_real_worker(account):
    # Given the app talks to the Redis in REDIS_URL, not the filesystem broker, and does not run tasks eagerly
    assert app.conf.broker_url == settings.REDIS_URL
    assert not app.conf.task_always_eager
    # And a sold item older than the account's auto-archive age, and a recent one
    old = make_item(account, sku="OLD-SOLD", quantity=1)
    recent = make_item(account, n=1, sku="NEW-SOLD", quantity=1)
    for item in (old, recent):
        item_transition(item_id=item.pk, to_state=ItemState.SOLD, actor=Actor(source="test"))
    Item.objects.filter(pk=old.pk).update(
        state_changed_at=timezone.now() - timedelta(days=account.auto_archive_after_days + 1)
    )
    with real_worker(concurrency=1):
        # When the task is enqueued through the broker
        result = auto_archive_task.delay()

        # Then the worker archives the old item, through the service, with a history row
        archived = wait_for(lambda: Item.objects.filter(pk=old.pk, state=ItemState.ARCHIVED).exists())
    assert archived, "the worker did not archive the item within 20 s"
    assert result.id
    row = ItemStateChange.objects.filter(item=old).order_by("-id").first()
    assert (row.from_state, row.to_state, row.source) == (ItemState.SOLD, ItemState.ARCHIVED, "system")
    # And nothing else was touched
    assert Item.objects.get(pk=recent.pk).state == ItemState.SOLD
    assert ItemStateChange.objects.filter(item=recent, to_state=ItemState.ARCHIVED).count() == 0
