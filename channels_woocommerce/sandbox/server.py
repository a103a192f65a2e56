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

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from .routes import Problem, RouteIndex, coerce_query, route_index
from .store import SandboxError, WooStore, error

logger = logging.getLogger(__name__)

DEFAULT_KEY = "ck_sandbox0000000000000000000000000000000"
DEFAULT_SECRET = "cs_sandbox0000000000000000000000000000000"
FAULT_KINDS = ("error", "rate_limit", "timeout")
MAX_FAILURES = 5  # woocommerce_max_webhook_delivery_failures
NONCE_WINDOW = 15 * 60
API = "/wp-json"


def php_json(payload: Any) -> bytes:
    """JSON as WordPress's wp_json_encode writes it: compact, non-ASCII escaped, slashes escaped."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the sandbox received it (secrets never kept)."""

    method: str
    path: str  # under /wp-json/wc/v3, e.g. "/products/101"
    query: dict[str, str]
    body: Any
    status: int
    auth: str  # basic, query, oauth, none
    fault: str = ""
    problem: str = ""  # why the route index refused it

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


@dataclass(frozen=True)
class Delivery:
    """One POST the shop made to a delivery URL: a ping or a signed delivery."""

    webhook_id: int
    url: str
    topic: str
    delivery_id: str
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status <= 302


@dataclass
class Faults:
    """Random faults from a seeded generator, so a run repeats exactly.

    error: 500 with a WordPress error body, nothing applied. rate_limit: 429, nothing applied.
    timeout: applied, the answer held back `timeout_delay` s. latency_ms: on every API request.
    webhook_retries: a failed delivery is sent again (new delivery id) up to this many times.
    duplicate_rate: share of deliveries sent twice, byte for byte (same delivery id).
    """

    error_rate: float = 0.0
    rate_limit_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_delay: float = 2.0
    retry_after: int = 1
    webhook_retries: int = 0
    duplicate_rate: float = 0.0
    seed: int = 0


@dataclass
class _ScriptedFault:
    kind: str
    method: str | None
    path_prefix: str | None
    remaining: int

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


@dataclass
class ApiKey:
    secret: str
    permissions: str = "read_write"  # read, write, read_write
    user_id: int = 1
    nonces: set[str] = field(default_factory=set)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    sandbox: WooSandbox

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request, client_address) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        with self.sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # a client that gave up (the timeout fault does this on purpose)
        logger.exception("WooCommerce sandbox failed on a request from %s", client_address)


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


class WooSandbox:
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
        self.faults = Faults()
        self._fault_lock = threading.Lock()
        self._scripted: list[_ScriptedFault] = []
        self._rng = random.Random(seed)
        self.set_faults(
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

    # --- webhooks -----------------------------------------------------------------------

    def subscribe(self, url: str, topic: str, secret: str) -> dict:
        """Create a webhook as the shop's admin would (the ping goes out first)."""
        code, hook = self.store.create_webhook({"topic": topic, "delivery_url": url, "secret": secret})
        if code != 201:
            raise SandboxError(f"Webhook refused: {hook}")
        self._ping(hook["id"])
        return hook

    def _ping(self, webhook_id: int) -> Delivery:
        with self.store.lock:
            hook = self.store.webhooks[webhook_id]
        body = f"webhook_id={webhook_id}".encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": self._user_agent()}
        return self._post(hook, "ping", "", body, headers, count=False)

    def deliver(self, topic: str, payload: Mapping[str, Any]) -> list[Delivery]:
        """POST the resource to every active webhook of this topic, signed, as WooCommerce does."""
        done = []
        for hook in self.store.webhooks_for(topic):
            body = php_json(payload)
            for attempt in range(1 + self.faults.webhook_retries):
                delivery_id = secrets.token_hex(16)
                headers = {
                    "Content-Type": "application/json",
                    "User-Agent": self._user_agent(),
                    "X-WC-Webhook-Source": self.site_url + "/",
                    "X-WC-Webhook-Topic": topic,
                    "X-WC-Webhook-Resource": topic.split(".")[0],
                    "X-WC-Webhook-Event": topic.split(".")[1],
                    "X-WC-Webhook-Signature": sign(hook["_secret"], body),
                    "X-WC-Webhook-ID": str(hook["id"]),
                    "X-WC-Webhook-Delivery-ID": delivery_id,
                }
                delivery = self._post(hook, topic, delivery_id, body, headers)
                done.append(delivery)
                with self._fault_lock:
                    twice = self.faults.duplicate_rate and self._rng.random() < self.faults.duplicate_rate
                if twice:
                    done.append(self._post(hook, topic, delivery_id, body, headers))
                if delivery.delivered or hook["status"] != "active" or attempt == self.faults.webhook_retries:
                    break
        return done

    def redeliver(self, index: int = -1) -> Delivery:
        """Send an earlier delivery again, byte for byte, same delivery id (a replay)."""
        earlier = self.deliveries[index]
        with self.store.lock:
            hook = self.store.webhooks[earlier.webhook_id]
        return self._post(hook, earlier.topic, earlier.delivery_id, earlier.body, earlier.headers)

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._async):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._async = [t for t in self._async if t.is_alive()]

    def _deliver_later(self, topic: str, payload: Mapping[str, Any]) -> None:
        if not self.deliver_on_api_writes or not self.store.webhooks_for(topic):
            return
        thread = threading.Thread(target=self.deliver, args=(topic, dict(payload)), daemon=True)
        self._async.append(thread)
        thread.start()

    def _post(
        self, hook: dict, topic: str, delivery_id: str, body: bytes, headers: dict[str, str], *, count: bool = True
    ) -> Delivery:
        try:
            response = requests.post(
                hook["delivery_url"], data=body, headers=headers, timeout=self.webhook_timeout, allow_redirects=False
            )
            status, failure = response.status_code, ""
        except requests.RequestException as problem:
            status, failure = None, problem.__class__.__name__
        delivery = Delivery(hook["id"], hook["delivery_url"], topic, delivery_id, body, dict(headers), status, failure)
        with self.store.lock:
            if delivery.delivered:
                hook["_failures"] = 0
            elif count or topic == "ping":
                hook["_failures"] += 1
                if hook["_failures"] > MAX_FAILURES:
                    hook["status"] = "disabled"
        with self._delivery_lock:
            self.deliveries.append(delivery)
        return delivery

    @staticmethod
    def _user_agent() -> str:
        return "WooCommerce/9.4.2 Hookshot (WordPress/6.7.1)"

    # --- the grant flow (/wc-auth/v1/authorize) -----------------------------------------

    def authorize(self, query: Mapping[str, str], *, approve: bool = True) -> tuple[int, dict[str, str], bytes]:
        """The merchant opens the grant page and approves: a key is made, POSTed as JSON to callback_url,
        and the browser is sent to return_url. Returns (status, headers, body) of the page."""
        required = ("app_name", "scope", "user_id", "return_url", "callback_url")
        missing = [name for name in required if not query.get(name)]
        if missing:
            return 400, {}, f"Missing parameter(s): {', '.join(missing)}".encode()
        if query["scope"] not in ("read", "write", "read_write"):
            return 400, {}, b"Invalid scope."
        if not query["callback_url"].startswith("https://") and not query["callback_url"].startswith(
            ("http://127.0.0.1", "http://localhost")
        ):
            return 400, {}, b"The callback_url needs to be over SSL."
        return_url = query["return_url"]
        if not approve:
            return 302, {"Location": _with_query(return_url, success="0", user_id=query["user_id"])}, b""
        key, secret = "ck_" + secrets.token_hex(20), "cs_" + secrets.token_hex(20)
        key_id = len(self.keys) + 1
        grant = {
            "key_id": key_id,
            "user_id": query["user_id"],
            "consumer_key": key,
            "consumer_secret": secret,
            "key_permissions": query["scope"],
        }
        try:
            answer = requests.post(
                query["callback_url"], data=json.dumps(grant), headers={"Content-Type": "application/json"}, timeout=10
            )
            accepted = 200 <= answer.status_code < 300
        except requests.RequestException:
            accepted = False
        self.grants.append({**grant, "consumer_secret": "***", "accepted": accepted})
        if not accepted:  # WooCommerce revokes the key and tells the merchant
            return 401, {}, b"An error occurred in the request and at the time were unable to send the consumer data."
        self.keys[key] = ApiKey(secret, query["scope"])
        return 302, {"Location": _with_query(return_url, success="1", user_id=query["user_id"])}, b""

    # --- faults -------------------------------------------------------------------------

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
        """Script a fault for the next matching request(s); path_prefix is under /wp-json/wc/v3."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"Fault kinds are {FAULT_KINDS}")
        with self._fault_lock:
            self._scripted.append(_ScriptedFault(kind, method, path_prefix, count))

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

    # --- request log --------------------------------------------------------------------

    def requests(self, method: str | None = None, path_prefix: str | None = None) -> list[RecordedRequest]:
        with self._log_lock:
            return [
                r
                for r in self._log
                if (method is None or r.method == method) and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def calls(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return len(self.requests(method, path_prefix))

    @property
    def reads(self) -> int:
        return sum(1 for r in self.requests() if not r.is_write)

    @property
    def writes(self) -> int:
        return sum(1 for r in self.requests() if r.is_write)

    def refused_by_index(self) -> list[RecordedRequest]:
        """Requests the route index did not allow (tests assert this is empty)."""
        return [r for r in self.requests() if r.problem]

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()

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

    def _authenticate(
        self, handler: _Handler, method: str, path: str, query_pairs: list[tuple[str, str]]
    ) -> tuple[str, tuple[int, dict] | None]:
        """("basic" | "query" | "oauth" | "none", a refusal or None), as WC_REST_Authentication decides."""
        query = dict(query_pairs)
        header = "" if self.strip_authorization else (handler.headers.get("Authorization") or "")
        if self.tls:
            key = secret = ""
            how = "none"
            if header.startswith("Basic "):
                try:
                    key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                    how = "basic"
                except (ValueError, UnicodeDecodeError):
                    return "basic", error(401, "woocommerce_rest_authentication_error", "Invalid Basic header.")
            elif query.get("consumer_key"):
                key, secret, how = query["consumer_key"], query.get("consumer_secret", ""), "query"
            if how == "none":
                return "none", None
            api_key = self.keys.get(key)
            if api_key is None:
                return how, error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
            if not hmac.compare_digest(api_key.secret, secret):
                return how, error(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
            return how, self._permission(api_key, method)
        if not query.get("oauth_consumer_key"):
            return "none", None
        for name in ("oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method"):
            if not query.get(name):
                return "oauth", error(
                    401, "woocommerce_rest_authentication_missing_parameter", f"Missing OAuth parameter {name}"
                )
        api_key = self.keys.get(query["oauth_consumer_key"])
        if api_key is None:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
        if query["oauth_signature_method"] not in ("HMAC-SHA1", "HMAC-SHA256"):
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid signature - signature method is invalid."
            )
        if "oauth_version" in query:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "oauth_version must be omitted.")
        try:
            stamp = int(query["oauth_timestamp"])
        except ValueError:
            stamp = 0
        if abs(time.time() - stamp) > NONCE_WINDOW:
            return "oauth", error(401, "woocommerce_rest_authentication_error", "Invalid timestamp.")
        expected = self._oauth_expected(method, path, query_pairs, api_key.secret)
        given = query["oauth_signature"].replace(" ", "+")
        if not hmac.compare_digest(expected, given):
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
            )
        nonce_key = f"{stamp}:{query['oauth_nonce']}"
        if nonce_key in api_key.nonces:
            return "oauth", error(
                401, "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used."
            )
        api_key.nonces.add(nonce_key)
        return "oauth", self._permission(api_key, method)

    def _oauth_expected(self, method: str, path: str, query_pairs: list[tuple[str, str]], secret: str) -> str:
        """WC_REST_Authentication::check_oauth_signature, step by step (written from the plugin, not shared
        with the client, so one misreading cannot hide on both sides)."""

        def rfc3986(value: str) -> str:  # wc_rest_urlencode_rfc3986
            return quote(value, safe="-_.~")

        params = {k: v for k, v in query_pairs if k != "oauth_signature"}  # $_GET, already decoded
        params = {rfc3986(k): rfc3986(v) for k, v in params.items()}  # normalize_parameters
        joined = [rfc3986(f"{key}={params[key]}") for key in sorted(params)]  # uksort strcmp, join_with_equals_sign
        base_request_uri = rfc3986(self.site_url + path)
        string_to_sign = f"{method.upper()}&{base_request_uri}&{'%26'.join(joined)}"
        algorithm = params["oauth_signature_method"].replace("HMAC-", "").lower()
        digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), getattr(hashlib, algorithm)).digest()
        return base64.b64encode(digest).decode()

    @staticmethod
    def _permission(api_key: ApiKey, method: str) -> tuple[int, dict] | None:
        if api_key.permissions == "read" and method not in ("GET", "HEAD"):
            return error(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."
            )
        if api_key.permissions == "write" and method in ("GET", "HEAD"):
            return error(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have read permissions."
            )
        return None

    def _route(
        self, method: str, key: str, path_args: dict[str, str], query: dict[str, Any], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        store = self.store
        body = body if isinstance(body, dict) else {}
        item_id = int(path_args["id"]) if path_args.get("id", "").isdigit() else None
        if key == "/wc/v3":
            return 200, self.index.document, {}
        if key == "/wc/v3/products":
            if method == "GET":
                return self._page(store.list_products(query), query, "/wc/v3/products")
            status, out = store.create_product(body)
            if status == 201:
                self._deliver_later("product.created", out)
            return status, out, {}
        if key == r"/wc/v3/products/(?P<id>[\d]+)":
            if method == "GET":
                return (*store.get_product(item_id), {})
            if method == "DELETE":
                status, out = store.delete_product(item_id, force=query.get("force") is True)
                if status == 200:
                    self._deliver_later("product.deleted", {"id": item_id})
                return status, out, {}
            status, out = store.update_product(item_id, body)
            if status == 200:
                self._deliver_later("product.updated", out)
            return status, out, {}
        if key == "/wc/v3/products/batch":
            status, out = store.batch(body)
            for product in out.get("update", []) if status == 200 else []:
                if "error" not in product:
                    self._deliver_later("product.updated", product)
            return status, out, {}
        if key == "/wc/v3/products/categories" and method == "GET":
            cats = [
                {"id": i, "name": n, "slug": n.lower().replace(" ", "-"), "parent": 0, "count": 0}
                for i, n in sorted(store.categories.items())
            ]
            return self._page(cats, query, "/wc/v3/products/categories")
        if key == "/wc/v3/orders" and method == "GET":
            return self._page(store.list_orders(query), query, "/wc/v3/orders")
        if key == r"/wc/v3/orders/(?P<id>[\d]+)":
            if method == "GET":
                return (*store.get_order(item_id), {})
            if method in ("PUT", "POST", "PATCH"):
                status, out = store.update_order(item_id, body)
                if status == 200:
                    self._deliver_later("order.updated", out)
                return status, out, {}
        if key == r"/wc/v3/orders/(?P<order_id>[\d]+)/notes":
            if method == "GET":
                with store.lock:
                    order = store.orders.get(int(path_args["order_id"]))
                    if order is None:
                        return (*error(404, "woocommerce_rest_order_invalid_id", "Invalid order ID."), {})
                    return 200, [dict(note) for note in reversed(order.get("_notes", []))], {}
            return (*store.add_order_note(int(path_args["order_id"]), body), {})
        if key == "/wc/v3/webhooks":
            if method == "GET":
                with store.lock:
                    hooks = [store.render_webhook(h) for h in store.webhooks.values()]
                status_filter = query.get("status", "all")
                if status_filter != "all":
                    hooks = [h for h in hooks if h["status"] == status_filter]
                return self._page(hooks, query, "/wc/v3/webhooks")
            status, out = store.create_webhook(body)
            if status == 201:
                self._ping(out["id"])  # the ping goes out before the answer, as WooCommerce does on creation
            return status, out, {}
        if key == r"/wc/v3/webhooks/(?P<id>[\d]+)":
            if method == "GET":
                with store.lock:
                    hook = store.webhooks.get(item_id)
                    if hook is None:
                        return (*error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID."), {})
                    return 200, store.render_webhook(hook), {}
            if method in ("PUT", "POST", "PATCH"):
                return (*store.update_webhook(item_id, body), {})
        if key == r"/wc/v3/settings/(?P<group_id>[\w-]+)/(?P<id>[\w-]+)" and method == "GET":
            if path_args.get("group_id") == "general" and path_args.get("id") == "woocommerce_currency":
                return (
                    200,
                    {
                        "id": "woocommerce_currency",
                        "label": "Currency",
                        "type": "select",
                        "default": "USD",
                        "value": store.currency,
                        "group_id": "general",
                    },
                    {},
                )
            return (*error(404, "rest_setting_setting_invalid", "Invalid setting."), {})
        return (
            *error(
                501,
                "sandbox_not_implemented",
                f"The loopback shop does not implement {method} {key} (the route index allows it).",
            ),
            {},
        )

    def _page(self, items: list, query: Mapping[str, Any], route: str) -> tuple[int, Any, dict[str, str]]:
        per_page = query.get("per_page", 10)
        page = query.get("page", 1)
        if not isinstance(per_page, int) or not 1 <= per_page <= 100:
            return (
                *error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): per_page",
                    params={"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"},
                ),
                {},
            )
        if not isinstance(page, int) or page < 1:
            return (
                *error(
                    400,
                    "rest_invalid_param",
                    "Invalid parameter(s): page",
                    params={"page": "page must be greater than or equal to 1"},
                ),
                {},
            )
        total = len(items)
        pages = max(1, -(-total // per_page)) if total else 0
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{self.site_url}{API}{route}"
        if page < pages:
            links.append(f'<{base}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
        if page > 1:
            links.append(f'<{base}?{urlencode({"page": page - 1, "per_page": per_page})}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return 200, chunk, headers

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


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)
