"""The loopback eBay's HTTP side: OAuth, routes, contract checks, request log, faults, signed notifications.

One host serves the token endpoint (/identity/v1/oauth2/token) and the Sell / Commerce APIs under
their real base paths, so a connection's api_base_url and token_url both point here. Every request
is checked against eBay's OpenAPI documents (operation, required headers, closed body schema);
a request the documents do not allow is answered 400 with eBay's error shape and recorded with
its problems, so tests can assert that none was sent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inventory.loopback import LoopbackHTTPServer, RequestLog

from .. import contract
from .notifications import Delivery, NotificationSide
from .store import EbayStore, SandboxError, error

logger = logging.getLogger(__name__)

CLIENT_ID = "LoopbackApp-PRD-0123456789-abcdef01"
CLIENT_SECRET = "PRD-loopback-secret-0123456789abcdef"
REFRESH_TOKEN = "v^1.1#i^1#loopback-refresh-token-0123456789"
FAULT_KINDS = ("error", "system", "concurrent", "rate_limit", "timeout")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # the full path, e.g. /sell/inventory/v1/offer
    query: dict[str, str]
    raw_query: str
    body: Any
    status: int
    headers: dict[str, str]
    answer: Any = None
    problems: tuple[str, ...] = ()
    fault: str = ""

    @property
    def is_write(self) -> bool:
        return self.method != "GET" and not self.path.startswith("/identity/")


@dataclass
class Faults:
    """Random faults from a seeded generator. error: 500 with errorId 25001 (nothing applied);
    rate_limit: 429; timeout: applied, then the answer held back `timeout_delay` seconds."""

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_delay: float = 2.0
    retry_after: int = 1
    seed: int = 0


@dataclass
class _Scripted:
    kind: str
    method: str | None
    path_prefix: str | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass
class _Token:
    kind: str
    expires_at: float


class _Server(LoopbackHTTPServer):
    label = "eBay sandbox"
    sandbox: EbaySandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "EbaySandbox/1.0"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.sandbox._handle(self)

    do_POST = do_PUT = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return


class EbaySandbox(RequestLog, NotificationSide):
    """A loopback eBay on 127.0.0.1 for tests, benchmarks and the demo.

    Usage::

        with EbaySandbox() as sandbox:
            connection.api_base_url = sandbox.base_url
            connection.token_url = sandbox.token_url
            sandbox.simulate_sale("SKU-1")   # an order, and a signed ORDER_CONFIRMATION to webhook_urls
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_urls: Iterable[str] = (),
        token_lifetime: int = 7200,
        seed: int = 0,
        validate: bool = True,
        clock: Callable[[], datetime] | None = None,
        state_file: str | None = None,
        **faults: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.webhook_urls = list(webhook_urls)
        self.token_lifetime = token_lifetime
        self.validate = validate
        self.state_file = state_file
        if validate:
            contract.document("inventory")  # fail at once, loudly, when the contracts are missing
        self.store = EbayStore(clock=clock)
        self.client_id, self.client_secret, self.refresh_token = CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN
        self.tokens: dict[str, _Token] = {}
        self.destinations: dict[str, dict] = {}
        self.subscriptions: dict[str, dict] = {}
        self.token_grants: list[str] = []
        self.faults = Faults()
        self._rng = random.Random(seed)
        self._fault_lock = threading.Lock()
        self._scripted: list[_Scripted] = []
        self.set_faults(seed=seed, **faults)
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._signing_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = secrets.token_hex(16)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/identity/v1/oauth2/token"

    def save(self) -> None:
        """Write the shop (items, offers, orders, destinations, the signing key) to state_file, atomically."""
        if not self.state_file:
            return
        state = {
            "store": self.store.state(),
            "destinations": self.destinations,
            "subscriptions": self.subscriptions,
            "kid": self.kid,
            "signing_key": self._signing_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode(),
        }
        tmp = f"{self.state_file}.tmp"
        with open(tmp, "w") as out:
            json.dump(state, out)
        os.replace(tmp, self.state_file)

    def load(self) -> bool:
        if not self.state_file or not os.path.exists(self.state_file):
            return False
        with open(self.state_file) as source:
            state = json.load(source)
        self.store.restore(state["store"])
        self.destinations, self.subscriptions = state["destinations"], state["subscriptions"]
        self.kid = state["kid"]
        self._signing_key = serialization.load_pem_private_key(state["signing_key"].encode(), password=None)
        return True

    def start(self) -> str:
        if self._server is None:
            self.load()
            self._server = _Server((self.host, self.port), _Handler)
            self._server.sandbox = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="ebay-sandbox", daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        self._server = None

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        self.load()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        if ready is not None:
            ready(self.base_url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EbaySandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the marketplace, for tests ---------------------------------------------------------

    def connection_fields(self) -> dict[str, Any]:
        """What an EbayConnection needs to talk to this sandbox."""
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self.refresh_token,
            "api_base_url": self.base_url,
            "token_url": self.token_url,
            "merchant_location_key": "main-warehouse",
            "fulfillment_policy_id": "6100001",
            "payment_policy_id": "6200001",
            "return_policy_id": "6300001",
            "marketplace_id": "EBAY_US",
        }

    def expire_tokens(self) -> int:
        """Every access token stops working now (as if it expired or was revoked early)."""
        with self._fault_lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    def simulate_sale(
        self, sku: str, quantity: int = 1, *, deliver: bool = True, buyer: str = "loopback_buyer"
    ) -> dict:
        order = self.store.sell(sku, quantity, buyer=buyer)
        if deliver:
            self.deliver_order_notification(order["orderId"])
        return order

    # --- faults -------------------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> Faults:
        with self._fault_lock:
            unknown = set(changes) - set(asdict(self.faults))
            if unknown:
                raise ValueError(f"Unknown fault settings: {sorted(unknown)}")
            for name, value in changes.items():
                setattr(self.faults, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            return Faults(**asdict(self.faults))

    def fail_next(
        self, kind: str, *, method: str | None = None, path_prefix: str | None = None, count: int = 1
    ) -> None:
        """Script a fault: error (500, 25001), system (400 with 25001), concurrent (25025), rate_limit, timeout."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"Fault kinds are {FAULT_KINDS}")
        with self._fault_lock:
            self._scripted.append(_Scripted(kind, method, path_prefix, count))

    def _pick_fault(self, method: str, path: str) -> str:
        with self._fault_lock:
            for scripted in self._scripted:
                if scripted.matches(method, path):
                    scripted.remaining -= 1
                    if scripted.remaining <= 0:
                        self._scripted.remove(scripted)
                    return scripted.kind
            f = self.faults
            if not (f.error_rate or f.rate_limit_rate or f.timeout_rate):
                return ""
            draw = self._rng.random()
        if draw < f.error_rate:
            return "error"
        if draw < f.error_rate + f.rate_limit_rate:
            return "rate_limit"
        if draw < f.error_rate + f.rate_limit_rate + f.timeout_rate:
            return "timeout"
        return ""

    # --- request log --------------------------------------------------------------------------

    def api_calls(self) -> list[RecordedRequest]:
        return [r for r in self.requests() if not r.path.startswith("/identity/")]

    # --- HTTP ---------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        try:
            self._answer(handler)
        finally:
            if self.state_file and handler.command != "GET":
                self.save()

    def _answer(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        kept_headers = {k: v for k, v in headers.items() if k != "authorization"}
        path = split.path

        def answer(status: int, body: Any, problems: Iterable[str] = (), fault: str = "", extra=None) -> None:
            with self._log_lock:
                self._log.append(
                    RecordedRequest(
                        method, path, query, split.query, parsed, status, kept_headers, body, tuple(problems), fault
                    )
                )
            self._send(handler, status, body, extra)

        parsed: Any = None
        if path.startswith("/_sandbox/"):
            status, body = self._control(method, path[len("/_sandbox") :], raw)
            self._send(handler, status, body)
            return
        if path == "/identity/v1/oauth2/token":
            parsed = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}
            status, body = self._token(headers, parsed)
            answer(status, body)
            return
        located = contract.api_of(path)
        if located is None:
            answer(
                404,
                {
                    "errors": [
                        {"errorId": 2002, "domain": "ACCESS", "category": "REQUEST", "message": "Resource not found"}
                    ]
                },
            )
            return
        api, sub = located
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                answer(*error(400, 25002, "The request body is not valid JSON."))
                return
            if "application/json" not in headers.get("content-type", ""):
                answer(*error(400, 25002, "Send Content-Type: application/json with a body."))
                return
        token = self._bearer(headers)
        # app tokens: public keys and destinations; seller topics' subscriptions need the seller's token
        needed = "any" if api == "notification" and sub.startswith(("/public_key/", "/destination")) else "user"
        if token is None or (needed == "user" and token.kind != "user"):
            answer(
                401,
                {
                    "errors": [
                        {
                            "errorId": 1001,
                            "domain": "OAuth",
                            "category": "REQUEST",
                            "message": "Invalid access token",
                            "longMessage": "Invalid access token. Check the value of the Authorization HTTP request header.",
                        }
                    ]
                },
            )
            return
        if api == "inventory" and not headers.get("accept-language"):
            answer(*error(400, 25709, "Invalid value for header Accept-Language.", field="Accept-Language"))
            return
        problems = contract.request_problems(api, method, sub, parsed, headers) if self.validate else []
        if problems:
            status, body = error(400, 25002, "The request does not match eBay's API: " + "; ".join(problems))
            answer(status, body, problems)
            return
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        fault = self._pick_fault(method, path)
        if fault in ("error", "system", "concurrent"):
            status, body = error(
                500 if fault == "error" else 400 if fault == "system" else 409,
                25025 if fault == "concurrent" else 25001,
                "Concurrent access of Inventory. Please try again later"
                if fault == "concurrent"
                else "A system error has occurred.",
                category="APPLICATION",
            )
            if fault == "concurrent":
                status = 500
            answer(status, body, fault=fault)
            return
        if fault == "rate_limit":
            status, body = error(429, 2001, "Too many requests (injected).", category="REQUEST", domain="ACCESS")
            answer(status, body, fault=fault, extra={"Retry-After": str(self.faults.retry_after)})
            return
        routed = self._route(api, method, sub, query, split.query, parsed)
        status, body = routed[0], routed[1]
        extra = routed[2] if len(routed) > 2 else None
        if fault == "timeout":
            with self._log_lock:
                self._log.append(
                    RecordedRequest(method, path, query, split.query, parsed, status, kept_headers, body, (), fault)
                )
            time.sleep(self.faults.timeout_delay)
            self._send(handler, status, body, extra)
            return
        answer(status, body, extra=extra)

    def _bearer(self, headers: Mapping[str, str]) -> _Token | None:
        value = headers.get("authorization", "")
        if not value.startswith("Bearer "):
            return None
        with self._fault_lock:
            token = self.tokens.get(value[len("Bearer ") :])
        if token is None or token.expires_at < time.time():
            return None
        return token

    def _token(self, headers: Mapping[str, str], form: Mapping[str, str]) -> tuple[int, Any]:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, {"error": "invalid_client", "error_description": "client authentication failed"}
        if "application/x-www-form-urlencoded" not in headers.get("content-type", ""):
            return 400, {"error": "invalid_request", "error_description": "Send the form url-encoded."}
        grant = form.get("grant_type")
        if grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "the provided authorization refresh token is invalid or was issued to another client",
                }
            kind = "user"
        elif grant == "client_credentials":
            kind = "app"
        else:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"grant_type {grant!r} is not supported",
            }
        access = f"v^1.1#i^1#sandbox-{kind}-{secrets.token_urlsafe(24)}"
        with self._fault_lock:
            self.tokens[access] = _Token(kind, time.time() + self.token_lifetime)
            self.token_grants.append(grant)
        return 200, {
            "access_token": access,
            "expires_in": self.token_lifetime,
            "token_type": "User Access Token" if kind == "user" else "Application Access Token",
        }

    def _route(self, api: str, method: str, path: str, query: dict, raw_query: str, body: Any) -> tuple[int, Any]:
        store = self.store
        routes: list[tuple[str, str, str, Callable[..., tuple[int, Any]]]] = [
            ("inventory", "GET", r"/inventory_item", lambda: store.list_items(query)),
            ("inventory", "GET", r"/inventory_item/([^/]+)", lambda sku: store.get_item(sku)),
            ("inventory", "PUT", r"/inventory_item/([^/]+)", lambda sku: store.put_item(sku, body)),
            ("inventory", "GET", r"/offer", lambda: store.offers_for_sku(query)),
            ("inventory", "POST", r"/offer", lambda: store.create_offer(body)),
            ("inventory", "GET", r"/offer/([^/]+)", lambda oid: store.get_offer(oid)),
            ("inventory", "PUT", r"/offer/([^/]+)", lambda oid: store.update_offer(oid, body)),
            ("inventory", "POST", r"/offer/([^/]+)/publish/", lambda oid: store.publish_offer(oid)),
            ("inventory", "POST", r"/offer/([^/]+)/withdraw", lambda oid: store.withdraw_offer(oid)),
            ("inventory", "POST", r"/bulk_update_price_quantity", lambda: store.bulk_price_quantity(body)),
            ("inventory", "POST", r"/bulk_migrate_listing", lambda: store.migrate(body)),
            ("inventory", "POST", r"/bulk_get_inventory_item", lambda: store.bulk_get_items(body)),
            ("inventory", "POST", r"/bulk_create_or_replace_inventory_item", lambda: store.bulk_put_items(body)),
            ("inventory", "POST", r"/bulk_create_offer", lambda: store.bulk_create_offers(body)),
            ("inventory", "POST", r"/bulk_publish_offer", lambda: store.bulk_publish(body)),
            ("inventory", "GET", r"/location/([^/]+)", lambda key: store.get_location(key)),
            (
                "account",
                "GET",
                r"/(fulfillment|payment|return)_policy/([^/]+)",
                lambda k, pid: store.get_policy(k, pid),
            ),
            ("fulfillment", "GET", r"/order", lambda: store.search_orders(raw_query, query)),
            ("fulfillment", "GET", r"/order/([^/]+)", lambda oid: store.get_order(oid)),
            ("notification", "GET", r"/public_key/([^/]+)", self._public_key),
            ("notification", "GET", r"/destination", self._destinations),
            ("notification", "POST", r"/destination", lambda: self._create_destination(body)),
            ("notification", "PUT", r"/destination/([^/]+)", lambda did: self._update_destination(did, body)),
            ("notification", "GET", r"/subscription", self._subscriptions),
            ("notification", "POST", r"/subscription", lambda: self._create_subscription(body)),
            ("notification", "POST", r"/subscription/([^/]+)/enable", self._enable_subscription),
        ]
        for route_api, verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if match and route_api == api and verb == method:
                return action(*match.groups())
        return error(404, 2002, f"The loopback eBay does not serve {method} {path}.", domain="ACCESS")

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, extra: Mapping[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        try:
            handler.send_response(status)
            if data:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (extra or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    # --- control endpoints (/_sandbox/...) -------------------------------------------------------

    def state(self) -> dict:
        with self.store.lock:
            return {
                "base_url": self.base_url,
                "token_url": self.token_url,
                "items": list(self.store.items.values()),
                "offers": list(self.store.offers.values()),
                "orders": list(self.store.orders.values()),
                "legacy_listings": self.store.legacy_listings,
                "webhook_urls": self.webhook_urls,
                "calls": len(self.requests()),
                "faults": asdict(self.faults),
            }

    def _control(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return 400, {"message": "The body is not valid JSON."}
        try:
            if method == "GET" and path == "/state":
                return 200, self.state()
            if method == "POST" and path == "/sales":
                return 201, self.simulate_sale(
                    data["sku"], int(data.get("quantity") or 1), deliver=bool(data.get("deliver", True))
                )
            if method == "POST" and path == "/faults":
                scripted = data.pop("next", [])
                faults = self.set_faults(**data)
                for item in scripted:
                    self.fail_next(
                        item["kind"],
                        method=item.get("method"),
                        path_prefix=item.get("path_prefix"),
                        count=item.get("count", 1),
                    )
                return 200, asdict(faults)
            if method == "POST" and path == "/webhooks":
                self.webhook_urls.append(data["url"])
                return 201, {"webhook_urls": self.webhook_urls}
            if method == "POST" and path == "/tokens/expire":
                return 200, {"expired": self.expire_tokens()}
            if method == "POST" and path == "/legacy_listings":
                return 201, {
                    "listingId": self.store.add_legacy_listing(data["sku"], title=data["title"], price=data["price"])
                }
        except SandboxError as exc:
            return 409, {"message": str(exc)}
        except (TypeError, ValueError, KeyError) as exc:
            return 400, {"message": f"Bad request: {exc}"}
        return 404, {"message": f"No control endpoint {method} /_sandbox{path}."}


__all__ = ["CLIENT_ID", "CLIENT_SECRET", "REFRESH_TOKEN", "Delivery", "EbaySandbox", "Faults", "RecordedRequest"]
