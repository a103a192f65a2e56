"""The loopback Shopify's HTTP side: the GraphQL endpoint, auth, cost and throttling, faults, webhooks.

Every document is parsed and validated against the real 2025-01 Admin schema before it is
run (an unknown field, a wrong argument type or a 2026-only input is answered with the
errors Shopify would give, and nothing is applied), priced, charged to a leaky bucket
(THROTTLED when the bucket cannot pay), executed against the store, and answered with a
real-shaped `extensions.cost`.

Tests drive it in-process (`ShopifySandbox` methods); `manage.py shopify_sandbox` serves it
standalone, driven through /_sandbox/ (sales, state, faults).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import graphql
import requests

from inventory.loopback import LoopbackHTTPServer

from ..schema import admin_schema
from ..webhooks import sign
from .cost import MAX_QUERY_COST, LeakyBucket, document_cost
from .store import SHOP_DOMAIN, SandboxError, ShopifyStore, _iso, _num

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "shpat_sandbox_token_0000"
DEFAULT_SECRET = "sandbox-app-client-secret"
API_VERSION = "2025-01"
FAULT_KINDS = ("error", "timeout", "throttle")
TOPIC_ENUMS = {
    "orders/create": "ORDERS_CREATE",
    "orders/paid": "ORDERS_PAID",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/updated": "ORDERS_UPDATED",
    "products/update": "PRODUCTS_UPDATE",
    "inventory_levels/update": "INVENTORY_LEVELS_UPDATE",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One GraphQL request as the sandbox received it (the token itself is never kept)."""

    operation: str
    query: str
    variables: dict
    status: int
    authorized: bool
    is_mutation: bool
    requested_cost: float = 0.0
    actual_cost: float = 0.0
    available_after: float = 0.0
    throttled: bool = False
    errors: tuple[str, ...] = ()
    fault: str = ""


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the sandbox made."""

    url: str
    topic: str
    event_id: str
    body: bytes
    headers: dict
    status: int | None
    error: str = ""


@dataclass
class Faults:
    """Random faults from a seeded generator, so a run can be repeated exactly.

    error: HTTP 500, nothing applied. throttle: THROTTLED, nothing applied (as if the bucket
    were empty). timeout: the request IS applied, then the answer is held back
    `timeout_delay` seconds (past the client's timeout). latency_ms: added to every request.
    """

    error_rate: float = 0.0
    throttle_rate: float = 0.0
    timeout_rate: float = 0.0
    latency_ms: float = 0.0
    timeout_delay: float = 2.0
    seed: int = 0


@dataclass
class _ScriptedFault:
    kind: str  # error / timeout / throttle / an HTTP status such as "401"
    operation: str | None
    remaining: int


class _Server(LoopbackHTTPServer):
    label = "Shopify sandbox"
    sandbox: ShopifySandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ShopifySandbox/1.0"
    disable_nagle_algorithm = True
    server: _Server

    def do_POST(self) -> None:
        self.server.sandbox._handle(self)

    do_GET = do_PUT = do_DELETE = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        return


class ShopifySandbox:
    """A loopback Shopify store on 127.0.0.1 for tests, benchmarks and the demo.

    Usage::

        with ShopifySandbox(bucket_size=50, restore_rate=10) as shop:
            connection.api_url = shop.endpoint   # http://127.0.0.1:<port>/admin/api/2025-01/graphql.json
            ...
            shop.simulate_sale("SKU-1")          # order, stock down, signed orders/create + orders/paid
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        secret: str = DEFAULT_SECRET,
        shop_domain: str = SHOP_DOMAIN,
        webhook_urls: Iterable[str] = (),
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        seed: int = 0,
        error_rate: float = 0.0,
        throttle_rate: float = 0.0,
        timeout_rate: float = 0.0,
        latency_ms: float = 0.0,
        timeout_delay: float = 2.0,
        webhook_timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        bucket_clock: Callable[[], float] = time.monotonic,
        state_file: str | None = None,
    ) -> None:
        self.state_file = state_file
        self.host, self.port = host, port
        self.token, self.secret = token, secret
        self.webhook_urls = list(webhook_urls)
        self.webhook_timeout = webhook_timeout
        self.store = ShopifyStore(shop_domain=shop_domain, clock=clock)
        self.schema = admin_schema(API_VERSION)
        self.bucket = LeakyBucket(bucket_size, restore_rate, clock=bucket_clock)
        self.faults = Faults()
        self._fault_lock = threading.Lock()
        self._scripted: list[_ScriptedFault] = []
        self._rng = random.Random(seed)
        self.set_faults(
            seed=seed,
            error_rate=error_rate,
            throttle_rate=throttle_rate,
            timeout_rate=timeout_rate,
            latency_ms=latency_ms,
            timeout_delay=timeout_delay,
        )
        self._log: list[RecordedRequest] = []
        self._deliveries: list[Delivery] = []
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._webhook_session = requests.Session()
        self._checked_cache: dict[str, tuple] = {}
        self._checked_lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> ShopifySandbox:
        if self.state_file:
            self.store.load(self.state_file)
        self._server = _Server((self.host, self.port), _Handler)
        self._server.sandbox = self
        self.port = self._server.server_address[1]
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="shopify-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.close_open_connections()
            self._server.server_close()
            self._server = None
        self._webhook_session.close()

    def __enter__(self) -> ShopifySandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        self.start()
        if ready:
            ready(self.endpoint)
        try:
            while self._thread and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()
            self._keep()  # a request answered just before the stop may not have reached its own save yet

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def endpoint(self) -> str:
        return f"{self.root_url}/admin/api/{API_VERSION}/graphql.json"

    # --- faults ---------------------------------------------------------------------

    def set_faults(self, **changes: Any) -> None:
        with self._fault_lock:
            for name, value in changes.items():
                if not hasattr(self.faults, name):
                    raise TypeError(f"No fault setting {name!r}")
                setattr(self.faults, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])

    def fail_next(self, kind: str, *, operation: str | None = None, times: int = 1) -> None:
        """The next `times` requests (of one operation, or any) fail with `kind`: error, timeout,
        throttle, or an HTTP status such as "401", "402", "403", "404", "423", "503"."""
        with self._fault_lock:
            self._scripted.append(_ScriptedFault(kind, operation, times))

    def _draw_fault(self, operation: str) -> str:
        with self._fault_lock:
            for scripted in self._scripted:
                if scripted.remaining > 0 and scripted.operation in (None, operation):
                    scripted.remaining -= 1
                    return scripted.kind
            self._scripted = [s for s in self._scripted if s.remaining > 0]
            roll = self._rng.random()
            if roll < self.faults.error_rate:
                return "error"
            roll -= self.faults.error_rate
            if roll < self.faults.throttle_rate:
                return "throttle"
            roll -= self.faults.throttle_rate
            if roll < self.faults.timeout_rate:
                return "timeout"
            return ""

    # --- the API --------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        path = urlsplit(handler.path).path
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if path.startswith("/_sandbox/"):
            return self._control(handler, path, raw)
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        parts = path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["admin", "api"] or parts[3] != "graphql.json" or handler.command != "POST":
            return self._send(handler, 404, {"errors": "Not Found"})
        if parts[2] != API_VERSION:
            return self._send(handler, 404, {"errors": f"API version {parts[2]} is not served by this sandbox"})
        authorized = handler.headers.get("X-Shopify-Access-Token", "") == self.token
        try:
            body = json.loads(raw or b"{}")
            query, variables = str(body.get("query") or ""), body.get("variables") or {}
            operation_name = body.get("operationName")
        except (ValueError, AttributeError):
            return self._send(handler, 400, {"errors": "Bad Request: the body is not JSON"})
        if not authorized:
            self._record(RecordedRequest(str(operation_name or ""), query, variables, 401, False, False))
            return self._send(
                handler, 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
            )
        status, answer, record, delay = self._answer(query, variables, operation_name)
        self._record(record)
        if record.is_mutation and "data" in answer:
            self._keep()
        if delay:
            time.sleep(delay)
        self._send(handler, status, answer)

    def _answer(self, query: str, variables: dict, operation_name: str | None):
        try:
            document, problems = self._checked(query)
        except graphql.GraphQLError as error:
            return self._errors(200, query, variables, operation_name or "", [error.message])
        operations = [d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode)]
        operation = next(
            (o for o in operations if o.name and o.name.value == operation_name), operations[0] if operations else None
        )
        name = operation.name.value if operation and operation.name else (operation_name or "")
        is_mutation = bool(operation and operation.operation.value == "mutation")
        if problems:
            return self._errors(200, query, variables, name, [p.message for p in problems], is_mutation=is_mutation)
        fault = self._draw_fault(name)
        if fault.isdigit():
            status = int(fault)
            text = {
                401: "[API] Invalid API key or access token",
                402: "Unavailable Shop",
                403: "Forbidden",
                404: "Not Found",
                423: "Locked",
                503: "Service Unavailable",
            }.get(status, "Error")
            return (
                status,
                {"errors": text},
                RecordedRequest(name, query, variables, status, True, is_mutation, fault=fault),
                0.0,
            )
        if fault == "error":
            return (
                500,
                {"errors": "Internal Server Error"},
                RecordedRequest(name, query, variables, 500, True, is_mutation, fault="error"),
                0.0,
            )
        try:
            requested = document_cost(self.schema, document, name, variables)
        except graphql.GraphQLError as error:
            return self._errors(200, query, variables, name, [error.message], is_mutation=is_mutation)
        if requested > MAX_QUERY_COST:
            message = (
                f"Query cost is {requested:.0f}, which exceeds the single query max cost limit ({MAX_QUERY_COST})."
            )
            answer = {
                "errors": [
                    {
                        "message": message,
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
                    }
                ]
            }
            return (
                200,
                answer,
                RecordedRequest(name, query, variables, 200, True, is_mutation, requested, errors=(message,)),
                0.0,
            )
        taken, available = (
            (False, self.bucket.status()["currentlyAvailable"])
            if fault == "throttle"
            else (self.bucket.take(requested))
        )
        if not taken:
            if fault == "throttle":
                self.bucket.throttled += 1
            cost = self._cost(requested, None)
            answer = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/rate-limits",
                        },
                    }
                ],
                "extensions": {"cost": cost},
            }
            return (
                200,
                answer,
                RecordedRequest(
                    name, query, variables, 200, True, is_mutation, requested, 0.0, available, True, fault=fault
                ),
                0.0,
            )
        with self.store.lock:
            result = graphql.execute(
                self.schema,
                document,
                root_value=self.store.root(),
                variable_values=variables,
                operation_name=name or None,
            )
        errors = [e.formatted for e in result.errors or ()]
        if result.data is None:
            self.bucket.refund(requested)  # variables Shopify refused: nothing ran
            return self._errors(
                200, query, variables, name, [e["message"] for e in errors], is_mutation=is_mutation, formatted=errors
            )
        actual = document_cost(self.schema, document, name, variables, data=result.data)
        after = self.bucket.refund(requested - actual)
        self.bucket.spent += actual
        answer: dict[str, Any] = {"data": result.data, "extensions": {"cost": self._cost(requested, actual)}}
        if errors:
            answer["errors"] = errors
        record = RecordedRequest(
            name,
            query,
            variables,
            200,
            True,
            is_mutation,
            requested,
            actual,
            after,
            errors=tuple(e["message"] for e in errors),
            fault=fault,
        )
        return 200, answer, record, (self.faults.timeout_delay if fault == "timeout" else 0.0)

    def _checked(self, query: str) -> tuple[graphql.DocumentNode, list[graphql.GraphQLError]]:
        """The document parsed and validated against the schema. A document's verdict never changes, so it
        is worked out once per text (validation is ~10 ms of a large schema; a sale takes several calls)."""
        with self._checked_lock:
            known = self._checked_cache.get(query)
        if known is None:
            document = graphql.parse(query)
            known = (document, graphql.validate(self.schema, document))
            with self._checked_lock:
                if len(self._checked_cache) > 512:
                    self._checked_cache.clear()
                self._checked_cache[query] = known
        return known

    def _errors(self, status, query, variables, name, messages, *, is_mutation=False, formatted=None):
        answer = {"errors": formatted or [{"message": m} for m in messages]}
        return (
            status,
            answer,
            RecordedRequest(name, query, variables, status, True, is_mutation, errors=tuple(messages)),
            0.0,
        )

    def _cost(self, requested: float, actual: float | None) -> dict:
        return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}

    def _send(self, handler: _Handler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        with contextlib.suppress(ConnectionError, OSError):
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)

    def _keep(self) -> None:
        if self.state_file:
            self.store.save(self.state_file)

    def _record(self, record: RecordedRequest) -> None:
        with self._log_lock:
            self._log.append(record)

    # --- control (for a standalone sandbox) ----------------------------------------------

    def _control(self, handler: _Handler, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._send(handler, 400, {"error": "not JSON"})
        try:
            if path == "/_sandbox/sales" and handler.command == "POST":
                order = self.simulate_sale(
                    str(body.get("sku") or ""),
                    quantity=int(body.get("quantity") or 1),
                    financial_status=str(body.get("financial_status") or "PAID"),
                    deliver_webhook=bool(body.get("deliver_webhook", True)),
                )
                return self._send(handler, 201, {"order": order})
            if path == "/_sandbox/faults" and handler.command == "POST":
                self.set_faults(**body)
                return self._send(handler, 200, {"faults": asdict(self.faults)})
            if path == "/_sandbox/state":
                with self.store.lock:
                    products = [self.store.product_view(p) for p in self.store.products.values()]
                    state = {
                        "products": [{k: v for k, v in p.items() if not callable(v)} for p in products],
                        "orders": len(self.store.orders),
                        "bucket": self.bucket.status(),
                        "requests": len(self.requests()),
                    }
                return self._send(handler, 200, state)
        except (SandboxError, TypeError) as error:
            return self._send(handler, 400, {"error": str(error)})
        self._send(handler, 404, {"error": "unknown control path"})

    # --- the store's side: buyers and the seller ----------------------------------------

    def simulate_sale(
        self,
        sku: str,
        *,
        quantity: int = 1,
        financial_status: str = "PAID",
        deliver_webhook: bool = True,
        duplicate: bool = False,
        out_of_order: bool = False,
        more_skus: tuple[str, ...] = (),
    ) -> dict:
        """A buyer checks out. The signed webhooks (orders/create, and orders/paid when paid) go out before
        this returns: twice each with one event id (`duplicate`), or paid before create (`out_of_order`)."""
        with self.store.lock:
            order = self.store.sell(sku, quantity=quantity, financial_status=financial_status, more_skus=more_skus)
            payload = self.order_payload(order)
        self._keep()
        topics = ["orders/create"] + (["orders/paid"] if financial_status == "PAID" else [])
        if out_of_order:
            topics.reverse()
        if deliver_webhook:
            for topic in topics:
                event_id = str(uuid.uuid4())
                for _ in range(2 if duplicate else 1):
                    self.deliver(topic, payload, event_id=event_id)
        return {
            "id": f"gid://shopify/Order/{order['number']}",
            "legacyResourceId": str(order["number"]),
            "name": order["name"],
        }

    def edit_listing(
        self,
        product_id: str,
        *,
        price: str | None = None,
        title: str | None = None,
        description_html: str | None = None,
        deliver_webhook: bool = True,
    ) -> dict:
        """The seller edits a product in Shopify's admin itself: its title, description or (first
        variant's) price; Shopify then sends products/update. Returns the product's view."""
        from decimal import Decimal

        with self.store.lock:
            number = _num(product_id, "Product")
            product = self.store.products.get(number)
            if product is None:
                raise SandboxError(f"No product {product_id}.", "NOT_FOUND")
            if price is not None:
                self.store.variants[product["variants"][0]]["price"] = Decimal(str(price))
            self.store.edit_product(product_id, title=title, descriptionHtml=description_html)
            payload = {"id": number, "admin_graphql_api_id": product_id, "title": product["title"]}
        self._keep()
        if deliver_webhook:
            self.deliver("products/update", payload)
        return self.product(product_id)

    def cancel_order(self, order_id: str, *, deliver_webhook: bool = True) -> None:
        number = _num(order_id, "Order") or int(order_id)
        with self.store.lock:
            payload = self.order_payload(self.store.cancel(number))
        self._keep()
        if deliver_webhook:
            self.deliver("orders/cancelled", payload)

    def order_payload(self, order: dict) -> dict:
        """The REST-shaped JSON Shopify delivers for an order."""
        return {
            "id": order["number"],
            "admin_graphql_api_id": f"gid://shopify/Order/{order['number']}",
            "name": order["name"],
            "email": order["email"],
            "created_at": _iso(order["createdAt"]),
            "updated_at": _iso(order["updatedAt"]),
            "cancelled_at": _iso(order["cancelledAt"]) if order.get("cancelledAt") else None,
            "financial_status": order["financialStatus"].lower(),
            "currency": order["currency"],
            "total_price": f"{order['subtotal'] + order['shipping']:.2f}",
            "customer": {"email": order["email"], "first_name": order["buyer"].split(" ")[0]},
            "shipping_address": dict(order["address"] or {}),
            "line_items": [
                {
                    "id": line["number"],
                    "sku": line["sku"],
                    "quantity": line["quantity"],
                    "price": f"{line['price']:.2f}",
                    "title": line["title"],
                    "product_id": line["product"],
                    "variant_id": line["variant"],
                }
                for line in order["lines"]
            ],
        }

    def deliver(
        self, topic: str, payload: dict, *, event_id: str | None = None, secret: str | None = None, tamper: bool = False
    ) -> list[Delivery]:
        """POST a signed delivery to every URL subscribed to the topic (and the configured webhook URLs)."""
        body = json.dumps(payload).encode()
        headers = self.webhook_headers(topic, body, event_id=event_id, secret=secret)
        if tamper:
            body = body.replace(b"}", b', "tampered": true}', 1)
        enum = TOPIC_ENUMS.get(topic)
        with self.store.lock:
            urls = [s["callbackUrl"] for s in self.store.subscriptions.values() if s["topic"] == enum]
        urls = list(dict.fromkeys([*urls, *self.webhook_urls]))
        made = []
        for url in urls:
            try:
                response = self._webhook_session.post(url, data=body, headers=headers, timeout=self.webhook_timeout)
                delivery = Delivery(url, topic, headers["X-Shopify-Event-Id"], body, headers, response.status_code)
            except requests.RequestException as error:
                delivery = Delivery(
                    url, topic, headers["X-Shopify-Event-Id"], body, headers, None, error.__class__.__name__
                )
            made.append(delivery)
            with self._log_lock:
                self._deliveries.append(delivery)
        return made

    def webhook_headers(
        self, topic: str, body: bytes, *, event_id: str | None = None, secret: str | None = None
    ) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(secret if secret is not None else self.secret, body),
            "X-Shopify-Shop-Domain": self.store.shop_domain,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": event_id or str(uuid.uuid4()),
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }

    def add_product(self, sku: str, **fields: Any) -> dict:
        with self.store.lock:
            product = self.store.add_product(sku, **fields)
        self._keep()
        return product

    def set_quantity(self, sku: str, quantity: int) -> None:
        with self.store.lock:
            self.store.set_quantity(sku, quantity)
        self._keep()

    # --- what the store holds and was sent --------------------------------------------

    def products(self, sku: str | None = None) -> list[dict]:
        """Every product (GraphQL-shaped views), optionally those with a variant carrying this SKU exactly."""
        with self.store.lock:
            found = []
            for product in self.store.products.values():
                skus = [self.store.items[self.store.variants[v]["item"]]["sku"] for v in product["variants"]]
                if sku is None or sku in skus:
                    found.append(self._resolved(self.store.product_view(product)))
            return found

    def product(self, product_id: str) -> dict | None:
        with self.store.lock:
            number = _num(product_id, "Product")
            product = self.store.products.get(number)
            return self._resolved(self.store.product_view(product)) if product else None

    def _resolved(self, view: dict) -> dict:
        """A view with its lazy connections read (all nodes), for assertions."""
        resolved = {k: v for k, v in view.items() if not callable(v)}
        resolved["media"] = view["media"](None, first=250)
        variants = view["variants"](None, first=250)
        for variant in variants["nodes"]:
            variant.pop("product", None)
            level = variant["inventoryItem"]["inventoryLevel"](None, locationId="gid://shopify/Location/1")
            variant["inventoryItem"]["inventoryLevel"] = (
                {"quantities": level["quantities"](None, names=["available"])} if level else None
            )
        resolved["variants"] = variants
        return resolved

    def orders(self) -> list[dict]:
        with self.store.lock:
            return [dict(o) for o in self.store.orders.values()]

    def requests(self, operation: str | None = None) -> list[RecordedRequest]:
        with self._log_lock:
            return [r for r in self._log if operation is None or r.operation == operation]

    def deliveries(self) -> list[Delivery]:
        with self._log_lock:
            return list(self._deliveries)

    def calls(self, operation: str | None = None) -> int:
        return len(self.requests(operation))

    def reset_log(self) -> None:
        with self._log_lock:
            self._log.clear()
            self._deliveries.clear()
