"""The loopback Etsy's HTTP side: OAuth pages, the Open API v3 routes (every request checked
against the OpenAPI file), rate-limit headers and 429s, faults, signed webhooks.

Tests and benchmarks drive it in-process through `EtsySandbox` methods; `manage.py
etsy_sandbox` runs one on a port. A request the spec does not allow is answered 400 with
the reasons and recorded (`violations`); an answer of the sandbox's own that the spec does
not allow is recorded in `answer_violations` (tests assert both stay empty).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import random
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from ..webhooks import sign
from .contract import EtsyContract, contract
from .store import (
    DEFAULT_KEYSTRING,
    DEFAULT_SHARED_SECRET,
    SHOP_ID,
    EtsyStore,
    SandboxError,
    error,
)

logger = logging.getLogger(__name__)

PHOTO = base64.b64decode(  # a 1x1 JPEG
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////"
    "2wBDAf//////////////////////////////////////////////////////////////////////////////////////wAARCAABAAEDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAP/"
    "xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFAEBAAAAAAAAAAAAAAAAAAAAAP/EABQRAQAAAAAAAAAAAAAAAAAAAAD/2gAMAwEAAhEDEQA/AKAA/9k="
)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    operation_id: str
    query: dict[str, Any]
    body: Any
    status: int
    violations: tuple[str, ...] = ()
    fault: str = ""


@dataclass
class Faults:
    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_delay: float = 2.5
    retry_after: float = 0.2


@dataclass
class Delivery:
    url: str
    webhook_id: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class _Scripted:
    kind: str
    method: str | None
    path_contains: str
    left: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sandbox: EtsySandbox

    def do_GET(self):
        self.sandbox._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format, *args):
        pass


class EtsySandbox:
    """A loopback Etsy: `with EtsySandbox() as etsy: etsy.base_url ...`."""

    def __init__(
        self,
        *,
        seed: int = 0,
        per_second: int = 0,
        per_day: int = 100_000,
        token_lifetime: int = 3600,
        keystring: str = DEFAULT_KEYSTRING,
        shared_secret: str = DEFAULT_SHARED_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        spec: EtsyContract | None = None,
        **faults: Any,
    ) -> None:
        self.store = EtsyStore(token_lifetime=token_lifetime)
        self.store.apps = {keystring: shared_secret}
        self.keystring, self.shared_secret = keystring, shared_secret
        self.contract = spec or contract()
        self.faults = Faults(**faults)
        self.random = random.Random(seed)
        self.per_second = per_second  # 0: no per-second limit
        self.per_day = per_day
        self.remaining_today = per_day
        self.host, self.port = host, port
        self.webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.webhook_urls: list[str] = []
        self.deliveries: list[Delivery] = []
        self.held: list[tuple[str, str, bytes]] | None = None
        self._log: list[RecordedRequest] = []
        self.answer_violations: list[str] = []
        self.token_calls: list[tuple[str, int]] = []
        self.request_times: list[float] = []  # when each API request arrived (benchmarks count per second)
        self._scripted: list[_Scripted] = []
        self._lock = threading.Lock()
        self._window = (0, 0)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth/connect"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/v3/public/oauth/token"

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._server = _Server((self.host, self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="etsy-sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def serve_forever(self) -> None:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._server = _Server((self.host, self.port), handler)
        self._server.serve_forever()

    def __enter__(self) -> EtsySandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the shop's side ------------------------------------------------------------------

    def grant(self) -> dict:
        return self.store.grant()

    def seed_tokens(self, access_token: str, refresh_token: str, lifetime: int = 10 * 365 * 86400) -> None:
        """Accept these tokens (the demo's connection keeps them across sandbox restarts)."""
        scopes = ["listings_r", "listings_w", "listings_d", "transactions_r", "transactions_w", "shops_r"]
        with self.store.lock:
            self.store.tokens[access_token] = {"scopes": scopes, "expires": self.store.now() + lifetime}
            self.store.refresh_tokens[refresh_token] = {"scopes": scopes}

    def listing(self, listing_id: int | str) -> dict | None:
        raw = self.store.listings.get(int(listing_id))
        return None if raw is None else self.store.render_listing(raw, images=True)

    def listings(self, sku: str | None = None) -> list[dict]:
        with self.store.lock:
            rows = [self.store.render_listing(i, images=True) for i in self.store.listings.values()]
        return [r for r in rows if sku is None or sku in r["skus"]]

    def inventory(self, listing_id: int | str) -> dict:
        return self.store.render_inventory(self.store.listings[int(listing_id)])

    def images(self, listing_id: int | str) -> list[dict]:
        return sorted(self.store.images.get(int(listing_id), []), key=lambda i: i["rank"])

    def receipts(self) -> list[dict]:
        with self.store.lock:
            return [self.store.render_receipt(r) for r in self.store.receipts.values()]

    def add_external_listing(self, sku: str, *, title: str, price: str, quantity: int = 1) -> dict:
        return self.store.add_listing(sku, title=title, price=price, quantity=quantity)

    def simulate_sale(
        self, ref: str, quantity: int = 1, *, deliver_webhook: bool = True, duplicate: bool = False
    ) -> dict:
        receipt = self.store.sell(ref, quantity)
        if deliver_webhook:
            self.deliver_order_event("order.paid", receipt["receipt_id"], duplicate=duplicate)
        return receipt

    def set_receipt_status(self, receipt_id: int, status: str, *, deliver_webhook: bool = True) -> dict:
        receipt = self.store.set_receipt_status(receipt_id, status)
        if deliver_webhook:
            self.deliver_order_event("order.canceled" if status == "canceled" else "order.paid", receipt_id)
        return receipt

    def expire_tokens(self) -> None:
        self.store.expire_tokens()

    def refuse_refresh(self, refuse: bool = True) -> None:
        self.store.refuse_refresh = refuse

    # --- webhooks -------------------------------------------------------------------------

    def register_webhook(self, url: str) -> None:
        self.webhook_urls.append(url)

    def order_event(self, event_type: str, receipt_id: int) -> bytes:
        return json.dumps(
            {
                "event_type": event_type,
                "resource_url": f"{self.base_url}/v3/application/shops/{SHOP_ID}/receipts/{receipt_id}",
                "shop_id": SHOP_ID,
            }
        ).encode()

    def signed_headers(self, webhook_id: str, body: bytes, *, secret: str | None = None, at: int | None = None) -> dict:
        timestamp = str(at if at is not None else int(time.time()))
        return {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(secret or self.webhook_secret, webhook_id, timestamp, body),
        }

    def deliver_order_event(self, event_type: str, receipt_id: int, *, duplicate: bool = False) -> list[Delivery]:
        webhook_id = f"msg_{secrets.token_hex(12)}"
        body = self.order_event(event_type, receipt_id)
        sent = []
        for url in self.webhook_urls:
            for _ in range(2 if duplicate else 1):
                if self.held is not None:
                    self.held.append((url, webhook_id, body))
                else:
                    sent.append(self._post(url, webhook_id, body))
        return sent

    def hold_deliveries(self) -> None:
        """Deliveries wait until `release` (which can send them newest first: out of order)."""
        self.held = []

    def release(self, *, reverse: bool = False) -> list[Delivery]:
        held, self.held = self.held or [], None
        return [self._post(*one) for one in (reversed(held) if reverse else held)]

    def _post(self, url: str, webhook_id: str, body: bytes) -> Delivery:
        headers = self.signed_headers(webhook_id, body)
        try:
            status = requests.post(url, data=body, headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = 0
        delivery = Delivery(url, webhook_id, body, headers, status)
        self.deliveries.append(delivery)
        return delivery

    # --- faults and the log ---------------------------------------------------------------

    def set_faults(self, **changes: Any) -> None:
        for name, value in changes.items():
            if name == "seed":
                self.random = random.Random(value)
            else:
                setattr(self.faults, name, value)

    def fail_next(
        self, kind: str = "error", *, method: str | None = None, path_contains: str = "", count: int = 1
    ) -> None:
        """The next matching call fails: error (500), rate_limit (429), timeout (applied, answer lost), unauthorized (401)."""
        self._scripted.append(_Scripted(kind, method, path_contains, count))

    def _fault(self, method: str, path: str) -> str:
        with self._lock:
            for scripted in self._scripted:
                if scripted.left and (scripted.method in (None, method)) and scripted.path_contains in path:
                    scripted.left -= 1
                    return scripted.kind
            roll = self.random.random()
        f = self.faults
        if roll < f.error_rate:
            return "error"
        if roll < f.error_rate + f.rate_limit_rate:
            return "rate_limit"
        if roll < f.error_rate + f.rate_limit_rate + f.timeout_rate:
            return "timeout"
        return ""

    def requests(self, operation_id: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._log if operation_id is None or r.operation_id == operation_id]

    @property
    def violations(self) -> list[str]:
        return [f"{r.method} {r.path}: {v}" for r in self.requests() for v in r.violations]

    def calls(self) -> int:
        return len(self.requests())

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    # --- HTTP -------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        query = parse_qsl(parts.query, keep_blank_values=True)
        path = parts.path
        try:
            if path == "/oauth/connect" and handler.command == "GET":
                status, answer = self.store.authorize(dict(query))
                if status == 302:
                    return self._send(handler, 302, None, {"Location": answer})
                return self._send(handler, status, answer)
            if path == "/v3/public/oauth/token" and handler.command == "POST":
                if self._fault("POST", path) == "error":
                    return self._send(handler, 503, {"error": "temporarily_unavailable"})
                form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                status, answer = self.store.token(form)
                with self._lock:
                    self.token_calls.append((form.get("grant_type", ""), status))
                return self._send(handler, status, answer)
            if path == "/_sandbox/sell" and handler.command == "POST":
                try:
                    wanted = json.loads(raw or b"{}")
                    receipt = self.simulate_sale(str(wanted["sku"]), int(wanted.get("quantity") or 1))
                except (ValueError, KeyError, SandboxError) as problem:
                    return self._send(handler, 400, {"error": str(problem)})
                return self._send(handler, 201, receipt)
            if path.startswith("/_sandbox/photos/"):
                return self._send(handler, 200, PHOTO, {"Content-Type": "image/jpeg"})
            if path.startswith("/v3/application/"):
                return self._api(handler, path, query, raw)
            return self._send(handler, 404, {"error": f"No route {path}"})
        except (BrokenPipeError, ConnectionResetError):
            return None

    def _api(self, handler: _Handler, path: str, query, raw: bytes) -> None:
        method = handler.command
        self.request_times.append(time.time())
        checked = self.contract.check_request(method, path, query, handler.headers.get("Content-Type", ""), raw)
        op = checked.operation
        op_id = op.operation_id if op else ""

        def finish(status: int, body: Any, fault: str = "", violations: tuple[str, ...] = ()) -> None:
            with self._lock:
                self._log.append(
                    RecordedRequest(method, path, op_id, checked.query, checked.body, status, violations, fault)
                )
            if op is not None and fault in ("", "timeout") and not violations:
                problems = self.contract.check_response(op, status, body)
                if problems:
                    self.answer_violations.extend(problems)
            if fault == "timeout":
                time.sleep(self.faults.timeout_delay)  # applied and logged, but the answer comes too late
            self._send(handler, status, body, self._limit_headers())

        if handler.headers.get("x-api-key") != f"{self.keystring}:{self.shared_secret}":
            return finish(401, {"error": "Invalid API key: send x-api-key as keystring:shared_secret"})
        if checked.errors:
            return finish(400, {"error": "; ".join(checked.errors)}, violations=tuple(checked.errors))
        if op.needs_token:
            bearer = handler.headers.get("Authorization", "")
            problem = self.store.token_problem(bearer[7:] if bearer.startswith("Bearer ") else "", op.scopes)
            if problem:
                return finish(401 if "scope" not in problem else 403, {"error": problem})
        with self._lock:
            self.remaining_today -= 1
            now = int(time.time())
            second, used = self._window
            used = used + 1 if second == now else 1
            self._window = (now, used)
        if self.remaining_today < 0 or (self.per_second and used > self.per_second):
            return self._rate_limited(handler, finish)
        fault = self._fault(method, path)
        if fault == "error":
            return finish(500, {"error": "Sandbox fault: internal error"}, fault)
        if fault == "rate_limit":
            return self._rate_limited(handler, finish, fault)
        if fault == "unauthorized":
            return finish(401, {"error": "invalid_token"}, fault)
        status, body = self._route(op_id, checked)
        finish(status, body, fault)

    def _rate_limited(self, handler, finish, fault: str = "rate_limit") -> None:
        with self._lock:
            self._log.append(
                RecordedRequest(handler.command, urlsplit(handler.path).path, "", {}, None, 429, (), fault)
            )
        self._send(
            handler, 429, {"error": "Too many requests"},
            {**self._limit_headers(), "Retry-After": f"{self.faults.retry_after:g}"},
        )  # fmt: skip

    def _limit_headers(self) -> dict[str, str]:
        second, used = self._window
        per_second = self.per_second or 10_000
        return {
            "x-limit-per-second": str(per_second),
            "x-remaining-this-second": str(max(0, per_second - used) if second == int(time.time()) else per_second),
            "x-limit-per-day": str(self.per_day),
            "x-remaining-today": str(max(0, self.remaining_today)),
        }

    def _route(self, op_id: str, checked) -> tuple[int, Any]:
        p, q, body, store = checked.path_params, checked.query, checked.body, self.store
        routes = {
            "ping": lambda: (200, {"application_id": 424242}),
            "getMe": store.me,
            "getShop": lambda: store.shop(p["shop_id"]),
            "getShopShippingProfile": lambda: store.shipping_profile(p["shop_id"], p["shipping_profile_id"]),
            "getShopReturnPolicy": lambda: store.return_policy(p["shop_id"], p["return_policy_id"]),
            "createDraftListing": lambda: store.create_draft(p["shop_id"], dict(body)),
            "updateListing": lambda: store.update_listing(p["shop_id"], p["listing_id"], dict(body)),
            "getListing": lambda: store.get_listing(p["listing_id"], q.get("includes") or []),
            "deleteListing": lambda: store.delete_listing(p["listing_id"]),
            "getListingInventory": lambda: store.get_inventory(p["listing_id"]),
            "updateListingInventory": lambda: store.update_inventory(p["listing_id"], body),
            "getListingImages": lambda: store.listing_images(p["listing_id"]),
            "uploadListingImage": lambda: store.upload_image(p["shop_id"], p["listing_id"], dict(body), checked.files),
            "deleteListingImage": lambda: store.delete_image(p["shop_id"], p["listing_id"], p["listing_image_id"]),
            "getListingsByShop": lambda: store.shop_listings(p["shop_id"], q),
            "getShopReceipts": lambda: store.receipts_page(p["shop_id"], q),
            "getShopReceipt": lambda: store.receipt(p["shop_id"], p["receipt_id"]),
            "createReceiptShipment": lambda: store.create_shipment(p["shop_id"], p["receipt_id"], body or {}),
        }
        route = routes.get(op_id)
        if route is None:
            return error(501, f"The sandbox does not implement {op_id}")
        try:
            return route()
        except SandboxError as problem:
            return error(400, str(problem))

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(body, bytes):
            payload = body
        elif body is None:
            payload = b""
        else:
            payload = json.dumps(body).encode()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.send_response(status)
            if not (headers and "Content-Type" in headers) and payload:
                handler.send_header("Content-Type", "application/json")
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)


__all__ = ["Delivery", "EtsySandbox", "Faults", "RecordedRequest"]
