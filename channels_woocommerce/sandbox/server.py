"""The loopback WooCommerce shop's HTTP side: route index checks, auth, faults, paging, webhooks.

Tests and benchmarks drive it in-process (`WooSandbox` methods); a separately running sandbox
(`manage.py woocommerce_sandbox`) is driven through the control endpoints under /_sandbox/.
The API is under /wp-json/wc/v3 and speaks WooCommerce's wire format; every request is first
checked against the official route index (see routes.py).

Authentication as WooCommerce does it: over plain http (the default here) only OAuth 1.0a
one-legged is accepted; with `tls=True` the sandbox behaves as a shop behind an https proxy
and takes HTTP Basic or the keys as query parameters (`strip_authorization=True` drops the
Authorization header on the way in, as some CGI set-ups do).

Webhooks as WooCommerce sends them: a form-encoded ping (`webhook_id=N`) when one is created;
deliveries signed with base64(HMAC-SHA256(body, secret)), the body encoded like PHP's
json_encode (slashes escaped, so a re-serialised body has other bytes); 200-302 counts as
delivered; after more than 5 consecutive failures the webhook is disabled.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from inventory.loopback import FaultInjection, FaultPlan, LoopbackHTTPServer, RequestLog

from .api import API, ShopApi
from .auth import Authentication
from .deliveries import Deliveries
from .records import ApiKey, Delivery, Faults, RecordedRequest, php_json
from .routes import Problem, RouteIndex, coerce_query, route_index
from .store import SandboxError, WooStore, error

logger = logging.getLogger(__name__)

DEFAULT_KEY = "ck_sandbox0000000000000000000000000000000"
DEFAULT_SECRET = "cs_sandbox0000000000000000000000000000000"


class _Server(LoopbackHTTPServer):
    label = "WooCommerce sandbox"
    sandbox: WooSandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "WooSandbox/1.0"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.sandbox._handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        return


class WooSandbox(FaultInjection, RequestLog, Deliveries, Authentication, ShopApi):
    """A loopback WooCommerce shop on 127.0.0.1 for tests, benchmarks and the demo.

    Usage::

        with WooSandbox() as shop:
            connection.store_url = shop.store_url      # http://127.0.0.1:<port>
            ...
            shop.simulate_sale("SKU-1")                 # an order, stock down, order.created delivered
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keys: Mapping[str, tuple[str, str]] | None = None,
        tls: bool = False,
        strip_authorization: bool = False,
        seed: int = 0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        timeout_rate: float = 0.0,
        latency_ms: float = 0.0,
        timeout_delay: float = 2.0,
        retry_after: int = 1,
        webhook_retries: int = 0,
        duplicate_rate: float = 0.0,
        webhook_timeout: float = 5.0,
        deliver_on_api_writes: bool = False,
        index: RouteIndex | None = None,
        clock: Callable[[], datetime] | None = None,
        state_file: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.strip_authorization = strip_authorization
        self.webhook_timeout = webhook_timeout
        # WooCommerce also fires product.updated for changes made through the API; off by default so
        # tests count only the deliveries they cause, on for the demo.
        self.deliver_on_api_writes = deliver_on_api_writes
        self.index = index or route_index()
        self.keys: dict[str, ApiKey] = {
            key: ApiKey(secret, permissions)
            for key, (secret, permissions) in (keys or {DEFAULT_KEY: (DEFAULT_SECRET, "read_write")}).items()
        }
        self.store = WooStore(lambda: self.root_url, clock=clock)
        # The demo's shop keeps its products, orders and webhooks across restarts.
        self.state_file = state_file
        if state_file:
            self.store.load(state_file)
        self._faults = FaultPlan(
            Faults,
            seed=seed,
            error_rate=error_rate,
            rate_limit_rate=rate_limit_rate,
            timeout_rate=timeout_rate,
            latency_ms=latency_ms,
            timeout_delay=timeout_delay,
            retry_after=retry_after,
            webhook_retries=webhook_retries,
            duplicate_rate=duplicate_rate,
        )
        self._log: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self.deliveries: list[Delivery] = []
        self._delivery_lock = threading.Lock()
        self._async: list[threading.Thread] = []
        self.grants: list[dict] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def store_url(self) -> str:
        """The address to put in a WooCommerceConnection's store_url."""
        return self.root_url

    @property
    def site_url(self) -> str:
        """The address the shop believes it has (https when it sits behind a TLS proxy)."""
        return f"https://{self.host}:{self.port}" if self.tls else self.root_url

    def start(self) -> str:
        if self._server is not None:
            return self.store_url
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="woo-sandbox", daemon=True
        )
        self._thread.start()
        return self.store_url

    def stop(self) -> None:
        self.wait_for_deliveries()
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

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        if ready is not None:
            ready(self.store_url)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None
            if self.state_file:
                # A request answered just before the stop may not have reached its own save yet.
                self.store.save(self.state_file)

    def __enter__(self) -> WooSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the shop, for tests ------------------------------------------------------------

    def product(self, ref: str | int) -> dict | None:
        found = self.store.find_product(ref)
        return None if found is None else self.store.render_product(found)

    def products(self, sku: str | None = None) -> list[dict]:
        with self.store.lock:
            found = sorted(self.store.products.values(), key=lambda p: -p["id"])
            return [self.store.render_product(p) for p in found if sku is None or p["sku"] == sku]

    def orders(self) -> list[dict]:
        with self.store.lock:
            return [self.store.render_order(o) for o in self.store.orders.values()]

    def order(self, order_id: int | str) -> dict | None:
        status, body = self.store.get_order(int(order_id))
        return body if status == 200 else None

    def add_external_product(
        self,
        sku: str = "",
        *,
        name: str = "Made on the shop",
        price: str | Decimal = "1000.00",
        quantity: int | None = 1,
        status: str = "publish",
        **fields: Any,
    ) -> dict:
        """A product made in the shop's WordPress admin, not through the back office."""
        body = {"name": name, "sku": sku, "regular_price": str(price), "status": status, **fields}
        if quantity is not None:
            body.update({"manage_stock": True, "stock_quantity": quantity})
        code, answer = self.store.create_product(body)
        if code != 201:
            raise SandboxError(f"The shop refused the product: {answer}")
        return answer

    def edit_product(self, ref: str | int, **changes: Any) -> dict:
        """The seller edits a product in the WordPress admin (product.updated is delivered)."""
        found = self.store.find_product(ref)
        if found is None:
            raise SandboxError(f"No product {ref!r}.")
        code, answer = self.store.update_product(found["id"], changes)
        if code != 200:
            raise SandboxError(f"The shop refused the change: {answer}")
        self.deliver("product.updated", answer)
        return answer

    def delete_product(self, ref: str | int) -> None:
        found = self.store.find_product(ref)
        if found is None:
            raise SandboxError(f"No product {ref!r}.")
        self.store.delete_product(found["id"], force=True)
        self.deliver("product.deleted", {"id": found["id"]})

    def refuse_sku(self, sku: str, message: str = "A required field is missing (a plugin's rule).") -> None:
        """Make the shop refuse this SKU on create/update (a per-object error inside a batch)."""
        self.store.refused_skus[sku] = message

    def simulate_sale(
        self,
        sku_or_product_id: str | int,
        quantity: int = 1,
        *,
        status: str = "processing",
        placed_at: datetime | None = None,
        deliver_webhook: bool = True,
        buyer: Mapping[str, str] | None = None,
    ) -> dict:
        """A buyer checks out on the website: an order, stock down (a one-off product sells out), and
        order.created delivered to every subscribed URL before this returns. Returns the order."""
        order = self.store.sell(sku_or_product_id, quantity=quantity, status=status, placed_at=placed_at, buyer=buyer)
        if deliver_webhook:
            self.deliver("order.created", order)
        return order

    def update_order(self, order_id: int | str, status: str, *, deliver_webhook: bool = True) -> dict:
        order = self.store.set_order_status(int(order_id), status)
        if deliver_webhook:
            self.deliver("order.updated", order)
        return order

    def webhooks(self) -> list[dict]:
        with self.store.lock:
            return [dict(h) for h in self.store.webhooks.values()]

    def set_webhook_status(self, webhook_id: int, status: str) -> None:
        with self.store.lock:
            self.store.webhooks[webhook_id]["status"] = status

    # --- faults -------------------------------------------------------------------------

    # --- request log --------------------------------------------------------------------

    def refused_by_index(self) -> list[RecordedRequest]:
        """Requests the route index did not allow (tests assert this is empty)."""
        return [r for r in self.requests() if r.problem]

    # --- HTTP ---------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        try:
            self._handle_request(handler)
        finally:
            if self.state_file and handler.command != "GET":
                self.store.save(self.state_file)

    def _handle_request(self, handler: _Handler) -> None:
        method = handler.command
        split = urlsplit(handler.path)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(query_pairs)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""

        if split.path.startswith("/_sandbox/"):
            status, body = self._control(method, split.path[len("/_sandbox") :], raw)
            self._send(handler, status, body)
            return
        if split.path == "/wc-auth/v1/authorize" and method == "GET":
            status, headers, page = self.authorize(query)
            self._send_raw(handler, status, page, headers)
            return
        if not split.path.startswith(API + "/"):
            self._send(handler, 404, {"code": "rest_no_route", "message": "Not a REST API address (/wp-json/...)."})
            return
        wp_path = split.path[len(API) :].rstrip("/") or "/"
        short = wp_path[len("/wc/v3") :] if wp_path.startswith("/wc/v3") else wp_path

        body: Any = None
        if raw:
            content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type == "application/json":
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._answer(
                        handler,
                        method,
                        short,
                        query,
                        raw.decode(errors="replace"),
                        "none",
                        error(400, "rest_invalid_json", "Invalid JSON body passed."),
                        problem="not JSON",
                    )
                    return
            else:
                body = dict(parse_qsl(raw.decode(errors="replace")))

        auth, refusal = self._authenticate(handler, method, split.path, query_pairs)
        if refusal is not None:
            self._answer(handler, method, short, query, body, auth, refusal)
            return

        matched = self.index.match(method, wp_path)
        if isinstance(matched, Problem):
            self._answer(
                handler, method, short, query, body, auth, (matched.status, matched.body()), problem=matched.message
            )
            return
        route, path_args, args = matched
        problem = self.index.check(method, route, args, query, body)
        if problem is not None:
            self._answer(
                handler, method, short, query, body, auth, (problem.status, problem.body()), problem=problem.message
            )
            return
        if route.key != "/wc/v3" and auth == "none":
            verb = {"GET": "cannot_view", "POST": "cannot_create", "DELETE": "cannot_delete"}.get(method, "cannot_edit")
            self._answer(
                handler,
                method,
                short,
                query,
                body,
                auth,
                error(
                    401,
                    f"woocommerce_rest_{verb}",
                    "Sorry, you cannot list resources."
                    if method == "GET"
                    else "Sorry, you are not allowed to do that.",
                ),
            )
            return

        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        fault = self._pick_fault(method, short)
        if fault == "error":
            self._answer(
                handler,
                method,
                short,
                query,
                body,
                auth,
                error(500, "internal_server_error", "There has been a critical error on this website."),
                fault=fault,
            )
            return
        if fault == "rate_limit":
            self._answer(
                handler,
                method,
                short,
                query,
                body,
                auth,
                error(429, "too_many_requests", "Too many requests."),
                fault=fault,
                headers={"Retry-After": str(self.faults.retry_after)},
            )
            return
        typed = {name: coerce_query(value, args.get(name) or {}) for name, value in query.items()}
        for name in ("dates_are_gmt",):
            if name in typed:
                typed[name] = typed[name] in (True, "true", "1")
        status, out, headers = self._route(method, route.key, path_args, typed, body)
        if fault == "timeout":
            self._record(method, short, query, body, status, auth, fault)
            time.sleep(self.faults.timeout_delay)
            self._send(handler, status, out, headers)
            return
        self._answer(handler, method, short, query, body, auth, (status, out), headers=headers)

    def _answer(self, handler, method, short, query, body, auth, answer, *, fault="", problem="", headers=None) -> None:
        status, out = answer
        self._record(method, short, query, body, status, auth, fault, problem)
        self._send(handler, status, out, headers)

    def _record(self, method, path, query, body, status, auth, fault="", problem="") -> None:
        shown = {k: ("***" if k in ("consumer_secret", "oauth_signature") else v) for k, v in query.items()}
        with self._log_lock:
            self._log.append(RecordedRequest(method, path, shown, body, status, auth, fault, problem))

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, extra_headers: Mapping[str, str] | None = None) -> None:
        data = b"" if body is None else php_json(body)
        WooSandbox._send_raw(
            handler, status, data, {"Content-Type": "application/json; charset=UTF-8", **(extra_headers or {})}
        )

    @staticmethod
    def _send_raw(handler: _Handler, status: int, data: bytes, headers: Mapping[str, str]) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    # --- control endpoints (/_sandbox/...) ----------------------------------------------

    def state(self) -> dict:
        return {
            "store_url": self.store_url,
            "products": self.products(),
            "orders": self.orders(),
            "webhooks": [{k: v for k, v in h.items() if not k.startswith("_")} for h in self.webhooks()],
            "deliveries": [
                {"webhook_id": d.webhook_id, "topic": d.topic, "status": d.status, "error": d.error}
                for d in self.deliveries
            ],
            "calls": {"total": self.calls(), "reads": self.reads, "writes": self.writes},
            "refused_by_index": [f"{r.method} {r.path}: {r.problem}" for r in self.refused_by_index()],
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
                ref = data.get("product_id") or data.get("sku")
                if not ref:
                    return 400, {"message": "Send sku or product_id."}
                return 201, self.simulate_sale(
                    ref,
                    quantity=int(data.get("quantity") or 1),
                    status=data.get("status") or "processing",
                    deliver_webhook=bool(data.get("deliver_webhook", True)),
                )
            if method == "POST" and path.startswith("/orders/"):
                return 200, self.update_order(int(path.rsplit("/", 1)[-1]), data.get("status") or "")
            if method == "POST" and path == "/products":
                return 201, self.add_external_product(**data)
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
            if method == "POST" and path == "/log/reset":
                self.reset_log()
                return 200, {}
        except SandboxError as problem:
            return 409, {"message": str(problem)}
        except (TypeError, ValueError, KeyError) as problem:
            return 400, {"message": f"Bad request: {problem}"}
        return 404, {"message": f"No control endpoint {method} /_sandbox{path}."}
