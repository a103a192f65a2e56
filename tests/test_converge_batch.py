"""A sale's ends on the other channels reach the broker in one round trip (issue 14, sixth pass).

The converges a sale queues after its commit go to Redis as one pipeline (kombu's publish
batch); a batch the broker fails while it is written is sent again one by one, and a broker
that cannot be reached fails nothing (the sweeper queues the lagging listings later). Checked
on the real broker: the messages are read back from their queue.
"""

from __future__ import annotations

import base64
import json
import logging
from unittest import mock

import pytest
import redis
from django.db import transaction
from kombu.transport.redis import PublishBatch

from config.celery import app
from inventory import tasks
from inventory.services.listings import _enqueue_on_channels
from tests.outage import broker_down

pytestmark = [pytest.mark.redis]

CHANNEL = "batchtest"  # a queue of its own ("sync.batchtest"): no worker, no other test reads it
QUEUE = tasks.channel_queue(CHANNEL)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(app.conf.broker_url)
    client.delete(QUEUE)
    yield client
    client.delete(QUEUE)


def _queued(broker) -> list[tuple[str, list, dict, str]]:
    """(task name, args, kwargs, argsrepr) of each message on the queue, in the order sent."""
    found = []
    for raw in reversed(broker.lrange(QUEUE, 0, -1)):  # LPUSH: the newest first
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args, kwargs, message["headers"]["argsrepr"]))
    return found


@pytest.fixture
def flushes():
    """How many times a publish batch was written to Redis."""
    written = []
    original = PublishBatch.flush

    def flush(batch):
        written.append(batch._buffered)
        return original(batch)

    with mock.patch.object(PublishBatch, "flush", flush):
        yield written


def test_the_converges_of_a_sale_are_queued_in_one_round_trip(broker, flushes):
    tasks.enqueue_converges([(11, CHANNEL), (12, CHANNEL), (13, CHANNEL)], account_id=7)

    assert _queued(broker) == [
        ("inventory.converge_listing", [n], {"channel_name": CHANNEL, "account_id": 7}, f"[{n}]") for n in (11, 12, 13)
    ]
    assert flushes == [3]  # one pipeline of three LPUSHes


@pytest.mark.django_db(transaction=True)
def test_a_sale_hands_its_ends_to_the_broker_after_commit_in_one_batch(broker, flushes):
    with transaction.atomic():
        _enqueue_on_channels([(21, CHANNEL), (22, CHANNEL), (21, CHANNEL)], account_id=3)
        assert _queued(broker) == []  # nothing before the commit

    assert [(args, kwargs) for _task, args, kwargs, _repr in _queued(broker)] == [
        ([21], {"channel_name": CHANNEL, "account_id": 3}),
        ([22], {"channel_name": CHANNEL, "account_id": 3}),
    ]
    assert flushes == [2]


def test_a_single_converge_is_sent_as_before(broker, flushes):
    tasks.enqueue_converges([(31, CHANNEL)])

    assert [(args, kwargs) for _task, args, kwargs, _repr in _queued(broker)] == [([31], {"channel_name": CHANNEL})]
    assert flushes == []


def test_a_batch_the_broker_failed_is_sent_again_one_by_one(broker, caplog):
    original = redis.client.Pipeline.execute
    failures = []

    def execute(pipeline, *args, **kwargs):
        if not failures:  # the broker drops the connection while the batch is written
            failures.append(True)
            raise redis.ConnectionError("Connection reset by peer")
        return original(pipeline, *args, **kwargs)

    with (
        mock.patch.object(redis.client.Pipeline, "execute", execute),
        caplog.at_level(logging.WARNING, logger="inventory.tasks"),
    ):
        tasks.enqueue_converges([(41, CHANNEL), (42, CHANNEL)], account_id=5)

    assert failures == [True]
    assert [args for _task, args, _kwargs, _repr in _queued(broker)] == [[41], [42]]
    assert "a batch of 2 converges may not have been queued" in caplog.text


def test_a_batch_that_cannot_get_a_producer_is_sent_one_by_one(broker, caplog):
    from kombu.exceptions import OperationalError

    original, refused = app.producer_or_acquire, []

    def no_producer(*args, **kwargs):
        if not refused:  # the batch's producer; the sends after it get theirs (the broker is back)
            refused.append(True)
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return original(*args, **kwargs)

    with (
        mock.patch.object(app, "producer_or_acquire", no_producer),
        caplog.at_level(logging.WARNING, logger="inventory.tasks"),
    ):
        tasks.enqueue_converges([(61, CHANNEL), (62, CHANNEL)], account_id=5)

    assert refused == [True]
    assert [args for _task, args, _kwargs, _repr in _queued(broker)] == [[61], [62]]
    assert "a batch of 2 converges may not have been queued" in caplog.text


def test_an_unreachable_broker_fails_nothing_and_says_the_sweeper_will_queue_them(caplog):
    with broker_down(), caplog.at_level(logging.WARNING, logger="inventory.tasks"):
        tasks.enqueue_converges([(51, CHANNEL), (52, CHANNEL)], account_id=5)

    assert caplog.text.count("broker unreachable") == 2
    assert "a sweeper queues it later" in caplog.text


def test_long_arguments_are_left_to_celery_to_shorten():
    assert tasks._arguments_repr([1, 2]) == "[1, 2]"
    assert tasks._arguments_repr(list(range(1000))) is None
