"""Shopify's Admin GraphQL API over HTTP. Knows HTTP and GraphQL, nothing of the ORM.

Every failure becomes one of the channel contract's typed errors, so the engine knows
what to retry:

- no answer (timeout, refused, reset), 5xx, a 2xx that is not JSON -> TransientChannelError
- THROTTLED (HTTP 200 or 429): waited for and retried here, from the cost Shopify reports;
  past `max_throttle_wait` -> RateLimited with the wait Shopify's bucket needs
- 401 / 402 / 403 / 404 / 423 and top-level `errors` -> PermanentChannelError in plain words
  (INTERNAL_SERVER_ERROR in `errors` is transient)
- `userErrors` of a mutation are returned to the caller (`raise_user_errors` turns them into
  a PermanentChannelError naming each field path), since only the caller knows what they mean.

Throttling is cost-based, never a fixed rate: every answer carries `extensions.cost`
(requested and actual points, and the bucket: maximumAvailable, currentlyAvailable,
restoreRate). A `CostBucket` per shop keeps Shopify's last word and paces the next call so
the bucket is not emptied; one shop's bucket never slows another. A throttled call was not
applied, so retrying it (a write too) is safe; a timed-out write may have been applied and
is never retried here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from inventory.channels import PermanentChannelError, RateLimited, TransientChannelError

from .documents import DOCUMENTS

logger = logging.getLogger(__name__)

USER_AGENT = "gear-back-office/1.0 (+channels_shopify)"
# Before Shopify has told us a document's cost, assume a mutation's (10) so the first calls
# of a burst are paced too.
DEFAULT_COST = 10.0

_HTTP_MEANINGS = {
    401: "Shopify refused the access token: check it (Apps > the custom app > API credentials) and that it "
    "belongs to this store.",
    402: "The store is frozen (its Shopify bill is unpaid): nothing can be changed until the owner pays.",
    403: "The access token lacks a scope this needs (read/write products, inventory, orders), or the app was "
    "uninstalled.",
    404: "No such store or API version at this address: check the store's myshopify.com domain and the API version.",
    423: "The store is locked by Shopify (fraud review or closed): contact Shopify support.",
}


@dataclass(frozen=True)
class QueryCost:
    """`extensions.cost` of one answer."""

    requested: float
    actual: float | None
    maximum: float
    available: float
    restore_rate: float

    @classmethod
    def from_extensions(cls, extensions: Any) -> QueryCost | None:
        cost = extensions.get("cost") if isinstance(extensions, Mapping) else None
        status = cost.get("throttleStatus") if isinstance(cost, Mapping) else None
        if not isinstance(status, Mapping):
            return None
        try:
            return cls(
                requested=float(cost.get("requestedQueryCost") or 0),
                actual=float(cost["actualQueryCost"]) if cost.get("actualQueryCost") is not None else None,
                maximum=float(status["maximumAvailable"]),
                available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


class CostBucket:
    """One shop's leaky bucket as Shopify last reported it, shared by every client of that shop in the process.

    `reserve(cost)` says how long to wait before a call of that cost so the bucket does not
    run dry, and books the cost at once, so threads calling together queue up instead of all
    spending the same points. `observe` replaces the estimate with Shopify's own figures, less
    what other calls have booked and Shopify has not answered yet.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.maximum: float | None = None
        self.available: float = 0.0
        self.restore_rate: float = 0.0
        self.pending: float = 0.0  # booked by calls not answered yet
        self._at = 0.0

    def _projected(self, now: float) -> float:
        return min(self.maximum or 0.0, self.available + self.restore_rate * (now - self._at))

    def reserve(self, cost: float) -> float:
        with self._lock:
            self.pending += cost
            if self.maximum is None or self.restore_rate <= 0:
                return 0.0  # nothing known yet: the first answer tells
            now = self._clock()
            available = self._projected(now)
            cost = min(cost, self.maximum)
            wait = 0.0 if available >= cost else (cost - available) / self.restore_rate
            self.available, self._at = available - cost, now
            return wait

    def observe(self, cost: QueryCost, booked: float) -> None:
        with self._lock:
            self.pending = max(0.0, self.pending - booked)
            self.maximum, self.restore_rate = cost.maximum, cost.restore_rate
            self.available, self._at = cost.available - self.pending, self._clock()

    def release(self, booked: float, *, spent: bool = False) -> None:
        """A call ended without Shopify's figures: its booking is dropped (and given back unless it may have run)."""
        with self._lock:
            self.pending = max(0.0, self.pending - booked)
            if not spent and self.maximum is not None:
                self.available = min(self.maximum, self.available + booked)


class ShopifyTimeout(TransientChannelError):
    """No answer in time: the call may have run (and spent its points, or applied its write)."""


_buckets: dict[str, CostBucket] = {}
_buckets_lock = threading.Lock()


def bucket_for(shop_key: str) -> CostBucket:
    """The process's bucket of one shop (by its domain): shops never share one."""
    with _buckets_lock:
        bucket = _buckets.get(shop_key)
        if bucket is None:
            bucket = _buckets[shop_key] = CostBucket()
        return bucket


def describe_user_errors(errors: Any) -> str:
    """Shopify's userErrors in staff's words: "variants.0.price: Price must be positive; ..."."""
    parts = []
    for error in errors or ():
        if not isinstance(error, Mapping):
            continue
        path = [str(p) for p in (error.get("field") or []) if str(p) not in ("input", "product")]
        message = str(error.get("message") or "").strip() or str(error.get("code") or "refused")
        parts.append(f"{'.'.join(path)}: {message}" if path else message)
    return "; ".join(parts)


def raise_user_errors(payload: Mapping[str, Any] | None, what: str) -> None:
    """Raise PermanentChannelError when a mutation's payload carries userErrors."""
    errors = list((payload or {}).get("userErrors") or [])
    if errors:
        raise PermanentChannelError(
            f"Shopify refused {what}: {describe_user_errors(errors)}", body={"userErrors": errors}
        )


class ShopifyClient:
    """An Admin GraphQL session for one store: auth header, timeouts, cost pacing, typed errors, counts."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        *,
        shop_key: str,
        timeout: float = 10.0,
        max_throttle_wait: float = 20.0,
        session: requests.Session | None = None,
        bucket: CostBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token:
            raise PermanentChannelError("No Shopify access token is set for this connection.")
        self.endpoint = endpoint
        self.timeout = timeout
        self.max_throttle_wait = max_throttle_wait
        self.bucket = bucket or bucket_for(shop_key)
        self._sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update(
            {
                "X-Shopify-Access-Token": token,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            }
        )
        self.counts: Counter[str] = Counter()
        self.points_spent = 0.0
        self.throttled = 0  # THROTTLED answers met (each waited for and retried)
        self.waited_seconds = 0.0
        self._costs: dict[str, float] = {}

    def __repr__(self) -> str:  # the token stays out of reprs, logs and tracebacks
        return f"ShopifyClient(endpoint={self.endpoint!r}, token='***')"

    @property
    def total_calls(self) -> int:
        return sum(self.counts.values())

    def execute(self, operation: str, variables: Mapping[str, Any] | None = None) -> dict:
        """Run one of documents.DOCUMENTS by operation name; its `data`, or a typed error."""
        document = DOCUMENTS[operation]
        is_write = document.lstrip().startswith("mutation")
        waited = 0.0
        while True:
            estimate = self._costs.get(operation, DEFAULT_COST)
            pause = self.bucket.reserve(estimate)
            if pause > 0:
                self._pause(pause)
            try:
                answer = self._post(operation, document, variables, is_write)
            except ShopifyTimeout:
                self.bucket.release(estimate, spent=True)  # it may have run
                raise
            except Exception:
                self.bucket.release(estimate)
                raise
            cost = QueryCost.from_extensions(answer.get("extensions"))
            if cost is not None:
                self.bucket.observe(cost, estimate)
                self._costs[operation] = cost.requested
            else:
                self.bucket.release(estimate, spent=True)
            errors = answer.get("errors")
            if _throttled(answer):
                self.throttled += 1
                wait = _throttle_wait(cost, estimate)
                if waited + wait > self.max_throttle_wait:
                    raise RateLimited(
                        f"Shopify's API budget for this store is used up ({operation}); it refills in {wait:.1f} s.",
                        retry_after=wait,
                        status=429,
                        body=errors,
                    )
                logger.info("shopify %s throttled, waiting %.2f s", operation, wait)
                self._pause(wait)
                waited += wait
                continue
            if cost is not None and cost.actual is not None:
                self.points_spent += cost.actual
            if errors:
                raise _graphql_error(operation, errors)
            data = answer.get("data")
            if not isinstance(data, dict):
                raise TransientChannelError(f"Shopify answered {operation} without data.")
            return data

    def _pause(self, seconds: float) -> None:
        self.waited_seconds += seconds
        self._sleep(seconds)

    def _post(self, operation: str, document: str, variables, is_write: bool) -> dict:
        self.counts[operation] += 1
        started = time.monotonic()
        body = json.dumps({"query": document, "variables": dict(variables or {}), "operationName": operation})
        try:
            response = self.session.post(self.endpoint, data=body.encode(), timeout=self.timeout, allow_redirects=False)
        except requests.Timeout as error:
            applied = " The change may have been applied; look it up before repeating it." if is_write else ""
            raise TransientChannelError(
                f"Shopify did not answer {operation} within {self.timeout:g} s.{applied}"
            ) from error
        except requests.RequestException as error:
            raise TransientChannelError(
                f"Could not reach Shopify for {operation}: {error.__class__.__name__}."
            ) from error
        logger.debug(
            "shopify %s -> %s in %.0f ms", operation, response.status_code, (time.monotonic() - started) * 1000
        )
        status = response.status_code
        answer = _json(response)
        if status == 429 or (200 <= status < 300 and answer is not None):
            if answer is None:
                answer = {"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}]}
            if status == 429 and not _throttled(answer):
                answer.setdefault("errors", []).append({"message": "Throttled", "extensions": {"code": "THROTTLED"}})
            return answer
        if 200 <= status < 300:
            raise TransientChannelError(f"Shopify answered {operation} with something that is not JSON.", status=status)
        detail = _error_text(answer) or response.reason or ""
        if status >= 500:
            raise TransientChannelError(
                f"Shopify failed on {operation} ({status}): {detail}", status=status, body=answer
            )
        meaning = _HTTP_MEANINGS.get(status, "")
        message = f"Shopify refused {operation} ({status}): {meaning or detail}"
        if meaning and detail:
            message += f" (Shopify said: {detail})"
        raise PermanentChannelError(message, status=status, body=answer)


def _json(response: requests.Response) -> dict | None:
    if not response.content.strip():
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_text(answer: Any) -> str:
    if not isinstance(answer, Mapping):
        return ""
    errors = answer.get("errors")
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return "; ".join(str(e.get("message") if isinstance(e, Mapping) else e) for e in errors)
    return ""


def _codes(errors: Any) -> set[str]:
    codes = set()
    for error in errors if isinstance(errors, list) else ():
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        if isinstance(extensions, Mapping) and extensions.get("code"):
            codes.add(str(extensions["code"]))
    return codes


def _throttled(answer: Mapping[str, Any]) -> bool:
    return "THROTTLED" in _codes(answer.get("errors"))


def _throttle_wait(cost: QueryCost | None, estimate: float) -> float:
    """(requested - available) / restoreRate, as Shopify's docs say; a second when it did not say."""
    if cost is None or cost.restore_rate <= 0:
        return 1.0
    requested = cost.requested or estimate
    return max(0.05, (requested - cost.available) / cost.restore_rate)


def _graphql_error(operation: str, errors: Any) -> Exception:
    text = _error_text({"errors": errors}) or "unknown error"
    codes = _codes(errors)
    if codes & {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"}:
        return TransientChannelError(f"Shopify failed on {operation}: {text}", body=errors)
    if "ACCESS_DENIED" in codes:
        return PermanentChannelError(
            f"Shopify refused {operation}: {text}. The app needs the scope this asks for.", status=403, body=errors
        )
    if "MAX_COST_EXCEEDED" in codes:
        return PermanentChannelError(f"Shopify refused {operation} as too expensive: {text}", body=errors)
    return PermanentChannelError(f"Shopify refused {operation}: {text}", body=errors)
