"""A loopback Selling Partner API and Login with Amazon token endpoint, with state.

Every request is matched to its operation in Amazon's Swagger models and checked against them
(path, query, body); one that departs is answered 400 InvalidInput and counted in `violations`.
Answers are checked against the models' response schemas too (`answer_violations`). The models'
own static sandbox cases (`x-amzn-api-sandbox.static`, e.g. sku VALIDATION_INVALID) are
answered as written. Each operation has the token bucket its usage plan documents (scaled by
`rate_scale` for quick tests, and reported in x-amzn-RateLimit-Limit), answering 429 when
empty. Access tokens expire (`token_lifetime`, `expire_tokens()`): an expired one gets 403.

Offer-only listings are checked like Amazon checks them (issues with code, message, attribute
names): a missing ASIN or condition, an unknown ASIN, a bad price or quantity. A put is
ACCEPTED and the listing becomes BUYABLE after `processing_seconds`. Sales take stock off a
listing and make an order (searchOrders / getOrder, orders 2026-01-01); each sale can be
published as an ORDER_CHANGE notification to `notify` (the SQS publisher in tests). Faults
(500, 429, timeouts) are seeded and deterministic.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .contract import SwaggerModels
from .store import (
    US,
    SandboxOperations,
    error_list,
    models_dir,
    offer_asin,
    offer_price,
    offer_quantity,
    set_offer_quantity,
    stamp,
)

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.sandbox"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
DEFAULT_SELLER_ID = "A2SANDBOXSELLER"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    operation: str
    query: dict[str, str]
    body: Any
    status: int
    problems: tuple[str, ...] = ()


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    sandbox: AmazonSandbox

    def do_GET(self) -> None:
        self.sandbox._handle(self)

    do_PUT = do_PATCH = do_DELETE = do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AmazonSandbox(SandboxOperations):
    """The loopback SP-API. `with AmazonSandbox() as sandbox:` serves on 127.0.0.1, a free port."""

    def __init__(
        self,
        *,
        seller_id: str = DEFAULT_SELLER_ID,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str = DEFAULT_REFRESH_TOKEN,
        token_lifetime: int = 3600,
        processing_seconds: float = 0.0,
        rate_scale: float = 1.0,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        timeout_rate: float = 0.0,
        timeout_delay: float = 3.0,
        seed: int = 0,
        unknown_asins: tuple[str, ...] = (),
        notify: Callable[[dict], None] | None = None,
        port: int = 0,
    ) -> None:
        self.models = SwaggerModels(models_dir())
        self.seller_id, self.client_id, self.client_secret = seller_id, client_id, client_secret
        self.refresh_token = refresh_token
        self.token_lifetime = token_lifetime
        self.processing_seconds = processing_seconds
        self.rate_scale = rate_scale
        self.error_rate, self.rate_limit_rate, self.timeout_rate = error_rate, rate_limit_rate, timeout_rate
        self.timeout_delay = timeout_delay
        self.random = random.Random(seed)
        self.unknown_asins = set(unknown_asins)
        self.notify = notify
        self.port = port
        self.lock = threading.RLock()
        self.tokens: dict[str, float] = {}  # access token -> expiry (epoch)
        self.token_grants = 0
        self.items: dict[str, dict] = {}  # sku -> listing state
        self.orders: dict[str, dict] = {}
        self.log: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.answer_violations: list[str] = []
        self.buckets: dict[str, _Bucket] = {}
        self.scripted: list[tuple[str, str]] = []  # (operation, fault)
        self.order_seq = 0
        self.documents: dict[str, dict] = {}  # feedDocumentId -> {"content": bytes, "compression": str | None}
        self.feeds: dict[str, dict] = {}
        self.feed_problems: list[str] = []
        self.destinations: dict[str, dict] = {}
        self.restricted: dict[str, set[tuple[str, str]]] = {}  # RDT -> (method, path) it opens
        self.pii: dict[str, dict] = {}  # orderId -> buyer and recipient (restricted data)
        self.subscriptions: dict[
            str, dict
        ] = {}  # notificationType -> subscription  # feed documents that departed from listings-feed-schema-v2
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"sandbox": self})
        self._server = _Server(("127.0.0.1", self.port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="amazon-sandbox", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AmazonSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the sandbox first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_url(self) -> str:
        return self.base_url + "/auth/o2/token"

    # --- driving it ----------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every access token handed out so far expires now (as if an hour had passed)."""
        with self.lock:
            self.tokens = {token: 0.0 for token in self.tokens}

    def set_faults(self, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)

    def fail_next(self, operation: str, fault: str = "error", times: int = 1) -> None:
        """The next `times` calls of `operation` fail with `fault` (error, rate_limit, timeout)."""
        with self.lock:
            self.scripted.extend([(operation, fault)] * times)

    def listing(self, sku: str) -> dict | None:
        with self.lock:
            item = self.items.get(sku)
            return self._render(item) if item else None

    def listings(self) -> list[dict]:
        with self.lock:
            return [self._render(item) for item in self.items.values()]

    def all_orders(self) -> list[dict]:
        with self.lock:
            return [dict(order) for order in self.orders.values()]

    def requests(self, operation: str | None = None) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.log if operation is None or r.operation == operation]

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    def add_external_listing(self, sku: str, *, asin: str, price: str, quantity: int = 1, product_type="GUITARS"):
        """The seller offers something on Amazon directly (Seller Central), not through the back office."""
        attributes = {
            "merchant_suggested_asin": [{"value": asin, "marketplace_id": US}],
            "condition_type": [{"value": "used_very_good", "marketplace_id": US}],
            "purchasable_offer": [
                {
                    "marketplace_id": US,
                    "currency": "USD",
                    "our_price": [{"schedule": [{"value_with_tax": float(price)}]}],
                }
            ],
            "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": quantity}],
        }
        with self.lock:
            now = datetime.now(UTC)
            self.items[sku] = {
                "sku": sku,
                "productType": product_type,
                "attributes": attributes,
                "created": now,
                "updated": now,
                "ready_at": 0.0,
                "issues": [],
            }
            return self._render(self.items[sku])

    def simulate_sale(self, sku: str, quantity: int = 1, *, status: str = "UNSHIPPED", notify: bool = True) -> dict:
        """A buyer orders on Amazon: the listing's quantity drops, an order appears, and (when
        `notify`) an ORDER_CHANGE notification is published."""
        with self.lock:
            item = self.items.get(sku)
            if item is None or offer_quantity(item) < quantity:
                raise ValueError(f"{sku} is not for sale with {quantity} unit(s) on the sandbox")
            set_offer_quantity(item, offer_quantity(item) - quantity)
            now = datetime.now(UTC)
            item["updated"] = now
            self.order_seq += 1
            order_id = f"111-{self.order_seq:07d}-{self.random.randint(1000000, 9999999)}"
            price = offer_price(item) or Decimal("0")
            self.orders[order_id] = {
                "orderId": order_id,
                "createdTime": stamp(now),
                "lastUpdatedTime": stamp(now),
                "salesChannel": {"channelName": "AMAZON", "marketplaceId": US, "marketplaceName": "Amazon.com"},
                "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"},
                "proceeds": {"grandTotal": {"amount": str(price * quantity), "currencyCode": "USD"}},
                "orderItems": [
                    {
                        "orderItemId": f"{self.order_seq:014d}",
                        "quantityOrdered": quantity,
                        "product": {
                            "asin": offer_asin(item),
                            "title": f"Offer {sku}",
                            "sellerSku": sku,
                            "price": {"unitPrice": {"amount": str(price), "currencyCode": "USD"}},
                        },
                    }
                ],
            }
            self.pii[order_id] = {
                "buyer": {"buyerName": "Sandbox Buyer", "buyerEmail": "buyer@marketplace.amazon.com"},
                "recipient": {
                    "deliveryAddress": {
                        "name": "Sandbox Buyer",
                        "addressLine1": "410 Terry Ave N",
                        "city": "Seattle",
                        "stateOrRegion": "WA",
                        "postalCode": "98109",
                        "countryCode": "US",
                    }
                },
            }
            order = dict(self.orders[order_id])
        if notify and self.notify:
            self.notify(self.order_notification(order_id))
        return order

    def update_order(self, order_id: str, status: str, *, notify: bool = True) -> dict:
        with self.lock:
            order = self.orders[order_id]
            order["fulfillment"]["fulfillmentStatus"] = status
            order["lastUpdatedTime"] = stamp(datetime.now(UTC))
            result = dict(order)
        if notify and self.notify:
            self.notify(self.order_notification(order_id))
        return result

    def order_notification(self, order_id: str, notification_id: str | None = None) -> dict:
        """ORDER_CHANGE as Amazon publishes it (schemas/notifications/OrderChangeNotification.json)."""
        order = self.orders[order_id]
        line = order["orderItems"][0]
        status = {"UNSHIPPED": "Unshipped", "PENDING": "Pending", "SHIPPED": "Shipped", "CANCELLED": "Canceled"}.get(
            order["fulfillment"]["fulfillmentStatus"], "Unshipped"
        )
        now = stamp(datetime.now(UTC))
        return {
            "NotificationVersion": "1.0",
            "NotificationType": "ORDER_CHANGE",
            "PayloadVersion": "1.0",
            "EventTime": now,
            "Payload": {
                "OrderChangeNotification": {
                    "NotificationLevel": "OrderLevel",
                    "SellerId": self.seller_id,
                    "AmazonOrderId": order_id,
                    "OrderChangeType": "OrderStatusChange",
                    "OrderChangeTrigger": {"TimeOfOrderChange": now, "ChangeReason": "Order status changed"},
                    "Summary": {
                        "MarketplaceId": US,
                        "OrderStatus": status,
                        "PurchaseDate": order["createdTime"],
                        "DestinationPostalCode": "10001",
                        "FulfillmentType": "MFN",
                        "OrderType": "StandardOrder",
                        "NumberOfItemsShipped": 0,
                        "NumberOfItemsUnshipped": line["quantityOrdered"],
                        "EarliestDeliveryDate": now,
                        "LatestDeliveryDate": now,
                        "EarliestShipDate": now,
                        "LatestShipDate": now,
                        "OrderPrograms": [],
                        "ShippingPrograms": [],
                        "OrderItems": [
                            {
                                "OrderItemId": line["orderItemId"],
                                "SellerSKU": line["product"]["sellerSku"],
                                "SupplySourceId": "sandbox-supply-source",
                                "OrderItemStatus": status,
                                "Quantity": line["quantityOrdered"],
                                "QuantityShipped": 0,
                            }
                        ],
                    },
                }
            },
            "NotificationMetadata": {
                "ApplicationId": "amzn1.sellerapps.app.sandbox",
                "SubscriptionId": "subscription-sandbox",
                "PublishTime": now,
                "NotificationId": notification_id or str(uuid.uuid4()),
            },
        }

    # --- HTTP ------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        method = handler.command
        if split.path == "/auth/o2/token" and method == "POST":
            status, body = self._token(raw, handler.headers.get("Content-Type", ""))
            return self._send(handler, status, body, {})
        if split.path.startswith("/_sandbox/"):
            return self._control(handler, method, split.path.removeprefix("/_sandbox/"), raw)
        if split.path.startswith("/_documents/"):
            return self._document(handler, method, split.path.removeprefix("/_documents/"), raw)
        matched = self.models.match(method, split.path)
        if matched is None:
            return self._send(handler, 404, error_list("NotFound", f"No operation {method} {split.path}"), {})
        op, path_params = matched
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        status, answer, headers = self._api(handler, op, path_params, query, body)
        if status is None:  # a timeout fault: no answer at all
            return
        for problem in self.models.response_problems(op, status, answer):
            self.answer_violations.append(f"{op.operation_id} {status}: {problem}")
        self._send(handler, status, answer, headers)

    def _control(self, handler, method: str, what: str, raw: bytes) -> None:
        """Driving a sandbox that runs in another process (manage.py amazon_sandbox): GET state, POST sale."""
        try:
            if method == "GET" and what == "state":
                body = {"listings": self.listings(), "orders": self.all_orders(), "violations": self.violations[-20:]}
                return self._send(handler, 200, body, {})
            if method == "POST" and what == "sale":
                data = json.loads(raw or b"{}")
                order = self.simulate_sale(str(data["sku"]), int(data.get("quantity") or 1))
                return self._send(handler, 201, order, {})
        except (KeyError, ValueError) as error:
            return self._send(handler, 400, {"message": str(error)}, {})
        self._send(handler, 404, {"message": f"No control {method} /_sandbox/{what}"}, {})

    def _token(self, raw: bytes, content_type: str) -> tuple[int, Any]:
        form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
        if "application/x-www-form-urlencoded" not in content_type:
            return 400, {"error": "invalid_request", "error_description": "The body must be form-urlencoded."}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "client_credentials"):
            return 400, {"error": "unsupported_grant_type", "error_description": f"Unsupported grant {grant!r}."}
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed"}
        if grant == "refresh_token" and form.get("refresh_token") != self.refresh_token:
            return 400, {"error": "invalid_grant", "error_description": "The request has an invalid grant parameter"}
        if grant == "client_credentials" and form.get("scope") != "sellingpartnerapi::notifications":
            return 400, {"error": "invalid_scope", "error_description": "The scope is not valid for this grant."}
        token = ("Atc|" if grant == "client_credentials" else "Atza|") + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = time.time() + self.token_lifetime
            self.token_grants += 1
        answer = {"access_token": token, "token_type": "bearer", "expires_in": self.token_lifetime}
        if grant == "refresh_token":
            answer["refresh_token"] = self.refresh_token
        return 200, answer

    def _api(self, handler, op, path_params, query, body) -> tuple[int | None, Any, dict]:
        name = op.operation_id
        plan = op.usage_plan or (1.0, 1)
        rate = plan[0] * self.rate_scale
        headers = {"x-amzn-RateLimit-Limit": f"{rate:g}", "x-amzn-RequestId": str(uuid.uuid4())}

        def record(status: int, problems: tuple[str, ...] = ()) -> None:
            with self.lock:
                self.log.append(
                    RecordedRequest(handler.command, handler.path, name, dict(query), body, status, problems)
                )

        token = handler.headers.get("x-amz-access-token", "")
        with self.lock:
            expiry = self.tokens.get(token)
        if expiry is None or expiry < time.time():
            record(403)
            message = "The access token you provided has expired." if expiry is not None else "Access denied."
            return 403, error_list("Unauthorized", "Access to requested resource is denied.", message), headers
        with self.lock:
            opens = self.restricted.get(token)
        if opens is not None and (handler.command, urlsplit(handler.path).path) not in opens:
            record(403)
            return (
                403,
                error_list(
                    "Unauthorized", "Access to requested resource is denied.", "The RDT is for another resource."
                ),
                headers,
            )
        query = {**query, "_rdt": "1"} if opens is not None else query
        grantless = name in ("createDestination", "getDestinations", "getDestination", "deleteDestination")
        if grantless != token.startswith("Atc|"):
            record(403)
            why = "needs a grantless token" if grantless else "needs the seller's token, not a grantless one"
            return 403, error_list("Unauthorized", "Access to requested resource is denied.", f"{name} {why}."), headers
        rdt = query.pop("_rdt", None) is not None
        problems = tuple(self.models.request_problems(op, path_params, query, body))
        if problems:
            with self.lock:
                self.violations.extend(f"{name}: {p}" for p in problems)
            record(400, problems)
            return 400, error_list("InvalidInput", "; ".join(problems)[:500]), headers
        fault = self._fault(name)
        if fault == "timeout":
            record(0)
            time.sleep(self.timeout_delay)
            handler.close_connection = True
            return None, None, {}
        with self.lock:
            bucket = self.buckets.setdefault(name, _Bucket(rate, plan[1]))
            bucket.rate = rate
            allowed = bucket.take()
        if fault == "rate_limit" or not allowed:
            record(429)
            return 429, error_list("QuotaExceeded", "You exceeded your quota for the requested resource."), headers
        if fault == "error":
            record(500)
            return 500, error_list("InternalFailure", "We encountered an internal error. Please try again."), headers
        static = self.models.static_answer(op, {**path_params, **query})
        if static is not None:
            record(static[0])
            return static[0], static[1], headers
        if path_params.get("sellerId") not in (None, self.seller_id):
            record(403)
            return 403, error_list("Unauthorized", "Access to requested resource is denied."), headers
        with self.lock:
            if name == "getOrder" and rdt:
                query = {**query, "_rdt": "1"}
            status, answer = getattr(self, "_" + name, self._missing)(path_params, query, body)
        record(status)
        return status, answer, headers

    def _fault(self, operation: str) -> str:
        with self.lock:
            for index, (name, fault) in enumerate(self.scripted):
                if name == operation:
                    del self.scripted[index]
                    return fault
            roll = self.random.random()
        if roll < self.error_rate:
            return "error"
        if roll < self.error_rate + self.rate_limit_rate:
            return "rate_limit"
        if roll < self.error_rate + self.rate_limit_rate + self.timeout_rate:
            return "timeout"
        return ""

    @staticmethod
    def _send(handler: _Handler, status: int, body: Any, headers: Mapping[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _document(self, handler, method: str, document_id: str, raw: bytes) -> None:
        """The presigned document URL: PUT uploads the feed, GET downloads a document (no SP-API token)."""
        with self.lock:
            document = self.documents.get(document_id)
            if document is None:
                return self._send(handler, 404, {"message": "NoSuchKey"}, {})
            if method == "PUT":
                document["content"] = raw
                return self._send(handler, 200, None, {})
            content = document.get("content") or b""
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/octet-stream")
            handler.send_header("Content-Length", str(len(content)))
            handler.end_headers()
            handler.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError):
            pass
