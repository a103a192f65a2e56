"""The loopback Reverb's HTTP side: routes, auth, request log, fault injection, webhook delivery.

Tests and benchmarks drive it in-process (`ReverbSandbox` methods); a separately running
sandbox (`manage.py reverb_sandbox`) is driven through the control endpoints under
/_sandbox/. The API itself lives under /api and speaks Reverb's wire format.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from inventory.loopback import FaultInjection, FaultPlan, Faults, LoopbackHTTPServer, RequestLog

from ..mappers import CONDITION_UUIDS, parse_time
from .store import ReverbStore, SandboxError

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "sandbox-token"
ORDER_TOPICS = ("orders/create", "orders/update")


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the sandbox received it (the token itself is never kept)."""

    method: str
    path: str  # under /api, e.g. "/listings/71000001"
    query: dict[str, str]
    body: Any
    status: int
    headers: dict[str, str]
    authorized: bool
    fault: str = ""

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the sandbox made."""

    url: str
    topic: str
    body: bytes
    status: int | None
    error: str = ""


class _Server(LoopbackHTTPServer):
    label = "Reverb sandbox"
    sandbox: ReverbSandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ReverbSandbox/1.0"
    # Headers and body go out as two writes: with Nagle on, a kept-alive client waits ~40 ms
    # for the delayed ACK on every answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.sandbox._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the sandbox keeps its own log
        return


class ReverbSandbox(FaultInjection, RequestLog):
    """A loopback Reverb on 127.0.0.1 for tests and the demo.

    Usage::

        with ReverbSandbox(webhook_urls=["http://127.0.0.1:8000/hooks/reverb/<token>/"]) as sandbox:
            connection.base_url = sandbox.base_url        # http://127.0.0.1:<port>/api
            ...
            sandbox.simulate_sale("SKU-1")                 # order + orders/create webhook
            assert sandbox.calls(method="POST", path_prefix="/listings") == 1
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        webhook_urls: Iterable[str] = (),
        seed: int = 0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        timeout_rate: float = 0.0,
        latency_ms: float = 0.0,
        timeout_delay: float = 2.0,
        retry_after: int = 2,
        page_size: int = 24,
        max_page_size: int = 100,
        topic_header: str | None = None,
        webhook_timeout: float = 5.0,
        require_category: bool = False,
        clock: Callable[[], datetime] | None = None,
        state_file: str | None = None,
    ) -> None:
        self.host = host
        # The demo keeps its shops across restarts: the state is written after every change.
        self.state_file = state_file
        self.port = port
        self.token = token
        self.webhook_urls = list(webhook_urls)
        # Reverb documents no topic header on deliveries; set one (e.g. "X-Reverb-Topic") to test that path.
        self.topic_header = topic_header
        self.webhook_timeout = webhook_timeout
        self.store = ReverbStore(
            lambda: self.base_url,
            clock=clock,
            page_size=page_size,
            max_page_size=max_page_size,
            require_category=require_category,
        )
        self._faults = FaultPlan(
            Faults,
            seed=seed,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            timeout_rate=timeout_rate,
            latency_ms=latency_ms,
            timeout_delay=timeout_delay,
            retry_after=retry_after,
        )
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root to put in a ReverbConnection's base_url."""
        return f"{self.root_url}/api"

    def start(self) -> str:
        """Listen (port 0 picks a free one) and serve in a background thread. Returns base_url."""
        if self._server is not None:
            return self.base_url
        self._bind()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="reverb-sandbox", daemon=True
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
        self._thread = None
        if self.state_file:
            # A request answered just before the stop may not have reached its own save yet, and a
            # sandbox started next on the same file must find it.
            self.store.save(self.state_file)

    def _bind(self) -> None:
        """Take up the shop's state from its file (if kept) and listen."""
        if self.state_file:
            self.store.load(self.state_file)
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (the management command). `ready` gets base_url
        once the port is bound."""
        self._bind()
        if ready is not None:
            ready(self.base_url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None
            if self.state_file:
                # A request answered just before the stop may not have reached its own save yet
                # (its thread dies with the process): what the shop holds is written once more.
                self.store.save(self.state_file)

    def __enter__(self) -> ReverbSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the marketplace, for tests -----------------------------------------------------

    def listing(self, ref: str | int) -> dict | None:
        """A listing as Reverb would return it, by id or slug."""
        status, body = self.store.get_listing(str(ref))
        return body if status == 200 else None

    def listings(self, sku: str | None = None) -> list[dict]:
        """Every listing (any state), newest first, optionally only those with this SKU."""
        with self.store.lock:
            found = sorted(self.store.listings.values(), key=lambda x: -x["id"])
            return [self.store.render_listing(x) for x in found if sku is None or x["sku"] == sku]

    def orders(self) -> list[dict]:
        with self.store.lock:
            return [self.store.render_order(o) for o in self.store.orders.values()]

    def add_external_listing(
        self,
        sku: str = "",
        *,
        make: str = "Fender",
        model: str = "Stratocaster",
        title: str = "",
        price: str | Decimal = "1000.00",
        currency: str = "USD",
        condition: str = "excellent",
        quantity: int = 1,
        state: str = "live",
        photos: Iterable[str] = (),
        **fields: Any,
    ) -> dict:
        """A listing made directly on Reverb (not through the back office). `condition` is ours or a UUID."""
        uuid = CONDITION_UUIDS.get(condition, condition)
        multi = quantity > 1 or condition in ("brand_new", "b_stock")
        body = {
            "sku": sku,
            "make": make,
            "model": model,
            "title": title or f"{make} {model}",
            "price": {"amount": str(Decimal(str(price)).quantize(Decimal("0.01"))), "currency": currency},
            "condition": {"uuid": uuid},
            "has_inventory": multi,
            "inventory": quantity,
            "photos": list(photos),
            "upc_does_not_apply": True,
            "publish": state != "draft",
            **fields,
        }
        status, answer = self.store.create_listing(body)
        if status != 201:
            raise SandboxError(f"Reverb refused the listing: {answer}")
        listing_id = answer["listing"]["id"]
        if state not in ("live", "draft"):
            self.set_listing_state(listing_id, state)
        return self.listing(listing_id)

    def set_listing_state(self, ref: str | int, state: str) -> dict:
        """Change a listing's state as Reverb or the seller on reverb.com would (ended, suspended, vacation...)."""
        with self.store.lock:
            listing = self.store.find_listing(ref)
            if listing is None:
                raise SandboxError(f"No listing {ref}.")
            listing["state"] = state
            listing["updated_at"] = self.store.clock()
            return self.store.render_listing(listing)

    def edit_listing(
        self,
        ref: str | int,
        *,
        price: str | Decimal | None = None,
        quantity: int | None = None,
        title: str | None = None,
        description: str | None = None,
    ) -> dict:
        """The seller edits a listing on reverb.com itself (not through the API client): the same field
        rules as PUT /listings/{id}, but nothing is logged as a request and no webhook is sent (Reverb has
        no listing webhook). Returns the listing as Reverb now shows it."""
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if description is not None:
            body["description"] = description
        if quantity is not None:
            body["inventory"] = quantity
        if price is not None:
            current = self.listing(ref)
            currency = current["listing_currency"] if current else "USD"
            body["price"] = {"amount": str(Decimal(str(price)).quantize(Decimal("0.01"))), "currency": currency}
        status, answer = self.store.update_listing(str(ref), body)
        if status != 200:
            raise SandboxError(f"Reverb refused the edit: {answer}")
        return answer["listing"]

    def simulate_sale(
        self,
        sku_or_listing_id: str | int,
        quantity: int = 1,
        placed_at: datetime | None = None,
        status: str = "paid",
        deliver_webhook: bool = True,
        buyer: Mapping[str, str] | None = None,
    ) -> dict:
        """A buyer checks out on Reverb: an order is created, stock goes down (a one-of-a-kind listing
        becomes sold), and the orders/create webhook is POSTed to every registered URL. Returns the order."""
        order = self.store.sell(sku_or_listing_id, quantity=quantity, placed_at=placed_at, status=status, buyer=buyer)
        if deliver_webhook:
            self.deliver("orders/create", order)
        return order

    def update_order(self, order_number: str, status: str, deliver_webhook: bool = True) -> dict:
        """The order moves on (paid, shipped, refunded...); orders/update is delivered."""
        order = self.store.set_order_status(order_number, status)
        if deliver_webhook:
            self.deliver("orders/update", order)
        return order

    # --- webhooks -----------------------------------------------------------------------

    def register_webhook(self, url: str, topic: str = "orders/create") -> dict:
        status, answer = self.store.register_webhook({"url": url, "topic": topic})
        if status != 201:
            raise SandboxError(f"Registration refused: {answer}")
        return answer

    def deliver(self, topic: str, payload: Mapping[str, Any]) -> list[Delivery]:
        """POST the object's JSON to the URLs registered for this topic (and the constructor's URLs)."""
        urls = self.store.webhook_urls(topic)
        if topic in ORDER_TOPICS:
            urls += [u for u in self.webhook_urls if u not in urls]
        body = json.dumps(payload).encode()
        return [self._post(url, topic, body) for url in urls]

    def redeliver(self, index: int = -1) -> Delivery:
        """Send an earlier delivery again, byte for byte (Reverb retries what was not answered 2xx)."""
        earlier = self.deliveries[index]
        return self._post(earlier.url, earlier.topic, earlier.body)

    def _post(self, url: str, topic: str, body: bytes) -> Delivery:
        headers = {"Content-Type": "application/json", "User-Agent": "Reverb-Webhooks (loopback sandbox)"}
        if self.topic_header:
            headers[self.topic_header] = topic
        try:
            response = requests.post(url, data=body, headers=headers, timeout=self.webhook_timeout)
            delivery = Delivery(url=url, topic=topic, body=body, status=response.status_code)
        except requests.RequestException as error:
            delivery = Delivery(url=url, topic=topic, body=body, status=None, error=error.__class__.__name__)
        self.deliveries.append(delivery)
        return delivery

    # --- faults -------------------------------------------------------------------------

    # --- request log --------------------------------------------------------------------

    # --- HTTP ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        try:
            self._answer(handler)
        finally:
            if self.state_file and handler.command != "GET":
                self.store.save(self.state_file)

    def _answer(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""

        if split.path.startswith("/_sandbox/"):
            status, body = self._control(method, split.path[len("/_sandbox") :], raw)
            self._send(handler, status, body)
            return
        if not (split.path == "/api" or split.path.startswith("/api/")):
            self._send(handler, 404, {"message": "Not found. The API is under /api."})
            return
        path = split.path[len("/api") :] or "/"
        headers = {k.lower(): v for k, v in handler.headers.items() if k.lower() != "authorization"}
        authorized = handler.headers.get("Authorization", "") == f"Bearer {self.token}"

        body: Any = None
        if raw:
            content_type = headers.get("content-type", "").split(";")[0].strip()
            if content_type in ("application/hal+json", "application/json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                    self._record(method, path, query, raw.decode(errors="replace"), 400, headers, authorized)
                    self._send(handler, 400, {"message": "The body is not valid JSON.", "errors": {}})
                    return
            else:  # Reverb reads a body without a JSON content type as form data
                body = {k: v[-1] for k, v in parse_qs(raw.decode(errors="replace")).items()}

        if not authorized:
            answer = (401, {"message": "Invalid or missing token: send Authorization: Bearer <token>.", "errors": {}})
        elif headers.get("accept-version") != "3.0":
            answer = (400, {"message": "Send the header Accept-Version: 3.0.", "errors": {}})
        else:
            answer = None
        if answer is not None:
            self._record(method, path, query, body, answer[0], headers, authorized)
            self._send(handler, *answer)
            return

        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        fault = self._pick_fault(method, path)
        if fault == "error":
            self._record(method, path, query, body, 500, headers, authorized, fault)
            self._send(handler, 500, {"message": "Internal server error (injected)."})
            return
        if fault == "rate_limit":
            self._record(method, path, query, body, 429, headers, authorized, fault)
            self._send(
                handler,
                429,
                {"message": "Too many requests (injected)."},
                {"Retry-After": str(self.faults.retry_after)},
            )
            return
        status, out = self._route(method, path, query, body)
        self._record(method, path, query, body, status, headers, authorized, fault)
        if fault == "timeout":  # applied; the answer comes too late for the client
            time.sleep(self.faults.timeout_delay)
        self._send(handler, status, out)

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        store = self.store
        routes: list[tuple[str, str, Callable[..., tuple[int, Any]]]] = [
            ("GET", r"/my/listings", lambda: store.my_listings(query)),
            ("POST", r"/listings", lambda: store.create_listing(body)),
            ("GET", r"/listings/([^/]+)", lambda ref: store.get_listing(ref)),
            ("PUT", r"/listings/([^/]+)", lambda ref: store.update_listing(ref, body)),
            ("DELETE", r"/listings/([^/]+)", lambda ref: store.delete_listing(ref)),
            ("PUT", r"/my/listings/([^/]+)/state/end", lambda ref: store.end_listing(ref, body)),
            ("GET", r"/my/orders/selling/all", lambda: store.selling_orders(query)),
            ("GET", r"/my/orders/selling/([^/]+)", lambda number: store.selling_order(number)),
            ("POST", r"/my/orders/selling/([^/]+)/ship", lambda number: store.ship_order(number, body)),
            ("GET", r"/my/account", self._account),
            ("GET", r"/webhooks/registrations", self._registrations),
            ("POST", r"/webhooks/registrations", lambda: store.register_webhook(body)),
            ("DELETE", r"/webhooks/registrations/(\d+)", self._unregister),
        ]
        allowed = []
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if match:
                if verb == method:
                    return action(*match.groups())
                allowed.append(verb)
        if allowed:
            return 405, {"message": f"{method} is not allowed here; use {', '.join(allowed)}."}
        return 404, {"message": "Not found."}

    def _account(self) -> tuple[int, Any]:
        return 200, {
            "user_id": 501,
            "first_name": "Sandbox",
            "last_name": "Seller",
            "shop_name": "Loopback Guitars",
            "currency": "USD",
            "_links": {"self": {"href": f"{self.base_url}/my/account"}},
        }

    def _registrations(self) -> tuple[int, Any]:
        with self.store.lock:
            return 200, {"registrations": [dict(r) for r in self.store.registrations.values()]}

    def _unregister(self, rid: str) -> tuple[int, Any]:
        with self.store.lock:
            if self.store.registrations.pop(int(rid), None) is None:
                return 404, {"message": "No such registration."}
            return 200, {}

    def _record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        status: int,
        headers: dict[str, str],
        authorized: bool,
        fault: str = "",
    ) -> None:
        with self._log_lock:
            self._log.append(RecordedRequest(method, path, query, body, status, headers, authorized, fault))

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, extra_headers: Mapping[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/hal+json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in (extra_headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    # --- control endpoints (/_sandbox/...) ----------------------------------------------

    def state(self) -> dict:
        """Everything the sandbox holds, for the control endpoint and for eyes."""
        with self.store.lock:
            registrations = [dict(r) for r in self.store.registrations.values()]
        return {
            "base_url": self.base_url,
            "listings": self.listings(),
            "orders": self.orders(),
            "registrations": registrations,
            "webhook_urls": list(self.webhook_urls),
            "deliveries": [
                {"url": d.url, "topic": d.topic, "status": d.status, "error": d.error} for d in self.deliveries
            ],
            "calls": {"total": self.calls(), "reads": self.reads, "writes": self.writes},
            "faults": asdict(self.faults),
        }

    def _control(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            return 400, {"message": "The body is not valid JSON."}
        if not isinstance(data, dict):
            return 400, {"message": "The body must be a JSON object."}
        try:
            if method == "GET" and path == "/state":
                return 200, self.state()
            if method == "POST" and path == "/sales":
                ref = data.get("listing_id") or data.get("sku")
                if not ref:
                    return 400, {"message": "Send sku or listing_id."}
                placed_at = parse_time(data.get("placed_at")) if data.get("placed_at") else None
                order = self.simulate_sale(
                    ref,
                    quantity=int(data.get("quantity") or 1),
                    placed_at=placed_at,
                    status=data.get("status") or "paid",
                    deliver_webhook=bool(data.get("deliver_webhook", True)),
                )
                return 201, order
            match = re.fullmatch(r"/orders/([^/]+)", path)
            if method == "POST" and match:
                return 200, self.update_order(
                    match.group(1), data.get("status") or "", bool(data.get("deliver_webhook", True))
                )
            if method == "POST" and path == "/listings":
                return 201, self.add_external_listing(**data)
            match = re.fullmatch(r"/listings/([^/]+)/state", path)
            if method == "POST" and match:
                return 200, self.set_listing_state(match.group(1), data.get("state") or "")
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
                return 201, self.register_webhook(data.get("url") or "", data.get("topic") or "orders/create")
            if method == "POST" and path == "/log/reset":
                self.reset_log()
                return 200, {}
        except SandboxError as error:
            return 409, {"message": str(error)}
        except (TypeError, ValueError, KeyError) as error:
            return 400, {"message": f"Bad request: {error}"}
        return 404, {"message": f"No control endpoint {method} /_sandbox{path}."}
