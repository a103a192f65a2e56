"""The Redis cache makes its redis.Redis once per pool (config/cache.py), and still works."""

import pytest
from django.core.cache.backends.locmem import LocMemCache

from config.cache import ResilientRedisCache, incr_with_ttl

pytestmark = pytest.mark.redis


def test_one_redis_client_serves_every_call(settings):
    cache = ResilientRedisCache(settings.REDIS_URL, {})
    first = cache._cache.get_client("a", write=True)
    assert cache._cache.get_client("b", write=True) is first
    assert cache._cache.get_client("c") is first  # one server: reads and writes share the pool
    cache.set("cache-client-test", {"n": 1}, 30)
    assert cache.add("cache-client-test", "other", 30) is False
    assert cache.get("cache-client-test") == {"n": 1}
    assert cache.add("cache-client-test-count", 0, 30) is True
    assert cache.incr("cache-client-test-count") == 1
    cache.delete_many(["cache-client-test", "cache-client-test-count"])
    assert cache.get("cache-client-test") is None


def test_a_window_counter_is_one_round_trip_and_keeps_its_first_ttl(settings):
    cache = ResilientRedisCache(settings.REDIS_URL, {})
    key = "cache-client-test-window"
    cache.delete(key)
    client = cache._cache.get_client(key, write=True)
    sent = []
    original = client.connection_pool.get_connection

    def counting(*args, **kwargs):
        sent.append(args)
        return original(*args, **kwargs)

    client.connection_pool.get_connection = counting
    try:
        assert incr_with_ttl(key, 30, cache=cache) == 1
        assert incr_with_ttl(key, 90, delta=4, cache=cache) == 5
    finally:
        del client.connection_pool.get_connection
    assert len(sent) == 2  # one connection checkout, one round trip, per count
    redis_key = cache.make_and_validate_key(key)
    assert 0 < client.ttl(redis_key) <= 30  # the first count's TTL, not the later one's
    assert cache.get(key) == 5  # an integer Django's cache reads back
    assert cache.decr(key, 5) == 0
    cache.delete(key)


def test_a_window_counter_on_a_cache_without_redis_counts_the_same():
    cache = LocMemCache("window-counter-test", {})
    assert incr_with_ttl("k", 30, cache=cache) == 1
    assert incr_with_ttl("k", 30, delta=2, cache=cache) == 3
    assert cache.get("k") == 3
