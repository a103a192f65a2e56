"""Celery's Redis broker transport, making its `redis.Redis` once per connection pool.

kombu's Redis channel builds a new `redis.Redis` around its connection pool for every
operation that is not a publish on its cached client: each task's QoS bookkeeping (the
unacked entry when it is delivered, its removal when it is acked), each queue declaration
and size. Building one (its table of about 170 response callbacks) costs about as much CPU
as the Redis round trip itself, 6-8 times a sale (bench/README.md, issue 14).
`config/cache.py` does the same for Django's cache client.

A `redis.Redis` is safe to share: each command takes a connection from the pool and gives it
back. The channel drops its pools after a fork and when it closes, so the shared client is
kept only while it is built on the channel's current pool.

settings.py selects this transport for `redis://` and `rediss://` broker URLs; anything else
(the filesystem broker of the development setup) keeps kombu's own transport.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client = None

    def _create_client(self, asynchronous=False):
        if asynchronous:  # only built for the channel's cached `client` and `subclient`
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
