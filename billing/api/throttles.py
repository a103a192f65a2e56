"""API requests per minute per account, from the plan, counted in the cache (Redis in production)."""

from __future__ import annotations

import time

from rest_framework.throttling import BaseThrottle

from config.cache import incr_with_ttl

from ..errors import RateLimitReached
from ..selectors import billing_state_cached, upgrade_for_rate
from ..services.usage import usage_record

WINDOW_SECONDS = 60
_clock = time.time  # replaced in tests to pin the window


class PlanRateThrottle(BaseThrottle):
    """A fixed one-minute window per account: one cache increment per request, no query
    (the plan is cached per account for a minute). Also counts the account's API requests
    for its usage. Anonymous requests and platform superusers are not limited here."""

    def allow_request(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated) or user.is_superuser or not user.account_id:
            return True
        account_id = user.account_id
        usage_record(account_id, "api_requests")
        state = billing_state_cached(account_id)
        rate = state.plan.api_requests_per_minute
        if rate is None:
            return True
        now = _clock()
        window = int(now // WINDOW_SECONDS)
        count = incr_with_ttl(f"billing:rpm:{account_id}:{window}", WINDOW_SECONDS * 2)
        if count <= rate:
            return True
        retry_after = max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1)
        upgrade = upgrade_for_rate(state.plan)
        text = (
            f"Your {state.plan.name} plan allows {rate} API requests per minute and this minute's are used up; "
            f"retry in {retry_after} s."
        )
        if upgrade is not None:
            text += f" {upgrade.name} allows {upgrade.api_requests_per_minute or 'unlimited'} per minute."
        raise RateLimitReached(
            text,
            limit="api_requests_per_minute",
            allowed=rate,
            usage=count - 1,
            plan=state.plan.code,
            upgrade_plan=upgrade.code if upgrade else None,
            retry_after=retry_after,
        )

    def wait(self) -> float | None:
        return None
