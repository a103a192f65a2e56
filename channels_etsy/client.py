"""Etsy's Open API v3 over HTTP. Knows HTTP (and the shared call budget), nothing of the ORM.

Every call sends `x-api-key: keystring:shared_secret` (the spec's securityScheme) and, where
the operation needs OAuth, `Authorization: Bearer <token>` from a token source the caller
gives. Failures become the contract's typed errors:

- no answer, 5xx, a 2xx that is not JSON -> TransientChannelError
- 429 -> waited out and retried here (a 429 was not applied); past a few tries, RateLimited
- 401 -> one token refresh and one retry; a second 401 -> PermanentChannelError
- 404 -> ListingNotFound (or the caller's `not_found`)
- other 4xx -> PermanentChannelError with Etsy's `{"error": ...}` text

Budgets: Etsy limits an app per second and per rolling day and says where it stands in
`x-limit-per-second`, `x-remaining-this-second`, `x-limit-per-day` and `x-remaining-today`.
`CallBudget` keeps those figures in Django's cache, so every worker of every process spends
one budget; when the day's remainder falls to the reserve, only sale-critical calls (ends,
read-backs, receipts) go out and the others raise DailyBudgetLow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import requests
from django.core.cache import cache

from config.cache import incr_with_ttl
from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError

logger = logging.getLogger(__name__)

USER_AGENT = "gear-back-office/1.0 (+channels_etsy)"
PAGE_LIMIT = 100
MAX_429_TRIES = 4
MAX_429_WAIT = 5.0
DAILY_LOW_RETRY_AFTER = 900.0


class DailyBudgetLow(RateLimited):
    """The day's call budget is down to the reserve kept for sales: this call waits."""


class TokenSource(Protocol):
    def token(self) -> str: ...

    def refreshed(self, rejected: str) -> str: ...


@dataclass
class StaticToken:
    """A token that cannot be refreshed (tests, the demo)."""

    value: str

    def token(self) -> str:
        return self.value

    def refreshed(self, rejected: str) -> str:
        raise PermanentChannelError("Etsy refused the token and it cannot be refreshed here.", status=401)


class CallBudget:
    """Etsy's per-second and per-day limits for one app, shared by all workers through the cache."""

    def __init__(
        self,
        app_key: str,
        *,
        per_second: int = 10,
        reserve: int = 500,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_low: Callable[[int], None] | None = None,
    ) -> None:
        self.prefix = "channels_etsy:budget:" + hashlib.sha256(app_key.encode()).hexdigest()[:16]
        self.per_second = per_second
        self.reserve = reserve
        self.clock = clock
        self.sleep = sleep
        self.on_low = on_low
        self.waited = 0.0

    @property
    def limit_per_second(self) -> int:
        return int(cache.get(f"{self.prefix}:limit") or self.per_second)

    @property
    def remaining_today(self) -> int | None:
        value = cache.get(f"{self.prefix}:today")
        return None if value is None else int(value)

    def acquire(self, *, critical: bool) -> None:
        remaining = self.remaining_today
        if remaining is not None and remaining <= self.reserve and not critical:
            if self.on_low is not None:
                self.on_low(remaining)
            raise DailyBudgetLow(
                f"Etsy's daily call budget is down to {remaining} (the {self.reserve} kept for sales): publishing and "
                "revising wait until it recovers.",
                retry_after=DAILY_LOW_RETRY_AFTER,
            )
        for _ in range(200):  # bounded: at most ~200 s of waiting in 1 s slots
            now = self.clock()
            blocked = cache.get(f"{self.prefix}:blocked")
            if blocked and float(blocked) > now:
                self._wait(float(blocked) - now)
                continue
            second = int(now)
            key = f"{self.prefix}:s:{second}"
            used = incr_with_ttl(key, 5)
            if used <= self.limit_per_second:
                return
            self._wait(second + 1 - now)
        raise RateLimited("Etsy's per-second budget stayed spent.", retry_after=1.0)

    def _wait(self, seconds: float) -> None:
        seconds = max(0.001, seconds)
        self.waited += seconds
        self.sleep(seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        limit = _int(headers.get("x-limit-per-second"))
        if limit:
            cache.set(f"{self.prefix}:limit", limit, timeout=3600)
        if _int(headers.get("x-remaining-this-second")) == 0:
            cache.set(f"{self.prefix}:blocked", int(self.clock()) + 1, timeout=5)
        today = _int(headers.get("x-remaining-today"))
        if today is not None:
            cache.set(f"{self.prefix}:today", today, timeout=86_400)

    def block_for(self, seconds: float) -> None:
        cache.set(f"{self.prefix}:blocked", self.clock() + seconds, timeout=int(seconds) + 5)


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def describe_error(status: int, body: Any, fallback: str = "") -> str:
    if isinstance(body, Mapping):
        text = body.get("error") or body.get("error_description") or body.get("message") or ""
        if text:
            return str(text)
    if isinstance(body, str) and body.strip():
        return body.strip()[:300]
    return fallback or f"HTTP {status}"


_HINTS = {
    401: " Reconnect Etsy if this keeps happening.",
    403: " The token lacks a scope (listings_w, transactions_r...) or the shop is not this token's: reconnect Etsy.",
}


@dataclass(frozen=True)
class Page:
    results: list[dict]
    count: int
    offset: int


class EtsyClient:
    """One Etsy shop's API session: key and token headers, the shared budget, paging, typed errors, counts."""

    def __init__(
        self,
        base_url: str,
        keystring: str,
        shared_secret: str,
        *,
        token: TokenSource | None = None,
        budget: CallBudget | None = None,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not keystring or not shared_secret:
            raise PermanentChannelError("The Etsy app's keystring and shared secret are not set for this connection.")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token_source = token
        self.budget = budget or CallBudget(keystring)
        self.sleep = sleep
        self.session = session or requests.Session()
        self.session.headers.update(
            {"x-api-key": f"{keystring}:{shared_secret}", "Accept": "application/json", "User-Agent": USER_AGENT}
        )
        self.counts: Counter[str] = Counter()
        self.rate_limited = 0
        self.refreshes = 0

    def __repr__(self) -> str:  # the key and the token stay out of reprs, logs and tracebacks
        return f"EtsyClient(base_url={self.base_url!r}, key='***')"

    @property
    def total_calls(self) -> int:
        return sum(self.counts.values())

    # --- application ------------------------------------------------------------------

    def ping(self) -> dict:
        """GET openapi-ping: the key alone (no token)."""
        return self._request("GET", "/v3/application/openapi-ping", auth=False, critical=True)

    def me(self) -> dict:
        return self._request("GET", "/v3/application/users/me", critical=True)

    def shop(self, shop_id: int) -> dict:
        return self._request("GET", f"/v3/application/shops/{_id(shop_id)}", critical=True)

    def shipping_profile(self, shop_id: int, profile_id: int) -> dict:
        return self._request(
            "GET", f"/v3/application/shops/{_id(shop_id)}/shipping-profiles/{_id(profile_id)}", critical=True
        )

    def return_policy(self, shop_id: int, policy_id: int) -> dict:
        return self._request(
            "GET", f"/v3/application/shops/{_id(shop_id)}/policies/return/{_id(policy_id)}", critical=True
        )

    # --- listings ---------------------------------------------------------------------

    def create_draft_listing(self, shop_id: int, form: Sequence[tuple[str, str]]) -> dict:
        """POST createDraftListing (form-encoded). Not retried: a lost answer may hide a created draft."""
        return self._request("POST", f"/v3/application/shops/{_id(shop_id)}/listings", form=form)

    def update_listing(
        self, shop_id: int, listing_id: int | str, form: Sequence[tuple[str, str]], *, critical: bool = False
    ) -> dict:
        """PATCH updateListing (form-encoded): the fields given, or `state=active|inactive`."""
        return self._request(
            "PATCH",
            f"/v3/application/shops/{_id(shop_id)}/listings/{_id(listing_id)}",
            form=form,
            not_found=ListingNotFound,
            critical=critical,
        )

    def get_listing(self, listing_id: int | str, *, includes: Sequence[str] = ("Images",)) -> dict:
        params = {"includes": list(includes)} if includes else None
        return self._request(
            "GET",
            f"/v3/application/listings/{_id(listing_id)}",
            params=params,
            not_found=ListingNotFound,
            critical=True,
        )

    def delete_listing(self, listing_id: int | str) -> None:
        """DELETE deleteListing (needs listings_d): used for drafts, which cannot be deactivated."""
        self._request("DELETE", f"/v3/application/listings/{_id(listing_id)}", not_found=ListingNotFound, critical=True)

    def get_inventory(self, listing_id: int | str) -> dict:
        return self._request(
            "GET", f"/v3/application/listings/{_id(listing_id)}/inventory", not_found=ListingNotFound, critical=True
        )

    def update_inventory(self, listing_id: int | str, body: Mapping[str, Any]) -> dict:
        return self._request(
            "PUT", f"/v3/application/listings/{_id(listing_id)}/inventory", json_body=body, not_found=ListingNotFound
        )

    def listing_images(self, listing_id: int | str) -> list[dict]:
        data = self._request("GET", f"/v3/application/listings/{_id(listing_id)}/images", not_found=ListingNotFound)
        return list(data.get("results") or [])

    def upload_image(
        self, shop_id: int, listing_id: int | str, *, image: bytes, filename: str, rank: int, alt_text: str
    ) -> dict:
        """POST uploadListingImage (multipart): the photo's bytes at a rank, with its alt text."""
        return self._request(
            "POST",
            f"/v3/application/shops/{_id(shop_id)}/listings/{_id(listing_id)}/images",
            files={"image": (filename, image, _content_type(filename))},
            form=[("rank", str(rank)), ("alt_text", alt_text), ("overwrite", "true")],
            not_found=ListingNotFound,
        )

    def delete_image(self, shop_id: int, listing_id: int | str, image_id: int | str) -> None:
        self._request(
            "DELETE",
            f"/v3/application/shops/{_id(shop_id)}/listings/{_id(listing_id)}/images/{_id(image_id)}",
            not_found=ListingNotFound,
        )

    def shop_listings(self, shop_id: int, state: str, *, critical: bool = True) -> Iterator[Page]:
        """getListingsByShop for one state, page by page (limit 100, offset)."""
        yield from self._pages(f"/v3/application/shops/{_id(shop_id)}/listings", {"state": state}, critical=critical)

    # --- receipts ---------------------------------------------------------------------

    def receipts_modified_since(self, shop_id: int, min_last_modified: int | None) -> Iterator[Page]:
        """getShopReceipts changed at or after a Unix time, oldest change first, page by page."""
        params: dict[str, Any] = {"sort_on": "updated", "sort_order": "asc"}
        if min_last_modified:
            params["min_last_modified"] = max(946_684_800, int(min_last_modified))
        yield from self._pages(f"/v3/application/shops/{_id(shop_id)}/receipts", params, critical=True)

    def receipt(self, shop_id: int, receipt_id: int | str) -> dict | None:
        try:
            return self._request(
                "GET",
                f"/v3/application/shops/{_id(shop_id)}/receipts/{_id(receipt_id)}",
                not_found=ListingNotFound,
                critical=True,
            )
        except ListingNotFound:
            return None

    def create_receipt_shipment(
        self, shop_id: int, receipt_id: int | str, *, tracking_code: str, carrier_name: str
    ) -> dict:
        """POST createReceiptShipment (JSON): tracking for a receipt; Etsy emails the buyer."""
        return self._request(
            "POST",
            f"/v3/application/shops/{_id(shop_id)}/receipts/{_id(receipt_id)}/tracking",
            json_body={"tracking_code": tracking_code, "carrier_name": carrier_name},
        )

    # --- plumbing ---------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, Any], *, critical: bool) -> Iterator[Page]:
        offset = 0
        for _ in range(10_000):  # bounded: a million rows
            data = self._request(
                "GET", path, params={**params, "limit": PAGE_LIMIT, "offset": offset}, critical=critical
            )
            results = list(data.get("results") or [])
            count = int(data.get("count") or 0)
            yield Page(results=results, count=count, offset=offset)
            offset += len(results)
            if not results or offset >= count:
                return

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Sequence[tuple[str, str]] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        auth: bool = True,
        critical: bool = False,
        not_found: type[PermanentChannelError] = PermanentChannelError,
    ) -> dict:
        url = f"{self.base_url}{quote(path, safe='/')}"
        refreshed = False
        token = self._token() if auth else ""
        for attempt in range(1, MAX_429_TRIES + 1):
            self.budget.acquire(critical=critical)
            response = self._send(method, url, path, params, form, json_body, files, token)
            self.budget.observe(response.headers)
            status = response.status_code
            if status == 429:
                self.rate_limited += 1
                wait = _retry_after(response.headers.get("retry-after"))
                if attempt == MAX_429_TRIES or wait > MAX_429_WAIT:
                    raise RateLimited(f"Etsy rate limit hit on {method} {path}.", retry_after=wait, status=429)
                self.budget.block_for(wait)
                logger.info("etsy 429 on %s %s, waiting %.2f s", method, path, wait)
                continue
            if status == 401 and auth and not refreshed and self.token_source is not None:
                refreshed = True
                self.refreshes += 1
                token = self.token_source.refreshed(token)
                continue
            return self._answer(response, method, path, not_found)
        raise AssertionError("unreachable")

    def _token(self) -> str:
        if self.token_source is None:
            raise PermanentChannelError("This Etsy connection is not connected yet: use Connect Etsy.")
        return self.token_source.token()

    def _send(self, method, url, path, params, form, json_body, files, token) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"params": _query(params), "headers": headers}
        if files:
            kwargs["files"] = files
            kwargs["data"] = list(form or [])
        elif form is not None:
            kwargs["data"] = list(form)
        elif json_body is not None:
            kwargs["data"] = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        self.counts[method] += 1
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.Timeout as error:
            applied = " The change may have been applied; look it up before repeating it." if method != "GET" else ""
            raise TransientChannelError(
                f"Etsy did not answer {method} {path} within {self.timeout:g} s.{applied}"
            ) from error
        except requests.RequestException as error:
            raise TransientChannelError(
                f"Could not reach Etsy for {method} {path}: {error.__class__.__name__}."
            ) from error
        logger.debug(
            "etsy %s %s -> %s in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000
        )
        return response

    @staticmethod
    def _answer(response: requests.Response, method: str, path: str, not_found) -> dict:
        status = response.status_code
        if 200 <= status < 300:
            if not response.content.strip():
                return {}
            try:
                data = response.json()
            except ValueError as error:
                raise TransientChannelError(
                    f"Etsy answered {method} {path} with something that is not JSON."
                ) from error
            return data if isinstance(data, dict) else {"results": data}
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:1000]
        reason = describe_error(status, body, response.reason or "")
        if status >= 500:
            raise TransientChannelError(
                f"Etsy failed on {method} {path} ({status}): {reason}", status=status, body=body
            )
        message = f"Etsy refused {method} {path} ({status}): {reason}.{_HINTS.get(status, '')}"
        if status == 404:
            raise not_found(message, status=status, body=body)
        raise PermanentChannelError(message, status=status, body=body)


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    if not params:
        return None
    pairs = []
    for name, value in params.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            pairs.append((name, ("true" if one else "false") if isinstance(one, bool) else str(one)))
    return pairs


def _retry_after(value: str | None) -> float:
    try:
        return max(0.05, float(str(value).strip()))
    except (TypeError, ValueError):
        return 1.0


def _id(value: int | str) -> str:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ListingNotFound(f"{value!r} is not an Etsy id (a positive number).")
    return text


def _content_type(filename: str) -> str:
    lowered = filename.lower()
    if lowered.endswith(".png"):
        return "image/png"
    if lowered.endswith(".gif"):
        return "image/gif"
    return "image/jpeg"
