"""HTTP to the Selling Partner API: Login with Amazon tokens, per-operation rate limits, typed errors.

- Auth: the LWA refresh-token grant gives an access token, sent as `x-amz-access-token` on
  every call (no SigV4: Amazon ignores signatures since 2023-10). The token is kept in Django's
  cache (Redis in production), so every worker shares it until shortly before it expires; a
  401/403 drops it, fetches a fresh one once and repeats the call once.
- Rate limits: one token bucket (buckets.py) per operation and selling partner, with the rate and burst the
  models document (OPERATION_LIMITS), shared by all workers through the cache. A rate Amazon
  reports in `x-amzn-RateLimit-Limit` replaces the documented one. A call waits for its token
  when the wait is short; a longer wait is raised as RateLimited for the engine to schedule. A
  429 waits and retries a few times, then is raised as RateLimited.
- Errors: Amazon's ErrorList bodies become the contract's typed errors in Amazon's words.

No ORM here, and no secret is ever logged or put in a repr.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
from django.core.cache import cache

from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError

from .buckets import TokenBucket

logger = logging.getLogger(__name__)

USER_AGENT = "gear-back-office/1.0 (Language=Python; channels_amazon)"
LISTINGS = "/listings/2021-08-01/items"
ORDERS = "/orders/2026-01-01/orders"
FEEDS = "/feeds/2021-06-30"

# (rate per second, burst) from each operation's "Usage Plan" in contracts/amazon/models
# (tests/test_amazon_contract.py checks this table against the models).
OPERATION_LIMITS: dict[str, tuple[float, int]] = {
    "getListingsItem": (5.0, 10),
    "putListingsItem": (5.0, 10),
    "patchListingsItem": (5.0, 5),
    "deleteListingsItem": (5.0, 5),
    "searchListingsItems": (5.0, 5),
    "searchOrders": (0.0056, 20),
    "getOrder": (0.5, 30),
    "createFeedDocument": (0.5, 15),
    "createFeed": (0.0083, 15),
    "getFeed": (2.0, 15),
    "getFeedDocument": (0.0222, 10),
    "getDestinations": (1.0, 5),
    "createDestination": (1.0, 5),
    "getSubscription": (1.0, 5),
    "createSubscription": (1.0, 5),
    "createRestrictedDataToken": (1.0, 10),
    "confirmShipment": (2.0, 10),
}
RDT_ELEMENTS = ["buyerInfo", "shippingAddress"]
GRANTLESS_SCOPE = "sellingpartnerapi::notifications"
NOTIFICATIONS = "/notifications/v1"
# Tokens fetched this long before Amazon's expiry are treated as expired (clock skew, slow calls).
TOKEN_MARGIN_SECONDS = 120
RATE_LIMIT_RETRIES = 3
# Tokens of a listings bucket that publishes and revises leave for ends and read-backs, so a
# price sweep never delays taking a sold item off sale.
CRITICAL_RESERVE = 2

_HINTS = {
    401: "Check the LWA client id, client secret and refresh token (Seller Central > Apps > Develop apps).",
    403: "The app lacks the role for this call, or the refresh token belongs to another seller or region.",
}


@dataclass(frozen=True)
class LwaCredentials:
    client_id: str
    client_secret: str
    refresh_token: str
    token_url: str

    def __repr__(self) -> str:
        return f"LwaCredentials(client_id={self.client_id!r}, client_secret='***', refresh_token='***')"

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(
            "\n".join([self.client_id, self.client_secret, self.refresh_token, self.token_url]).encode()
        ).hexdigest()[:32]
        return f"channels_amazon:lwa:{digest}"


def describe_error(status: int, body: Any, fallback: str = "") -> str:
    """Amazon's ErrorList (`errors: [{code, message, details}]`) or LWA's error as one line."""
    parts: list[str] = []
    if isinstance(body, Mapping):
        for error in body.get("errors") or []:
            if isinstance(error, Mapping):
                line = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
                if error.get("details"):
                    line += f" ({error['details']})"
                parts.append(line)
        if body.get("error"):  # LWA: {"error": "invalid_grant", "error_description": "..."}
            parts.append(f"{body['error']}: {body.get('error_description', '')}".strip(": "))
    elif isinstance(body, str) and body.strip():
        parts.append(body.strip()[:300])
    if not parts and fallback:
        parts.append(fallback)
    if status in _HINTS:
        parts.append(_HINTS[status])
    return "; ".join(parts)


class SpApiClient:
    """Selling Partner API calls for one seller: auth, buckets, typed errors, call counts."""

    def __init__(
        self,
        host: str,
        seller_id: str,
        marketplace_id: str,
        credentials: LwaCredentials,
        *,
        timeout: float = 10.0,
        max_wait: float = 2.0,
        session: requests.Session | None = None,
    ) -> None:
        if not (credentials.client_id and credentials.client_secret and credentials.refresh_token):
            raise PermanentChannelError(
                "The Amazon connection needs its LWA client id, client secret and refresh token."
            )
        self.host = host.rstrip("/")
        self.seller_id = seller_id
        self.marketplace_id = marketplace_id
        self.credentials = credentials
        self.timeout = timeout
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.counts: Counter[str] = Counter()
        self.token_fetches = 0
        self.waited = 0.0

    def __repr__(self) -> str:
        return f"SpApiClient(host={self.host!r}, seller_id={self.seller_id!r}, credentials=***)"

    @property
    def total_calls(self) -> int:
        return sum(self.counts.values())

    # --- Login with Amazon -----------------------------------------------------------

    def access_token(self, *, fresh: bool = False, grantless: bool = False) -> str:
        """The shared access token, fetched by the refresh-token grant when none is cached. A grantless
        token (client credentials, scope sellingpartnerapi::notifications) is for destinations."""
        key = self.credentials.cache_key + (":grantless" if grantless else "")
        if not fresh:
            token = cache.get(key)
            if token:
                return token
        if grantless:
            form = {"grant_type": "client_credentials", "scope": GRANTLESS_SCOPE}
        else:
            form = {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token}
        try:
            response = self.session.post(
                self.credentials.token_url,
                data={
                    **form,
                    "client_id": self.credentials.client_id,
                    "client_secret": self.credentials.client_secret,
                },
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise TransientChannelError(
                f"Could not reach Login with Amazon ({error.__class__.__name__}); check the LWA token URL."
            ) from error
        self.token_fetches += 1
        body = _json_or_text(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientChannelError(
                f"Login with Amazon failed ({response.status_code}).", status=response.status_code
            )
        if response.status_code != 200 or not isinstance(body, Mapping) or not body.get("access_token"):
            raise PermanentChannelError(
                f"Login with Amazon refused the refresh token ({response.status_code}): "
                f"{describe_error(401, body, response.reason or '')}",
                status=response.status_code,
            )
        token = str(body["access_token"])
        lifetime = int(body.get("expires_in") or 3600)
        cache.set(key, token, timeout=max(lifetime - TOKEN_MARGIN_SECONDS, 1))
        return token

    # --- listings ------------------------------------------------------------------

    def _item_path(self, sku: str) -> str:
        return f"{LISTINGS}/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    def get_listing(self, sku: str) -> dict:
        """getListingsItem with summaries, attributes, issues, offers and fulfillment availability."""
        return self._call(
            "getListingsItem",
            "GET",
            self._item_path(sku),
            params={
                "marketplaceIds": self.marketplace_id,
                "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability",
            },
            not_found=ListingNotFound,
        )

    def put_listing(self, sku: str, body: Mapping[str, Any], *, preview: bool = False, critical: bool = False) -> dict:
        """putListingsItem (a full replace keyed by SKU: repeating it never makes a second listing)."""
        params = {"marketplaceIds": self.marketplace_id, "includedData": "identifiers,issues"}
        if preview:
            params["mode"] = "VALIDATION_PREVIEW"
        reserve = 0 if critical else CRITICAL_RESERVE
        return self._call("putListingsItem", "PUT", self._item_path(sku), params=params, body=body, reserve=reserve)

    def patch_listing(
        self, sku: str, body: Mapping[str, Any], *, preview: bool = False, critical: bool = False
    ) -> dict:
        """patchListingsItem. `critical` (an end) may use the tokens other writes leave in reserve."""
        params = {"marketplaceIds": self.marketplace_id, "includedData": "identifiers,issues"}
        if preview:
            params["mode"] = "VALIDATION_PREVIEW"
        reserve = 0 if critical else CRITICAL_RESERVE
        return self._call("patchListingsItem", "PATCH", self._item_path(sku), params=params, body=body, reserve=reserve)

    def delete_listing(self, sku: str) -> dict:
        return self._call(
            "deleteListingsItem",
            "DELETE",
            self._item_path(sku),
            params={"marketplaceIds": self.marketplace_id},
            not_found=ListingNotFound,
        )

    def search_listings(self, page_size: int = 20) -> Iterator[dict]:
        """searchListingsItems page by page (pageToken), every listing of the seller."""
        token: str | None = None
        while True:
            params = {
                "marketplaceIds": self.marketplace_id,
                "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability",
                "pageSize": str(page_size),
            }
            if token:
                params["pageToken"] = token
            page = self._call(
                "searchListingsItems", "GET", f"{LISTINGS}/{quote(self.seller_id, safe='')}", params=params
            )
            yield page
            token = (page.get("pagination") or {}).get("nextToken")
            if not token:
                return

    # --- orders --------------------------------------------------------------------

    def search_orders(self, updated_after: str, *, page_size: int = 100) -> Iterator[dict]:
        """searchOrders (orders 2026-01-01) by last update, page by page (paginationToken)."""
        token: str | None = None
        while True:
            params = {
                "lastUpdatedAfter": updated_after,
                "marketplaceIds": self.marketplace_id,
                "maxResultsPerPage": str(page_size),
                "includedData": "PROCEEDS,FULFILLMENT",
            }
            if token:
                params["paginationToken"] = token
            page = self._call("searchOrders", "GET", ORDERS, params=params)
            yield page
            token = (page.get("pagination") or {}).get("nextToken")
            if not token:
                return

    def get_order(self, order_id: str) -> dict | None:
        try:
            data = self._call(
                "getOrder",
                "GET",
                f"{ORDERS}/{quote(order_id, safe='')}",
                params={"includedData": "PROCEEDS,FULFILLMENT"},
                not_found=ListingNotFound,
            )
        except ListingNotFound:
            return None
        return data.get("order") if isinstance(data.get("order"), dict) else data

    def restricted_data_token(self, method: str, path: str, data_elements: list[str]) -> str:
        """createRestrictedDataToken for one restricted resource (buyer name and address)."""
        body = {"restrictedResources": [{"method": method, "path": path, "dataElements": list(data_elements)}]}
        return str(
            self._call("createRestrictedDataToken", "POST", "/tokens/2021-03-01/restrictedDataToken", body=body)[
                "restrictedDataToken"
            ]
        )

    def get_order_with_buyer(self, order_id: str) -> dict | None:
        """getOrder with the buyer and the recipient's address: needs a Restricted Data Token, asked for
        this one call only (it is short-lived and never cached)."""
        path = f"{ORDERS}/{quote(order_id, safe='')}"
        token = self.restricted_data_token("GET", path, RDT_ELEMENTS)
        try:
            data = self._call(
                "getOrder",
                "GET",
                path,
                params={"includedData": "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT"},
                not_found=ListingNotFound,
                token=token,
            )
        except ListingNotFound:
            return None
        return data.get("order") if isinstance(data.get("order"), dict) else data

    def confirm_shipment(self, order_id: str, body: Mapping[str, Any]) -> None:
        """confirmShipment (orders v0: the new Orders API has no shipment operation). Answers 204."""
        self._call(
            "confirmShipment", "POST", f"/orders/v0/orders/{quote(order_id, safe='')}/shipmentConfirmation", body=body
        )

    # --- feeds ---------------------------------------------------------------------

    def create_feed_document(self, content_type: str = "application/json; charset=UTF-8") -> dict:
        return self._call("createFeedDocument", "POST", f"{FEEDS}/documents", body={"contentType": content_type})

    def upload_feed(self, url: str, content: bytes, content_type: str = "application/json; charset=UTF-8") -> None:
        """PUT the feed to the presigned URL (no SP-API token: the URL carries its own signature)."""
        try:
            response = requests.put(url, data=content, headers={"Content-Type": content_type}, timeout=self.timeout)
        except requests.RequestException as error:
            raise TransientChannelError(f"Could not upload the feed document: {error.__class__.__name__}.") from error
        self.counts["upload"] += 1
        if response.status_code >= 300:
            raise TransientChannelError(f"The feed document upload failed ({response.status_code}).")

    def create_feed(self, feed_type: str, document_id: str) -> dict:
        body = {"feedType": feed_type, "marketplaceIds": [self.marketplace_id], "inputFeedDocumentId": document_id}
        return self._call("createFeed", "POST", f"{FEEDS}/feeds", body=body)

    def get_feed(self, feed_id: str) -> dict:
        return self._call("getFeed", "GET", f"{FEEDS}/feeds/{quote(feed_id, safe='')}")

    def get_feed_document(self, document_id: str) -> dict:
        return self._call("getFeedDocument", "GET", f"{FEEDS}/documents/{quote(document_id, safe='')}")

    def download(self, url: str, compression: str | None = None) -> bytes:
        try:
            response = requests.get(url, timeout=self.timeout)
        except requests.RequestException as error:
            raise TransientChannelError(f"Could not download a report: {error.__class__.__name__}.") from error
        self.counts["download"] += 1
        content = response.content
        if compression == "GZIP":
            import gzip

            content = gzip.decompress(content)
        return content

    # --- notifications -------------------------------------------------------------

    def destinations(self) -> list[dict]:
        """getDestinations (grantless)."""
        return list(
            self._call("getDestinations", "GET", f"{NOTIFICATIONS}/destinations", grantless=True).get("payload") or []
        )

    def create_sqs_destination(self, name: str, arn: str) -> dict:
        body = {"name": name, "resourceSpecification": {"sqs": {"arn": arn}}}
        return self._call("createDestination", "POST", f"{NOTIFICATIONS}/destinations", body=body, grantless=True)[
            "payload"
        ]

    def subscription(self, notification_type: str) -> dict | None:
        try:
            data = self._call(
                "getSubscription",
                "GET",
                f"{NOTIFICATIONS}/subscriptions/{quote(notification_type, safe='')}",
                not_found=ListingNotFound,
            )
        except ListingNotFound:
            return None
        return data.get("payload")

    def create_subscription(self, notification_type: str, destination_id: str, payload_version: str = "1.0") -> dict:
        body = {"payloadVersion": payload_version, "destinationId": destination_id}
        path = f"{NOTIFICATIONS}/subscriptions/{quote(notification_type, safe='')}"
        return self._call("createSubscription", "POST", path, body=body)["payload"]

    # --- plumbing ------------------------------------------------------------------

    def bucket(self, operation: str) -> TokenBucket:
        rate, burst = OPERATION_LIMITS.get(operation, (1.0, 1))
        applied = cache.get(self._rate_key(operation))
        if applied:
            rate = float(applied)
        key = f"channels_amazon:bucket:{self._partner_id}:{operation}"
        return TokenBucket(key, rate, burst)

    @property
    def _partner_id(self) -> str:
        return hashlib.sha256(f"{self.host}|{self.seller_id}|{self.credentials.client_id}".encode()).hexdigest()[:20]

    def _rate_key(self, operation: str) -> str:
        return f"channels_amazon:rate:{self._partner_id}:{operation}"

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        not_found: type[PermanentChannelError] = PermanentChannelError,
        grantless: bool = False,
        token: str | None = None,
        reserve: int = 0,
    ) -> dict:
        refreshed = False
        limited = 0
        while True:
            wait = self.bucket(operation).acquire(self.max_wait, reserve)
            if wait:
                self.waited += wait
                time.sleep(wait)
            response = self._send(
                operation, method, path, params, body, fresh_token=refreshed, grantless=grantless, token=token
            )
            status = response.status_code
            self._note_rate(operation, response)
            if 200 <= status < 300:
                data = _json_or_text(response)
                return data if isinstance(data, dict) else {"items": data}
            seen = _json_or_text(response)
            if status in (401, 403) and not refreshed and token is None:
                # An expired (or revoked) token: one fresh token from LWA, one more try.
                cache.delete(self.credentials.cache_key + (":grantless" if grantless else ""))
                refreshed = True
                continue
            if status == 429:
                bucket = self.bucket(operation)
                bucket.drain()
                retry_after = 1.0 / bucket.rate
                limited += 1
                if limited <= RATE_LIMIT_RETRIES and retry_after <= self.max_wait:
                    self.waited += retry_after
                    time.sleep(retry_after)
                    continue
                raise RateLimited(
                    f"Amazon throttled {operation} (429): {describe_error(status, seen)}",
                    retry_after=retry_after,
                    status=status,
                    body=seen,
                )
            message = f"Amazon refused {operation} ({status}): {describe_error(status, seen, response.reason or '')}"
            if status >= 500:
                raise TransientChannelError(message, status=status, body=seen)
            if status == 404:
                raise not_found(message, status=status, body=seen)
            raise PermanentChannelError(message, status=status, body=seen)

    def _send(self, operation, method, path, params, body, *, fresh_token: bool, grantless: bool = False, token=None):
        headers = {"x-amz-access-token": token or self.access_token(fresh=fresh_token, grantless=grantless)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.counts[operation] += 1
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                self.host + path,
                params=params,
                data=json.dumps(body).encode() if body is not None else None,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as error:
            applied = " The change may have been applied; it is read back before repeating." if method != "GET" else ""
            raise TransientChannelError(
                f"Amazon did not answer {operation} within {self.timeout:g} s.{applied}"
            ) from error
        except requests.RequestException as error:
            raise TransientChannelError(
                f"Could not reach Amazon for {operation}: {error.__class__.__name__}."
            ) from error
        logger.debug("amazon %s -> %s in %.0f ms", operation, response.status_code, (time.monotonic() - started) * 1000)
        return response

    def _note_rate(self, operation: str, response: requests.Response) -> None:
        value = response.headers.get("x-amzn-RateLimit-Limit")
        if not value:
            return
        try:
            rate = float(value)
        except ValueError:
            return
        if rate > 0:
            cache.set(self._rate_key(operation), rate, timeout=3600)


def _json_or_text(response: requests.Response) -> Any:
    if not response.content.strip():
        return {}
    try:
        return response.json()
    except ValueError:
        return response.text[:1000]
