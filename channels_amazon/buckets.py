"""Rate limits shared by every worker: one token bucket per SP-API operation and selling partner."""

from __future__ import annotations

import time

from django.core.cache import cache

from inventory.channels import RateLimited


class TokenBucket:
    """A token bucket shared by every worker through the cache: (tokens, when) under one key.

    `acquire` takes a token and returns how long to wait for it (a token not there yet is
    reserved: the count goes below zero), or raises RateLimited when the wait would be longer
    than `max_wait` (nothing is taken then). Counting tokens rather than times keeps the state
    right when Amazon reports a different rate.
    """

    def __init__(self, key: str, rate: float, burst: int) -> None:
        self.key = key
        self.rate = rate
        self.burst = max(int(burst), 1)

    def _locked(self):
        lock = f"{self.key}:lock"
        for _ in range(400):  # a cache "mutex": two workers must not both take the last token
            if cache.add(lock, 1, timeout=2):
                return lock
            time.sleep(0.005)
        return lock  # a lock left by a dead worker expires in 2 s; go on rather than hang

    def _state(self, now: float) -> float:
        tokens, at = cache.get(self.key) or (float(self.burst), now)
        return min(float(self.burst), tokens + max(now - at, 0.0) * self.rate)

    def _store(self, tokens: float, now: float) -> None:
        cache.set(self.key, (tokens, now), timeout=int(self.burst / self.rate) + 60)

    def acquire(self, max_wait: float, reserve: int = 0) -> float:
        lock = self._locked()
        try:
            now = time.time()
            tokens = self._state(now)
            # Work that can wait leaves `reserve` tokens for sale-critical calls (ends, read-backs).
            needed = 1 + min(reserve, self.burst - 1)
            wait = 0.0 if tokens >= needed else (needed - tokens) / self.rate
            if wait > max_wait:
                raise RateLimited(f"rate limit: next call allowed in {wait:.1f} s", retry_after=wait)
            self._store(tokens - 1, now)
            return wait
        finally:
            cache.delete(lock)

    def drain(self) -> None:
        """After a 429: Amazon says the bucket is empty, whatever we counted."""
        lock = self._locked()
        try:
            self._store(0.0, time.time())
        finally:
            cache.delete(lock)
