"""The Redis broker transport builds its redis.Redis once per pool (config/broker.py) and still
delivers, acks and redelivers as kombu's own does, over the Redis in REDIS_URL."""

from __future__ import annotations

import uuid

import pytest
from kombu import Connection, Exchange, Queue

from config import broker
from config.celery import app

pytestmark = pytest.mark.redis


@pytest.fixture
def connection(settings):
    with Connection(settings.REDIS_URL, transport="config.broker:Transport") as conn:
        yield conn


@pytest.fixture
def queue(connection):
    name = f"broker-transport-test-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    yield queue
    with connection.channel() as channel:
        queue(channel).delete()


def test_the_app_uses_it_for_a_redis_broker():
    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, broker.Channel)
        assert conn.transport.driver_type == "redis"


def test_one_client_serves_every_operation_until_the_pool_is_dropped(connection):
    channel = connection.default_channel
    with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
        assert first is second
        assert first.connection_pool is channel.pool

    channel._after_fork()  # a fork (or close) drops the pools: a client on the old one is not reused

    with channel.conn_or_acquire() as after:
        assert after is not first
        assert after.connection_pool is channel.pool
        assert after.ping()


def test_a_message_is_delivered_acked_and_an_unacked_one_comes_back(connection, queue, settings):
    with connection.Producer() as producer:
        for n in (1, 2):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])

    with connection.SimpleQueue(queue) as simple:
        first = simple.get(timeout=5)
        first.ack()
        second = simple.get(timeout=5)
        assert (first.payload, second.payload) == ({"n": 1}, {"n": 2})
        channel = simple.channel
        assert second.delivery_tag in channel.qos._delivered  # unacked: kept for redelivery
        channel.qos.restore_unacked()  # what kombu does when the consumer goes away unacked

    with (
        Connection(settings.REDIS_URL, transport="config.broker:Transport") as again,
        again.SimpleQueue(queue) as simple,
    ):
        message = simple.get(timeout=5)
        assert message.payload == {"n": 2}
        message.ack()
        with pytest.raises(simple.Empty):  # acked: gone for good
            simple.get(timeout=0.5)
