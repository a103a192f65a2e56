"""eBay's REST Sell APIs (Inventory, Fulfillment, Account, Notification) over HTTP, with OAuth.

Knows HTTP, nothing of the ORM. Every failure becomes one of the channel contract's typed errors:

- no answer (timeout, refused, reset), 5xx, a 2xx that is not JSON -> EbayTransientError
- 429 -> RateLimited (Retry-After when sent)
- errorId 25001 (system error) or 25025 (concurrent access), whatever the status -> EbayTransientError
- 404, or 25702 (SKU not found) / 25713 (offer not available) -> ListingNotFound
- any other 4xx -> EbayRequestError, with eBay's message and the field it names (25002, 25709, 25020...)

OAuth: the user access token comes from the refresh-token grant and is kept in Django's cache
(shared by every worker) until shortly before it expires; a 401 drops it, refreshes once and
retries the call once. The Notification API's public keys need an application token
(client-credentials grant), cached the same way.

Nothing else is retried here: a write that timed out may have been applied, so the sync
functions look up what exists (by SKU) before they create anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests
from django.core.cache import cache

from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError

logger = logging.getLogger(__name__)

INVENTORY = "/sell/inventory/v1"
FULFILLMENT = "/sell/fulfillment/v1"
ACCOUNT = "/sell/account/v1"
NOTIFICATION = "/commerce/notification/v1"

USER_SCOPES = (
    "https://api.ebay.com/oauth/api_scope/sell.inventory",
    "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
    "https://api.ebay.com/oauth/api_scope/sell.account",
)
APP_SCOPE = "https://api.ebay.com/oauth/api_scope"
NOTIFY_SCOPE = "https://api.ebay.com/oauth/api_scope/commerce.notification.subscription"
TRANSIENT_ERROR_IDS = frozenset({25001, 25025})
NOT_FOUND_ERROR_IDS = frozenset({25702, 25713})
TOKEN_MARGIN = 300  # seconds before expiry at which a cached token is no longer used
BULK_LIMIT = 25
USER_AGENT = "gear-back-office/1.0 (+channels_ebay)"

_HINTS = {
    401: "Check the client id, client secret and refresh token, and that they belong to this environment.",
    403: "The refresh token lacks a scope (sell.inventory, sell.fulfillment, sell.account): authorise the app again.",
}


@dataclass(frozen=True)
class EbayErrorDetail:
    """One entry of eBay's `errors` (or `warnings`) array."""

    error_id: int | None
    message: str
    long_message: str = ""
    category: str = ""
    field: str = ""

    @classmethod
    def parse(cls, raw: Mapping) -> EbayErrorDetail:
        try:
            error_id = int(raw.get("errorId"))
        except (TypeError, ValueError):
            error_id = None
        names = [str(p.get("value") or "") for p in raw.get("parameters") or [] if isinstance(p, Mapping)]
        refs = [str(r) for r in raw.get("inputRefIds") or []]
        return cls(
            error_id=error_id,
            message=str(raw.get("message") or ""),
            long_message=str(raw.get("longMessage") or ""),
            category=str(raw.get("category") or ""),
            field=", ".join(x for x in (refs or names) if x),
        )

    def describe(self) -> str:
        text = f"eBay {self.error_id}: {self.long_message or self.message}" if self.error_id else self.message
        return f"{text} (field: {self.field})" if self.field else text


def error_details(body: Any) -> list[EbayErrorDetail]:
    if isinstance(body, Mapping):
        return [EbayErrorDetail.parse(e) for e in body.get("errors") or [] if isinstance(e, Mapping)]
    return []


class EbayRequestError(PermanentChannelError):
    """eBay refused the request (a user error, an invalid value, a missing precondition): fix and resend."""

    def __init__(self, message: str, *, errors: list[EbayErrorDetail] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = errors or []

    @property
    def error_ids(self) -> set[int]:
        return {e.error_id for e in self.errors if e.error_id is not None}


class EbayTransientError(TransientChannelError):
    """A 5xx, a timeout, or eBay's 25001 / 25025: try again."""

    def __init__(self, message: str, *, errors: list[EbayErrorDetail] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = errors or []


class EbayListingNotFound(ListingNotFound):
    def __init__(self, message: str, *, errors: list[EbayErrorDetail] | None = None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = errors or []


def describe_error(status: int, body: Any) -> str:
    details = error_details(body)
    parts = [d.describe() for d in details]
    if not parts and isinstance(body, str) and body.strip():
        parts.append(body.strip()[:300])
    if not parts:
        parts.append(f"eBay answered HTTP {status}")
    hint = _HINTS.get(status)
    if hint:
        parts.append(hint)
    return "; ".join(parts)


def error_for(status: int, body: Any, *, retry_after: str | None = None) -> Exception:
    """The typed error for one eBay answer (status >= 400), eBay's own words kept."""
    details = error_details(body)
    ids = {d.error_id for d in details}
    message = describe_error(status, body)
    if status == 429:
        return RateLimited(message, retry_after=parse_retry_after(retry_after), status=status, body=body)
    if status >= 500 or ids & TRANSIENT_ERROR_IDS:
        return EbayTransientError(message, errors=details, status=status, body=body)
    if status == 404 or ids & NOT_FOUND_ERROR_IDS:
        return EbayListingNotFound(message, errors=details, status=status, body=body)
    return EbayRequestError(message, errors=details, status=status, body=body)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def format_time(value: datetime) -> str:
    """eBay's timestamps: ISO 8601 UTC with milliseconds, e.g. 2024-05-01T00:00:00.000Z."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def orders_filter(since: datetime | None) -> str | None:
    """getOrders' filter on last-modified date, percent-encoded as eBay requires ([ ] -> %5B %5D)."""
    if since is None:
        return None
    return "lastmodifieddate:" + quote(f"[{format_time(since)}..]", safe=":.-")


def _once(call: Callable, *args: Any, **kwargs: Any) -> Any:
    return call(*args, **kwargs)


@dataclass(frozen=True)
class Page:
    items: list[dict]
    total: int | None
    next_href: str | None


@dataclass
class OAuthToken:
    access_token: str
    expires_at: float


@dataclass
class EbayClient:
    """One seller's eBay session: OAuth tokens, headers, typed errors, paging, call counts."""

    api_base_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    language: str = "en-US"
    timeout: float = 15.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)
    counts: Counter = field(default_factory=Counter, repr=False)

    def __post_init__(self) -> None:
        if not (self.client_id and self.client_secret):
            raise PermanentChannelError("The eBay connection needs the app's client id and client secret.")
        self.api_base_url = self.api_base_url.rstrip("/")
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.token_refreshes = 0

    # --- OAuth ------------------------------------------------------------------------------

    def _cache_key(self, kind: str) -> str:
        secret = f"{self.token_url}|{self.client_id}|{self.refresh_token if kind != 'app' else ''}"
        return f"channels_ebay:token:{kind}:{hashlib.sha256(secret.encode()).hexdigest()[:24]}"

    def access_token(self, kind: str = "user") -> str:
        """The cached access token, or a new one (one refresh across all workers: a short cache lock)."""
        key = self._cache_key(kind)
        cached = cache.get(key)
        if cached and cached["expires_at"] - TOKEN_MARGIN > time.time():
            return cached["access_token"]
        lock = key + ":lock"
        deadline = time.monotonic() + min(self.timeout, 10)
        while not cache.add(lock, 1, timeout=int(self.timeout) + 5):
            time.sleep(0.05)  # another worker is refreshing: use its token
            cached = cache.get(key)
            if cached and cached["expires_at"] - TOKEN_MARGIN > time.time():
                return cached["access_token"]
            if time.monotonic() > deadline:
                break
        try:
            cached = cache.get(key)
            if cached and cached["expires_at"] - TOKEN_MARGIN > time.time():
                return cached["access_token"]
            token = self._grant(kind)
            lifetime = max(int(token.expires_at - time.time()) - TOKEN_MARGIN, 1)
            cache.set(key, {"access_token": token.access_token, "expires_at": token.expires_at}, timeout=lifetime)
            return token.access_token
        finally:
            cache.delete(lock)

    def forget_token(self, token: str, kind: str = "user") -> None:
        """Drop a token eBay refused (only if no worker has replaced it already)."""
        key = self._cache_key(kind)
        cached = cache.get(key)
        if cached and cached["access_token"] == token:
            cache.delete(key)

    def _grant(self, kind: str) -> OAuthToken:
        if kind == "user":
            if not self.refresh_token:
                raise PermanentChannelError("No eBay refresh token is set: authorise the app for this seller.")
            form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "scope": " ".join(USER_SCOPES)}
        elif kind == "notify":  # seller topics need this scope; asked for apart so the sell calls never depend on it
            if not self.refresh_token:
                raise PermanentChannelError("No eBay refresh token is set: authorise the app for this seller.")
            form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token, "scope": NOTIFY_SCOPE}
        else:
            form = {"grant_type": "client_credentials", "scope": APP_SCOPE}
        basic = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        self.counts["TOKEN"] += 1
        self.token_refreshes += 1
        try:
            response = self.session.post(
                self.token_url,
                data=form,
                headers={"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise EbayTransientError(f"eBay's token endpoint did not answer: {error.__class__.__name__}") from None
        body = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise error_for(response.status_code, body, retry_after=response.headers.get("Retry-After"))
        if response.status_code != 200 or not isinstance(body, Mapping) or not body.get("access_token"):
            reason = ""
            if isinstance(body, Mapping):
                reason = str(body.get("error_description") or body.get("error") or "")
            raise PermanentChannelError(
                f"eBay refused the {'app keys' if kind == 'app' else 'refresh token'}"
                f"{': ' + reason if reason else ''}. "
                + ("Check the client id and client secret." if kind == "app" else _HINTS[401]),
                status=response.status_code,
            )
        expires_in = int(body.get("expires_in") or 7200)
        return OAuthToken(str(body["access_token"]), time.time() + expires_in)

    # --- Inventory: items ---------------------------------------------------------------------

    def get_inventory_item(self, sku: str) -> dict | None:
        try:
            return self._request("GET", f"{INVENTORY}/inventory_item/{_segment(sku)}")
        except ListingNotFound:
            return None

    def put_inventory_item(self, sku: str, body: Mapping) -> int:
        """createOrReplaceInventoryItem: a full replace. Returns 201 (created) or 204 (replaced)."""
        return self._request(
            "PUT", f"{INVENTORY}/inventory_item/{_segment(sku)}", body=body, content_language=True, want_status=True
        )

    def inventory_items(self, limit: int = 100, *, attempt: Callable = _once) -> Iterator[Page]:
        """Every inventory item, page by page. `offset` is a page index on this call (CHANNELS.md 1.2).
        `attempt` runs each page read (the sync passes retry_transient: a read is safe to repeat)."""
        page_index = 0
        while True:
            data = attempt(
                self._request,
                "GET",
                f"{INVENTORY}/inventory_item",
                params={"limit": str(limit), "offset": str(page_index)},
            )
            items = list(data.get("inventoryItems") or [])
            yield Page(items, data.get("total"), data.get("next"))
            if not data.get("next") or not items:
                return
            page_index += 1

    # --- Inventory: offers --------------------------------------------------------------------

    def offers_for_sku(self, sku: str, marketplace_id: str | None = None) -> list[dict]:
        """getOffers?sku=: every offer of this SKU (a 404 / 25713 means none)."""
        params = {"sku": sku, "limit": "100"}
        if marketplace_id:
            params["marketplace_id"] = marketplace_id
        try:
            data = self._request("GET", f"{INVENTORY}/offer", params=params)
        except ListingNotFound:
            return []
        return list(data.get("offers") or [])

    def get_offer(self, offer_id: str) -> dict:
        return self._request("GET", f"{INVENTORY}/offer/{_segment(offer_id)}")

    def create_offer(self, body: Mapping) -> dict:
        """createOffer. Not retried: after a timeout the offer may exist; look it up by SKU."""
        return self._request("POST", f"{INVENTORY}/offer", body=body, content_language=True)

    def update_offer(self, offer_id: str, body: Mapping) -> dict:
        """updateOffer: a full replace of the offer."""
        return self._request("PUT", f"{INVENTORY}/offer/{_segment(offer_id)}", body=body, content_language=True) or {}

    def publish_offer(self, offer_id: str) -> dict:
        return self._request("POST", f"{INVENTORY}/offer/{_segment(offer_id)}/publish/")

    def withdraw_offer(self, offer_id: str) -> dict:
        return self._request("POST", f"{INVENTORY}/offer/{_segment(offer_id)}/withdraw")

    def bulk_update_price_quantity(self, requests_: list[Mapping]) -> list[dict]:
        """bulkUpdatePriceQuantity (published offers only), at most 25 entries; the per-SKU outcomes."""
        if not 1 <= len(requests_) <= BULK_LIMIT:
            raise ValueError(f"bulk_update_price_quantity takes 1 to {BULK_LIMIT} entries, not {len(requests_)}")
        data = self._request("POST", f"{INVENTORY}/bulk_update_price_quantity", body={"requests": list(requests_)})
        return list((data or {}).get("responses") or [])

    def bulk_get_inventory_items(self, skus: list[str]) -> list[dict]:
        """bulkGetInventoryItem, at most 25: each SKU's item (statusCode 200) or its error."""
        _check_batch(skus)
        data = self._request(
            "POST", f"{INVENTORY}/bulk_get_inventory_item", body={"requests": [{"sku": s} for s in skus]}
        )
        return list((data or {}).get("responses") or [])

    def bulk_put_inventory_items(self, requests_: list[Mapping]) -> list[dict]:
        """bulkCreateOrReplaceInventoryItem, at most 25 (each a full replace, with its sku and locale)."""
        _check_batch(requests_)
        data = self._request(
            "POST",
            f"{INVENTORY}/bulk_create_or_replace_inventory_item",
            body={"requests": list(requests_)},
            content_language=True,
        )
        return list((data or {}).get("responses") or [])

    def bulk_create_offers(self, requests_: list[Mapping]) -> list[dict]:
        """bulkCreateOffer, at most 25. Not retried blindly: an offer that exists answers with its offerId."""
        _check_batch(requests_)
        data = self._request(
            "POST", f"{INVENTORY}/bulk_create_offer", body={"requests": list(requests_)}, content_language=True
        )
        return list((data or {}).get("responses") or [])

    def bulk_publish_offers(self, offer_ids: list[str]) -> list[dict]:
        _check_batch(offer_ids)
        body = {"requests": [{"offerId": str(o)} for o in offer_ids]}
        data = self._request("POST", f"{INVENTORY}/bulk_publish_offer", body=body)
        return list((data or {}).get("responses") or [])

    def bulk_migrate_listing(self, listing_ids: list[str]) -> list[dict]:
        """bulkMigrateListing: 1 to 5 listings made on eBay's site become inventory items and offers (one way)."""
        if not 1 <= len(listing_ids) <= 5:
            raise ValueError("bulk_migrate_listing takes 1 to 5 listing ids")
        body = {"requests": [{"listingId": str(i)} for i in listing_ids]}
        data = self._request("POST", f"{INVENTORY}/bulk_migrate_listing", body=body)
        return list((data or {}).get("responses") or [])

    def get_location(self, key: str) -> dict | None:
        try:
            return self._request("GET", f"{INVENTORY}/location/{_segment(key)}")
        except ListingNotFound:
            return None

    # --- Account: business policies -----------------------------------------------------------

    def get_policy(self, kind: str, policy_id: str) -> dict | None:
        """kind: fulfillment / payment / return. None when eBay has no such policy for this seller."""
        try:
            return self._request("GET", f"{ACCOUNT}/{kind}_policy/{_segment(policy_id)}")
        except ListingNotFound:
            return None

    # --- Fulfillment --------------------------------------------------------------------------

    def orders(self, since: datetime | None, limit: int = 200, *, attempt: Callable = _once) -> Iterator[Page]:
        """getOrders modified since `since`, page by page (`offset` counts orders on this call)."""
        offset = 0
        flt = orders_filter(since)
        while True:
            query = f"limit={limit}&offset={offset}" + (f"&filter={flt}" if flt else "")
            data = attempt(self._request, "GET", f"{FULFILLMENT}/order?{query}")
            orders = list(data.get("orders") or [])
            yield Page(orders, data.get("total"), data.get("next"))
            offset += len(orders)
            if not data.get("next") or not orders:
                return

    def get_order(self, order_id: str) -> dict | None:
        try:
            return self._request("GET", f"{FULFILLMENT}/order/{_segment(order_id)}")
        except ListingNotFound:
            return None

    # --- Notification -------------------------------------------------------------------------

    def public_key(self, kid: str) -> dict | None:
        """getPublicKey (application token): {algorithm, digest, key}; None for an unknown key id."""
        try:
            return self._request("GET", f"{NOTIFICATION}/public_key/{_segment(kid)}", token_kind="app")
        except ListingNotFound:
            return None

    # --- Notification: destination and subscriptions ------------------------------------------

    def destinations(self) -> list[dict]:
        data = self._request("GET", f"{NOTIFICATION}/destination", params={"limit": "100"}, token_kind="app")
        return list(data.get("destinations") or [])

    def create_destination(self, body: Mapping) -> str:
        """createDestination (eBay first sends the endpoint its challenge). Returns the new destination id."""
        _status, headers, _body = self._request(
            "POST", f"{NOTIFICATION}/destination", body=body, token_kind="app", want_response=True
        )
        return str(headers.get("Location") or "").rstrip("/").rsplit("/", 1)[-1]

    def update_destination(self, destination_id: str, body: Mapping) -> None:
        self._request("PUT", f"{NOTIFICATION}/destination/{_segment(destination_id)}", body=body, token_kind="app")

    def subscriptions(self) -> list[dict]:
        data = self._request("GET", f"{NOTIFICATION}/subscription", params={"limit": "100"}, token_kind="notify")
        return list(data.get("subscriptions") or [])

    def create_subscription(self, body: Mapping) -> str:
        _status, headers, _body = self._request(
            "POST", f"{NOTIFICATION}/subscription", body=body, token_kind="notify", want_response=True
        )
        return str(headers.get("Location") or "").rstrip("/").rsplit("/", 1)[-1]

    def enable_subscription(self, subscription_id: str) -> None:
        self._request("POST", f"{NOTIFICATION}/subscription/{_segment(subscription_id)}/enable", token_kind="notify")

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def total_calls(self) -> int:
        return sum(n for k, n in self.counts.items() if k != "TOKEN")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_language: bool = False,
        want_status: bool = False,
        want_response: bool = False,
        token_kind: str = "user",
    ) -> Any:
        url = self.api_base_url + path
        headers = {"Accept-Language": self.language}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if content_language:
            headers["Content-Language"] = self.language
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            token = self.access_token(token_kind)
            headers["Authorization"] = f"Bearer {token}"
            self.counts[method] += 1
            try:
                response = self.session.request(
                    method, url, params=params, data=data, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as error:
                raise EbayTransientError(
                    f"eBay did not answer {method} {path.split('?')[0]}: {error.__class__.__name__}"
                ) from None
            if response.status_code == 401 and attempt == 1:
                self.forget_token(token, token_kind)  # expired or revoked early: one refresh, one retry
                continue
            break
        status = response.status_code
        parsed = _json(response)
        if status >= 400:
            raise error_for(status, parsed, retry_after=response.headers.get("Retry-After"))
        if want_status:
            return status
        if want_response:
            return status, response.headers, parsed
        if not response.content:
            return {}
        if parsed is None:
            raise EbayTransientError(f"eBay answered {method} {path.split('?')[0]} with a body that is not JSON")
        return parsed


def _check_batch(entries: list) -> None:
    if not 1 <= len(entries) <= BULK_LIMIT:
        raise ValueError(f"eBay's bulk calls take 1 to {BULK_LIMIT} entries, not {len(entries)}")


def _json(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def _segment(value: str) -> str:
    return quote(str(value), safe="")
