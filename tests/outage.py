"""Redis and the Celery broker made unreachable for a test: both pointed at a closed port."""

from __future__ import annotations

import contextlib
import socket

import pytest


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def broker_down():
    """Celery's broker at a closed port: every apply_async fails as it does when Redis is down."""
    from config.celery import app

    saved = app.conf.broker_url
    app.conf.broker_url = f"redis://127.0.0.1:{closed_port()}/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        app.conf.broker_url = saved
        app._pool = None
        app.amqp._producer_pool = None


@pytest.fixture
def redis_down(settings):
    """The cache (config.cache.ResilientRedisCache, as in production) and the broker at a closed port."""
    from config import cache as resilient

    resilient._last_warning[0] = 0.0  # its warning is once per 30 s per process: this outage gets its own
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.ResilientRedisCache", "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}
    }
    with broker_down():
        yield
