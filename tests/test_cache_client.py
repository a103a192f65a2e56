"""The Redis cache makes its redis.Redis once per pool (config/cache.py), and still works."""

import pytest

from config.cache import ResilientRedisCache

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
