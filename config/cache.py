"""Django's Redis cache, carrying on when Redis is unreachable.

Everything this app keeps in the cache can be lost: API rate-limit windows, usage counters
(rolled up later), cached billing states, "at most one scan per interval" marks, channel
call budgets. So a Redis outage must not turn every request into a 500. While Redis is down
each call behaves as on an empty cache that keeps nothing: `get` misses, `set` keeps
nothing, `add` succeeds (a rate limit or a scan mark fails open: the work goes ahead),
`incr` counts from zero. A warning says so, at most once every WARN_EVERY_SECONDS per
process, so the log shows the outage without a line per request.

Only connection failures and timeouts are absorbed; any other Redis error is a bug and raises.
"""

from __future__ import annotations

import functools
import logging
import time

from django.core.cache import cache as default_cache
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 30.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
_last_warning = [0.0]


def _warn(operation: str, error: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= WARN_EVERY_SECONDS or not _last_warning[0]:
        _last_warning[0] = now
        log.warning(
            "cache unavailable (%s failed: %s): carrying on without it; API rate limits and cache "
            "locks are not enforced until Redis answers again",
            operation,
            error,
        )


def _guarded(fallback):
    """Run the cache operation; on a connection failure log and return fallback(*args)."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as error:
                _warn(method.__name__, error)
                return fallback(*args, **kwargs)

        return wrapper

    return decorate


class ReusedRedisClient(RedisCacheClient):
    """Django's Redis cache client, making its `redis.Redis` once per connection pool.

    Django makes a new `redis.Redis` around the pool on every cache call; building one (its
    table of response callbacks) cost more CPU than the call itself, and the webhook view
    makes two a delivery (bench/README.md, issue 14). A `redis.Redis` is safe to share
    between threads: each command takes a connection from the pool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ResilientRedisCache(RedisCache):
    """RedisCache whose calls degrade to an empty cache while Redis cannot be reached."""

    def __init__(self, server, params):
        options = params.setdefault("OPTIONS", {})
        # A Redis that does not answer must fail fast, not hold a request for a TCP timeout.
        options.setdefault("socket_connect_timeout", 2)
        options.setdefault("socket_timeout", 2)
        super().__init__(server, params)
        self._class = ReusedRedisClient

    @_guarded(lambda key, timeout, delta=1, version=None: delta)
    def incr_with_ttl(self, key, timeout: int, delta: int = 1, version=None) -> int:
        """`incr_with_ttl` below, in one round trip: SET NX EX and INCRBY in one MULTI, so the
        counter cannot expire between the two and live on without its TTL."""
        key = self.make_and_validate_key(key, version=version)
        pipe = self._cache.get_client(key, write=True).pipeline()
        pipe.set(key, 0, ex=timeout, nx=True)
        pipe.incrby(key, delta)
        return pipe.execute()[1]

    @_guarded(lambda key, value, timeout=DEFAULT_TIMEOUT, version=None: True)
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().add(key, value, timeout, version)

    @_guarded(lambda key, default=None, version=None: default)
    def get(self, key, default=None, version=None):
        return super().get(key, default, version)

    @_guarded(lambda key, value, timeout=DEFAULT_TIMEOUT, version=None: None)
    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set(key, value, timeout, version)

    @_guarded(lambda key, timeout=DEFAULT_TIMEOUT, version=None: False)
    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return super().touch(key, timeout, version)

    @_guarded(lambda key, version=None: False)
    def delete(self, key, version=None):
        return super().delete(key, version)

    @_guarded(lambda keys, version=None: {})
    def get_many(self, keys, version=None):
        return super().get_many(keys, version)

    @_guarded(lambda key, version=None: False)
    def has_key(self, key, version=None):
        return super().has_key(key, version)

    @_guarded(lambda key, delta=1, version=None: delta)
    def incr(self, key, delta=1, version=None):
        return super().incr(key, delta, version)

    @_guarded(lambda data, timeout=DEFAULT_TIMEOUT, version=None: list(data))
    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return super().set_many(data, timeout, version)

    @_guarded(lambda keys, version=None: None)
    def delete_many(self, keys, version=None):
        return super().delete_many(keys, version)

    @_guarded(lambda: False)
    def clear(self):
        return super().clear()


def incr_with_ttl(key: str, timeout: int, delta: int = 1, cache=None) -> int:
    """Add `delta` to the counter `key` and return its new value; a new counter lives `timeout`
    seconds from its first count (a rate window, a per-second budget, usage since a roll-up).

    Django's `add` then `incr` is three round trips to Redis (`incr` asks EXISTS first): the
    webhook view and the API throttle count every request, so the Redis cache does it in one.
    Any other cache (the local-memory one of a run without Redis) takes the add-then-incr path."""
    cache = cache or default_cache
    one_trip = getattr(cache, "incr_with_ttl", None)
    if one_trip is not None:
        return one_trip(key, timeout, delta)
    for _ in range(3):
        if cache.add(key, delta, timeout):
            return delta
        try:
            return cache.incr(key, delta)
        except ValueError:  # expired between add and incr: start the next window
            continue
    return delta
