"""WooCommerce's REST API (wc/v3, under /wp-json) over HTTP. Knows HTTP, nothing of the ORM.

Authentication, as WooCommerce documents it (CHANNELS.md §9):
- over HTTPS, HTTP Basic with the consumer key and secret; some servers (CGI/FastCGI
  set-ups) strip the Authorization header, so a 401 to Basic is tried once with the keys as
  query parameters and, when that works, the client stays with them;
- over plain HTTP (a local shop only: the connection refuses http elsewhere), OAuth 1.0a
  one-legged: HMAC-SHA256 over the method, the URL and the sorted query parameters, key
  `consumer_secret&`, a fresh nonce and timestamp per request, no oauth_version.

Every failure becomes a typed error of the channel contract, WordPress's error body
`{code, message, data: {status}}` carried in staff's words:
- no answer (timeout, refused, reset), 5xx, a 2xx that is not JSON -> TransientChannelError
- 429 -> RateLimited (WooCommerce documents no limit; hosts and security plugins impose one)
- 404 on a product or order -> ListingNotFound
- other 4xx -> PermanentChannelError with the code and message.

Nothing is retried here except the one Basic-to-query switch (a 401 changed nothing). A write
that timed out may have been applied: the engine retries, and publish looks the SKU up first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError

from .mappers import format_gmt

logger = logging.getLogger(__name__)

API_PREFIX = "/wp-json/wc/v3"
USER_AGENT = "gear-back-office/1.0 (+channels_woocommerce)"
PER_PAGE = 100  # WordPress's maximum
BATCH_LIMIT = 100  # objects per /batch request the store accepts by default (woocommerce_rest_batch_items_limit)
MAX_PAGES = 1000  # a store that never stops paging is a bug, not a reason to loop forever

_HINTS = {
    "woocommerce_rest_authentication_error": "Check the consumer key and secret (WooCommerce > Settings > "
    "Advanced > REST API).",
    "woocommerce_rest_cannot_view": "The key is not accepted or may not read this: check the key, and that the "
    "server passes the Authorization header on.",
    "woocommerce_rest_cannot_create": "The key is read-only: give it Read/Write permissions in WooCommerce > "
    "Settings > Advanced > REST API.",
    "woocommerce_rest_cannot_edit": "The key is read-only: give it Read/Write permissions.",
    "woocommerce_rest_cannot_batch": "The key is read-only: give it Read/Write permissions.",
    "rest_no_route": "The shop has no such REST route: check the store URL, that WooCommerce 3.5+ is active and "
    "that WordPress permalinks are not set to Plain.",
}
_STATUS_HINTS = {
    401: "Check the consumer key and secret (WooCommerce > Settings > Advanced > REST API).",
    403: "The key lacks permission, or a security plugin or firewall blocks the REST API.",
}


@dataclass(frozen=True)
class WooPage:
    """One page of a collection, with WordPress's totals (X-WP-Total, X-WP-TotalPages)."""

    items: list[dict]
    page: int
    total: int | None
    total_pages: int | None


@dataclass(frozen=True)
class BatchAnswer:
    """What /products/batch did with each object, in the order sent. An object the store refused comes
    back as {"id": 0, "error": {code, message, data}} beside the others, which were applied."""

    created: list[dict]
    updated: list[dict]


LOCAL_SUFFIXES = (".localhost", ".local", ".test", ".internal", ".lan")


def is_local_host(host: str) -> bool:
    """Loopback, private networks and names that never leave the machine or the LAN.

    Only these may be reached over plain HTTP: anywhere else the consumer secret would cross
    the internet in a form anyone on the path can replay.
    """
    host = (host or "").strip("[]").lower().rstrip(".")
    if not host:
        return False
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def error_code(body: Any) -> str:
    return str(body.get("code") or "") if isinstance(body, Mapping) else ""


def describe_error(status: int, body: Any, fallback: str = "") -> str:
    """WordPress's error body as one line staff can act on: message, code, then what to do."""
    parts: list[str] = []
    code = error_code(body)
    if isinstance(body, Mapping):
        message = str(body.get("message") or "").strip()
        if message:
            parts.append(message)
        data = body.get("data")
        if isinstance(data, Mapping) and isinstance(data.get("params"), Mapping):  # rest_invalid_param
            parts.extend(f"{name}: {problem}" for name, problem in data["params"].items())
    elif isinstance(body, str) and body.strip():
        parts.append(body.strip()[:300])
    if not parts and fallback:
        parts.append(fallback)
    if code:
        parts.append(f"[{code}]")
    hint = _HINTS.get(code) or _STATUS_HINTS.get(status)
    if hint:
        parts.append(hint)
    return " ".join(parts)


def object_error(obj: Mapping[str, Any]) -> str:
    """A batch object's own error ({"id": 0, "error": {...}}) in staff's words; "" when it went through."""
    error = obj.get("error")
    if not isinstance(error, Mapping):
        return ""
    data = error.get("data") if isinstance(error.get("data"), Mapping) else {}
    return describe_error(int(data.get("status") or 400), error)


def rawurlencode(value: str) -> str:
    """PHP's rawurlencode (RFC 3986), which WooCommerce's OAuth check uses."""
    return quote(value, safe="-_.~")


def oauth_signature(method: str, url: str, params: Mapping[str, str], secret: str, algorithm: str = "sha256") -> str:
    """WooCommerce's OAuth 1.0a signature (WC_REST_Authentication::check_oauth_signature).

    Parameters (the query's and the oauth_* ones, decoded) sorted by key; each key and value
    rawurlencoded (normalize_parameters), then each `key=value` rawurlencoded again
    (join_with_equals_sign) and joined with `%26`; signed text `METHOD&rawurlencode(url without
    query)&joined`, key `consumer_secret&`, base64 of the HMAC.
    """
    pairs = sorted((rawurlencode(k), rawurlencode(v)) for k, v in params.items())
    joined = "%26".join(rawurlencode(f"{k}={v}") for k, v in pairs)
    text = f"{method.upper()}&{rawurlencode(url)}&{joined}"
    digest = hmac.new(f"{secret}&".encode(), text.encode(), getattr(hashlib, algorithm)).digest()
    return base64.b64encode(digest).decode()


def query_string(params: Mapping[str, Any]) -> str:
    return "&".join(f"{rawurlencode(str(k))}={rawurlencode(_param(v))}" for k, v in params.items())


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)  # WordPress reads a comma list for an array argument
    return str(value)


class WooCommerceClient:
    """A wc/v3 session for one key pair: auth, timeouts, paging, typed errors, call counts."""

    def __init__(
        self,
        store_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        auth_method: str = "auto",
        timeout: float = 15.0,
        session: requests.Session | None = None,
    ) -> None:
        if not consumer_key or not consumer_secret:
            raise PermanentChannelError(
                "No WooCommerce consumer key and secret are set for this connection: paste them from WooCommerce > "
                "Settings > Advanced > REST API, or connect through the shop's grant page."
            )
        self.store_url = store_url.rstrip("/")
        self.api_root = self.store_url + API_PREFIX
        self.timeout = timeout
        self._key = consumer_key
        self._secret = consumer_secret
        parts = urlsplit(self.store_url)
        if parts.scheme != "https" and not is_local_host(parts.hostname or ""):
            # OAuth 1.0a would keep the secret itself off the wire, but every order and address would
            # still travel readable: a public shop is reached over https only.
            raise PermanentChannelError(
                f"{self.store_url} is plain http on a public address: set the store URL to its https:// address."
            )
        if auth_method == "auto":
            auth_method = "basic" if parts.scheme == "https" else "oauth"
        self.auth_method = auth_method
        self._fallback_tried = auth_method != "basic"
        self._fell_back = False  # on query keys because Basic was refused; undone if those fail too
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "Content-Type": "application/json", "User-Agent": USER_AGENT}
        )
        self.counts: Counter[str] = Counter()

    def __repr__(self) -> str:  # the keys stay out of reprs, logs and tracebacks
        return f"WooCommerceClient(store_url={self.store_url!r}, auth={self.auth_method!r}, keys='***')"

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

    # --- the store ---------------------------------------------------------------------

    def index(self) -> dict:
        """GET /wp-json/wc/v3: the namespace's routes. Public: sent without the keys, so it tells whether the
        shop's API is there apart from whether the keys work."""
        return self._request("GET", "", public=True)

    def setting(self, group: str, setting_id: str) -> dict:
        """GET /settings/{group}/{id}, e.g. general/woocommerce_currency."""
        return self._request("GET", f"/settings/{_segment(group)}/{_segment(setting_id)}")

    def currency(self) -> str:
        return str(self.setting("general", "woocommerce_currency").get("value") or "").upper()

    # --- products ----------------------------------------------------------------------

    def products_by_sku(self, sku: str) -> list[dict]:
        """Every product with exactly this SKU, in any status (drafts included)."""
        wanted = sku.strip().casefold()
        found: list[dict] = []
        for page in self.pages("/products", {"sku": sku, "status": "any"}):
            found.extend(p for p in page.items if str(p.get("sku") or "").strip().casefold() == wanted)
        return found

    def first_product_page(self) -> list[dict]:
        """One product, any status (GET /products?per_page=1): the cheapest read that needs the keys."""
        data = self._request("GET", "/products", params={"per_page": 1, "status": "any"})
        return data if isinstance(data, list) else []

    def get_product(self, product_id: str | int) -> dict:
        return self._request("GET", f"/products/{_id(product_id)}", not_found=ListingNotFound)

    def create_product(self, body: Mapping[str, Any]) -> dict:
        """POST /products. Not retried: on a timeout the product may exist; look the SKU up."""
        return self._request("POST", "/products", body=body)

    def update_product(self, product_id: str | int, body: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/products/{_id(product_id)}", body=body, not_found=ListingNotFound)

    def products(self, **params: Any) -> Iterator[WooPage]:
        """Products page by page (status any unless given)."""
        yield from self.pages("/products", {"status": "any", **params})

    def products_by_id(self, ids: Iterable[int | str]) -> list[dict]:
        """The products with these ids (GET /products?include=...), for reading back a batch."""
        ids = [int(i) for i in ids]
        found: list[dict] = []
        for start in range(0, len(ids), PER_PAGE):
            chunk = ids[start : start + PER_PAGE]
            for page in self.pages("/products", {"include": chunk, "status": "any"}):
                found.extend(page.items)
        return found

    def batch_products(self, *, create: list[dict] = (), update: list[dict] = ()) -> BatchAnswer:
        """POST /products/batch with up to BATCH_LIMIT objects in all."""
        if len(create) + len(update) > BATCH_LIMIT:
            raise ValueError(f"A batch holds at most {BATCH_LIMIT} objects.")
        body: dict[str, Any] = {}
        if create:
            body["create"] = list(create)
        if update:
            body["update"] = list(update)
        answer = self._request("POST", "/products/batch", body=body)
        return BatchAnswer(created=list(answer.get("create") or []), updated=list(answer.get("update") or []))

    # --- orders ------------------------------------------------------------------------

    def orders_modified_after(self, since: datetime | None) -> Iterator[WooPage]:
        """Orders changed after `since` (GMT), oldest change first, page by page.

        `modified_after` + `dates_are_gmt` (documented since WooCommerce 5.8) filter by change,
        not creation, so an order placed earlier and paid later is read again.
        """
        params: dict[str, Any] = {"status": "any", "orderby": "date", "order": "asc"}
        if since is not None:
            params.update({"modified_after": format_gmt(since), "dates_are_gmt": True})
        yield from self.pages("/orders", params)

    def get_order(self, order_id: str | int) -> dict | None:
        try:
            return self._request("GET", f"/orders/{_id(order_id)}", not_found=ListingNotFound)
        except ListingNotFound:
            return None

    def add_order_note(self, order_id: str | int, note: str, *, customer_note: bool = True) -> dict:
        return self._request(
            "POST", f"/orders/{_id(order_id)}/notes", body={"note": note, "customer_note": customer_note}
        )

    def order_notes(self, order_id: str | int) -> list[dict]:
        data = self._request("GET", f"/orders/{_id(order_id)}/notes", not_found=ListingNotFound)
        return data if isinstance(data, list) else []

    def update_order(self, order_id: str | int, body: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/orders/{_id(order_id)}", body=body, not_found=ListingNotFound)

    # --- webhooks ----------------------------------------------------------------------

    def webhooks(self) -> list[dict]:
        found: list[dict] = []
        for page in self.pages("/webhooks", {"status": "all"}):
            found.extend(page.items)
        return found

    def create_webhook(self, *, name: str, topic: str, delivery_url: str, secret: str) -> dict:
        """POST /webhooks. The store pings delivery_url at once (webhook_id=N, form-encoded)."""
        body = {"name": name, "topic": topic, "delivery_url": delivery_url, "secret": secret, "status": "active"}
        return self._request("POST", "/webhooks", body=body)

    def update_webhook(self, webhook_id: str | int, body: Mapping[str, Any]) -> dict:
        return self._request("PUT", f"/webhooks/{_id(webhook_id)}", body=body)

    # --- plumbing ----------------------------------------------------------------------

    def pages(self, route: str, params: Mapping[str, Any]) -> Iterator[WooPage]:
        """Every page of a collection: `page` from 1 to X-WP-TotalPages (an empty page also ends it)."""
        page = 1
        while page <= MAX_PAGES:
            items, headers = self._request(
                "GET", route, params={**params, "page": page, "per_page": PER_PAGE}, raw=True
            )
            items = items if isinstance(items, list) else []
            total_pages = _int(headers.get("X-WP-TotalPages"))
            yield WooPage(items=items, page=page, total=_int(headers.get("X-WP-Total")), total_pages=total_pages)
            if not items or (total_pages is not None and page >= total_pages):
                return
            if total_pages is None and len(items) < PER_PAGE:
                return
            page += 1

    def _auth(self, method: str, url: str, params: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        """(query params to add, headers to add) for the current auth method."""
        if self.auth_method == "basic":
            token = base64.b64encode(f"{self._key}:{self._secret}".encode()).decode()
            return {}, {"Authorization": f"Basic {token}"}
        if self.auth_method == "query":
            return {"consumer_key": self._key, "consumer_secret": self._secret}, {}
        oauth = {
            "oauth_consumer_key": self._key,
            "oauth_nonce": secrets.token_hex(16),
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(int(time.time())),
        }
        signed = {str(k): _param(v) for k, v in params.items()} | oauth
        oauth["oauth_signature"] = oauth_signature(method, url, signed, self._secret)
        return oauth, {}

    def _request(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        not_found: type[PermanentChannelError] = PermanentChannelError,
        raw: bool = False,
        public: bool = False,
    ):
        url = self.api_root + route
        shown = API_PREFIX + route
        params = dict(params or {})
        is_write = method != "GET"
        while True:
            extra_params, headers = ({}, {}) if public else self._auth(method, url, params)
            query = query_string({**params, **extra_params})
            self.counts[method] += 1
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    f"{url}?{query}" if query else url,
                    data=json.dumps(body).encode() if body is not None else None,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            # `from None`: requests' own message carries the full URL, and with query-string auth that
            # URL holds the consumer secret; it must not reach a log or a traceback.
            except requests.Timeout:
                applied = " The change may have been applied; look it up before repeating it." if is_write else ""
                raise TransientChannelError(
                    f"The shop did not answer {method} {shown} within {self.timeout:g} s.{applied}"
                ) from None
            except requests.RequestException as error:  # refused, reset, DNS, TLS...
                raise TransientChannelError(
                    f"Could not reach the shop for {method} {shown}: {error.__class__.__name__}."
                ) from None
            logger.debug(
                "woocommerce %s %s -> %s in %.0f ms",
                method,
                shown,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            if response.status_code == 401 and not self._fallback_tried:
                # Basic refused: the server may have stripped Authorization. A 401 applied nothing,
                # so the same request is tried once with the keys in the query string.
                self._fallback_tried = True
                self._fell_back = True
                self.auth_method = "query"
                logger.info("WooCommerce refused Basic auth on %s; trying the keys as query parameters", shown)
                continue
            if response.status_code == 401 and self._fell_back:
                self.auth_method = "basic"  # neither way worked: the keys are wrong, not the server
                self._fell_back = False
            elif response.status_code < 400:
                self._fell_back = False  # the query keys work: keep them
            break

        status = response.status_code
        if 200 <= status < 300:
            data = self._json(response, method, shown)
            return (data, response.headers) if raw else data
        body_seen = self._error_body(response)
        if 300 <= status < 400:
            raise PermanentChannelError(
                f"The shop redirected {method} {shown} to {response.headers.get('Location', '?')}: "
                "set the store URL to the address it redirects to (https, with or without www).",
                status=status,
            )
        reason = describe_error(status, body_seen, fallback=response.reason or "")
        if status == 429:
            raise RateLimited(
                f"The shop is limiting requests on {method} {shown}.",
                retry_after=_float(response.headers.get("Retry-After")),
                status=status,
                body=body_seen,
            )
        if status >= 500:
            raise TransientChannelError(
                f"The shop failed on {method} {shown} ({status}): {reason}", status=status, body=body_seen
            )
        message = f"The shop refused {method} {shown} ({status}): {reason}"
        if status == 404 and error_code(body_seen) != "rest_no_route":
            raise not_found(message, status=status, body=body_seen)
        raise PermanentChannelError(message, status=status, body=body_seen)

    @staticmethod
    def _json(response: requests.Response, method: str, shown: str) -> Any:
        if not response.content.strip():
            return {}
        try:
            return response.json()
        except ValueError as error:
            raise TransientChannelError(
                f"The shop answered {method} {shown} with something that is not JSON (a cache or maintenance page?).",
                status=response.status_code,
            ) from error

    @staticmethod
    def _error_body(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text[:1000]


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _id(value: str | int) -> str:
    text = str(value).strip()
    if not text.isdigit():
        raise ListingNotFound(f"{text!r} is not a WooCommerce id (ids are whole numbers).")
    return text


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
