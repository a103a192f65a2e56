"""Reverb's REST API (v3, HAL+JSON) over HTTP. Knows HTTP, nothing of the ORM.

Every failure becomes one of the channel contract's typed errors, so the engine knows
what to retry:

- no answer (timeout, connection refused or reset), 5xx, a 2xx that is not JSON
  -> TransientChannelError
- 429 -> RateLimited, with Retry-After in seconds when Reverb sends it
- 404 on a listing -> ListingNotFound
- 400/401/403/406/412/422 and other 4xx -> PermanentChannelError carrying Reverb's
  `{"message": .., "errors": {field: [..]}}` text so staff see why.

Nothing is retried here. A write that timed out may have been applied, so repeating it
blindly is how a guitar gets listed twice: the engine retries, and `publish` looks the
SKU up before it creates anything.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError

from .mappers import format_time, parse_time

logger = logging.getLogger(__name__)

ACCEPT_VERSION = "3.0"
HAL_JSON = "application/hal+json"
END_REASONS = ("not_sold", "reverb_sale")
USER_AGENT = "gear-back-office/1.0 (+channels_reverb)"
# Listings asked for per page of /my/listings. Reverb's OpenAPI document declares `per_page` on
# its other collections (default 24, no maximum given) but not on this one; its clients send it
# here. Paging always follows `_links.next`, so a Reverb that ignores or lowers it costs only
# more pages, never a listing.
LISTING_PAGE_SIZE = 100

_HINTS = {
    401: "Check the token, and that it belongs to this environment (a production token is refused by the sandbox).",
    403: "The token lacks a scope (read/write listings, read orders), or the shop's billing is not set up.",
}


@dataclass(frozen=True)
class ReverbPage:
    """One page of a Reverb collection and where the next one is."""

    items: list[dict]
    total: int | None = None
    current_page: int | None = None
    total_pages: int | None = None
    next_href: str | None = None


@dataclass(frozen=True)
class ListingWrite:
    """Reverb's answer to a create or update: the listing, its message, and its warnings.

    Reverb accepts listings it will not publish and explains only in `warnings`.
    """

    listing: dict
    message: str = ""
    warnings: list[str] = field(default_factory=list)


def describe_error(status: int, body: Any, fallback: str = "") -> str:
    """Reverb's error body as one line staff can act on: the message, then each field's errors."""
    parts: list[str] = []
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("error") or ""
        if message:
            parts.append(str(message))
        errors = body.get("errors")
        if isinstance(errors, Mapping):
            for name, problems in errors.items():
                if isinstance(problems, list | tuple):
                    problems = ", ".join(str(p) for p in problems)
                parts.append(f"{name}: {problems}")
        elif isinstance(errors, list | tuple):
            parts.extend(str(e) for e in errors)
        elif errors:
            parts.append(str(errors))
    elif isinstance(body, str) and body.strip():
        parts.append(body.strip()[:300])
    if not parts and fallback:
        parts.append(fallback)
    hint = _HINTS.get(status)
    if hint:
        parts.append(hint)
    return "; ".join(parts)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)


class ReverbClient:
    """A Reverb API session for one token: headers, timeouts, paging, typed errors, call counts."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        *,
        http: urllib3.PoolManager | None = None,
    ) -> None:
        if not token:
            raise PermanentChannelError("No Reverb API token is set for this connection.")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        base = urlsplit(self.base_url)
        self._origin = f"{base.scheme}://{base.netloc}"
        self._base_path = base.path.rstrip("/")
        self.http = http or _pool_for(self.base_url)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept-Version": ACCEPT_VERSION,
            "Accept": HAL_JSON,
            "Content-Type": HAL_JSON,
            "User-Agent": USER_AGENT,
        }
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.counts: Counter[str] = Counter()

    def close(self) -> None:
        """Let go of the kept-alive connections."""
        self.http.clear()

    def __repr__(self) -> str:  # the token stays out of reprs, logs and tracebacks
        return f"ReverbClient(base_url={self.base_url!r}, token='***')"

    # --- counting ----------------------------------------------------------------------

    @property
    def reads(self) -> int:
        return self.counts["GET"]

    @property
    def writes(self) -> int:
        return sum(n for method, n in self.counts.items() if method != "GET")

    @property
    def total_calls(self) -> int:
        return sum(self.counts.values())

    # --- listings ----------------------------------------------------------------------

    def find_listings_by_sku(self, sku: str) -> list[dict]:
        """Every listing of this seller with exactly this SKU, in any state (drafts included)."""
        wanted = sku.strip().casefold()
        found: list[dict] = []
        for page in self._pages("/my/listings", {"sku": sku, "state": "all"}, "listings"):
            found.extend(
                listing for listing in page.items if str(listing.get("sku") or "").strip().casefold() == wanted
            )
        return found

    def find_listing_by_sku(self, sku: str) -> dict | None:
        """The first listing with this SKU in any state, or None (Reverb's lookup before a create)."""
        listings = self.find_listings_by_sku(sku)
        return listings[0] if listings else None

    def create_listing(self, body: Mapping[str, Any]) -> ListingWrite:
        """POST /listings. Not retried: on a timeout the listing may exist; look the SKU up."""
        return self._listing_write(self._request("POST", "/listings", body=body))

    def update_listing(self, listing_id: str | int, body: Mapping[str, Any]) -> ListingWrite:
        """PUT /listings/{id} with the fields to change."""
        data = self._request("PUT", f"/listings/{_segment(listing_id)}", body=body, not_found=ListingNotFound)
        return self._listing_write(data)

    def get_listing(self, listing_id: str | int) -> dict:
        """GET /listings/{id}: the listing as it is now (/my/listings is an index that lags)."""
        return self._request("GET", f"/listings/{_segment(listing_id)}", not_found=ListingNotFound)

    def end_listing(self, listing_id: str | int, reason: str) -> dict:
        """PUT /my/listings/{id}/state/end. Reverb answers with an empty body."""
        if reason not in END_REASONS:
            raise ValueError(f"Reverb's end reasons are {END_REASONS}, not {reason!r}.")
        return self._request(
            "PUT",
            f"/my/listings/{_segment(listing_id)}/state/end",
            body={"reason": reason},
            not_found=ListingNotFound,
        )

    def delete_listing(self, listing_id: str | int) -> None:
        """DELETE /listings/{id}: drafts only (a published listing answers 400)."""
        self._request("DELETE", f"/listings/{_segment(listing_id)}", not_found=ListingNotFound)

    def my_listings(self, state: str = "all", **params: str) -> Iterator[ReverbPage]:
        """The seller's listings, page by page (Reverb's default state filter is live only)."""
        yield from self._pages(
            "/my/listings", {"state": state, "per_page": str(LISTING_PAGE_SIZE), **params}, "listings"
        )

    # --- orders ------------------------------------------------------------------------

    def orders_updated_since(self, since: datetime | None) -> Iterator[ReverbPage]:
        """Selling orders updated at or after `since`, newest first, page by page.

        Filtered by update date, not creation date, or an order placed earlier and paid
        later is missed. Paging stops early at a page whose orders are all older than
        `since`, in case the filter is ever ignored and the whole history comes back.
        """
        params = {"updated_start_date": format_time(since)} if since else {}
        for page in self._pages("/my/orders/selling/all", params, "orders"):
            yield page
            if since and page.items and all(_older(order, since) for order in page.items):
                break

    def get_order(self, order_number: str | int) -> dict | None:
        """GET /my/orders/selling/{order_number}; None when Reverb has no such order for this shop."""
        try:
            return self._request("GET", f"/my/orders/selling/{_segment(order_number)}", not_found=ListingNotFound)
        except ListingNotFound:
            return None

    def ship_order(self, order_number: str | int, *, provider: str, tracking_number: str) -> dict:
        """POST /my/orders/selling/{order_number}/ship: the parcel left, the buyer is told."""
        body = {"provider": provider, "tracking_number": tracking_number, "send_notification": True}
        return self._request("POST", f"/my/orders/selling/{_segment(order_number)}/ship", body=body)

    # --- account and webhooks ----------------------------------------------------------

    def account(self) -> dict:
        """GET /my/account: who the token belongs to (a cheap check that the token works)."""
        return self._request("GET", "/my/account")

    def register_webhook(self, url: str, topic: str) -> dict:
        """POST /webhooks/registrations. Reverb needs an OAuth token for this (a personal token gets 401)."""
        return self._request("POST", "/webhooks/registrations", body={"url": url, "topic": topic})

    def webhook_registrations(self) -> list[dict]:
        data = self._request("GET", "/webhooks/registrations")
        return list(data.get("registrations") or data.get("webhooks") or [])

    # --- plumbing ----------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, str], key: str) -> Iterator[ReverbPage]:
        target: str | None = path
        query: Mapping[str, str] | None = params
        followed: set[str] = set()
        while target:
            data = self._request("GET", target, params=query)
            links = data.get("_links") or {}
            next_href = (links.get("next") or {}).get("href") or None
            yield ReverbPage(
                items=list(data.get(key) or []),
                total=data.get("total"),
                current_page=data.get("current_page"),
                total_pages=data.get("total_pages"),
                next_href=next_href,
            )
            if not next_href or next_href in followed:  # a link back to a page already read ends the walk
                return
            followed.add(next_href)
            target, query = next_href, None

    def _url(self, path_or_href: str) -> str:
        """A path under the API root, or a `_links` href. Links are only followed on this client's own
        host: one pointing elsewhere is re-rooted here, so a payload can never steer the token away."""
        if not path_or_href.startswith(("http://", "https://")):
            return f"{self.base_url}{path_or_href}"
        link = urlsplit(path_or_href)
        if f"{link.scheme}://{link.netloc}" == self._origin:
            return path_or_href
        path = link.path
        if self._base_path and path.startswith(self._base_path + "/"):
            path = path[len(self._base_path) :]
        query = f"?{link.query}" if link.query else ""
        return f"{self.base_url}{path}{query}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        not_found: type[PermanentChannelError] = PermanentChannelError,
    ) -> dict:
        url = self._url(path)
        shown = urlsplit(url).path
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        is_write = method != "GET"
        self.counts[method] += 1
        started = time.monotonic()
        try:
            response = self.http.request(
                method,
                url,
                body=json.dumps(body).encode() if body is not None else None,
                headers=self.headers,
                timeout=self._timeout,
                retries=False,  # nothing is retried here (see the module's docstring)
                redirect=False,
            )
        except NewConnectionError as error:  # refused, DNS (urllib3 files it under connect timeouts too)
            raise TransientChannelError(
                f"Could not reach Reverb for {method} {shown}: {error.__class__.__name__}."
            ) from error
        except Urllib3Timeout as error:
            applied = " The change may have been applied; look it up before repeating it." if is_write else ""
            raise TransientChannelError(
                f"Reverb did not answer {method} {shown} within {self.timeout:g} s.{applied}"
            ) from error
        except HTTPError as error:  # reset, TLS, a proxy that failed...
            raise TransientChannelError(
                f"Could not reach Reverb for {method} {shown}: {error.__class__.__name__}."
            ) from error
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status
        logger.debug("reverb %s %s -> %s in %.0f ms", method, shown, status, elapsed_ms)

        if 200 <= status < 300:
            return self._json(response, method, shown)
        body_seen = self._error_body(response)
        reason = describe_error(status, body_seen, fallback=response.reason or "")
        message = f"Reverb refused {method} {shown} ({status}): {reason}"
        if status == 429:
            raise RateLimited(
                f"Reverb rate limit hit on {method} {shown}.",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                status=status,
                body=body_seen,
            )
        if status >= 500:
            raise TransientChannelError(
                f"Reverb failed on {method} {shown} ({status}): {reason}", status=status, body=body_seen
            )
        if status == 404:
            raise not_found(message, status=status, body=body_seen)
        raise PermanentChannelError(message, status=status, body=body_seen)

    @staticmethod
    def _json(response: urllib3.BaseHTTPResponse, method: str, shown: str) -> dict:
        if not response.data.strip():
            return {}
        try:
            data = json.loads(response.data)
        except ValueError as error:
            raise TransientChannelError(
                f"Reverb answered {method} {shown} with something that is not JSON.", status=response.status
            ) from error
        return data if isinstance(data, dict) else {"items": data}

    @staticmethod
    def _error_body(response: urllib3.BaseHTTPResponse) -> Any:
        try:
            return json.loads(response.data)
        except ValueError:
            return response.data.decode("utf-8", "replace")[:1000]

    @staticmethod
    def _listing_write(data: dict) -> ListingWrite:
        listing = data.get("listing") if isinstance(data.get("listing"), dict) else data
        warnings = data.get("warnings") or []
        if isinstance(warnings, str):
            warnings = [warnings]
        elif isinstance(warnings, Mapping):
            warnings = [f"{k}: {v}" for k, v in warnings.items()]
        return ListingWrite(
            listing=listing, message=str(data.get("message") or ""), warnings=[str(w) for w in warnings]
        )


def _pool_for(base_url: str) -> urllib3.PoolManager:
    """Kept-alive HTTP for one marketplace host, through the environment's proxy for it, if any.

    The proxy (HTTPS_PROXY / HTTP_PROXY, less NO_PROXY) and the CA bundle (REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE, else certifi's) are read from the environment once, here. urllib3 directly:
    `requests` spent about as much CPU preparing and merging each call as urllib3 spends
    making it (bench/README.md, issue 14), and a sale makes five calls to Reverb."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
    split = urlsplit(base_url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(split.scheme)
    if proxy and not urllib.request.proxy_bypass_environment(split.hostname or "", proxies):
        return urllib3.ProxyManager(proxy, ca_certs=bundle, maxsize=2)
    return urllib3.PoolManager(ca_certs=bundle, maxsize=2)


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def _older(order: Mapping[str, Any], since: datetime) -> bool:
    updated = parse_time(order.get("updated_at"))
    return updated is not None and updated < since
