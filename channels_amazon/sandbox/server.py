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
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings

from .contract import SwaggerModels

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.sandbox"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token"
DEFAULT_SELLER_ID = "A2SANDBOXSELLER"
US = "ATVPDKIKX0DER"
CONDITION_TYPES = frozenset(
    [
        "new_new",
        "new_open_box",
        "new_oem",
        "refurbished_refurbished",
        "used_like_new",
        "used_very_good",
        "used_good",
        "used_acceptable",
        "collectible_like_new",
        "collectible_very_good",
        "collectible_good",
        "collectible_acceptable",
        "club_club",
    ]
)


def models_dir() -> Path:
    return Path(settings.BASE_DIR) / "contracts" / "amazon" / "models"


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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


class AmazonSandbox:
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
            if item is None or _quantity(item) < quantity:
                raise ValueError(f"{sku} is not for sale with {quantity} unit(s) on the sandbox")
            _set_quantity(item, _quantity(item) - quantity)
            now = datetime.now(UTC)
            item["updated"] = now
            self.order_seq += 1
            order_id = f"111-{self.order_seq:07d}-{self.random.randint(1000000, 9999999)}"
            price = _price(item) or Decimal("0")
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
                            "asin": _asin(item),
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
            return self._send(handler, 404, _errors("NotFound", f"No operation {method} {split.path}"), {})
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
            return 403, _errors("Unauthorized", "Access to requested resource is denied.", message), headers
        with self.lock:
            opens = self.restricted.get(token)
        if opens is not None and (handler.command, urlsplit(handler.path).path) not in opens:
            record(403)
            return (
                403,
                _errors("Unauthorized", "Access to requested resource is denied.", "The RDT is for another resource."),
                headers,
            )
        query = {**query, "_rdt": "1"} if opens is not None else query
        grantless = name in ("createDestination", "getDestinations", "getDestination", "deleteDestination")
        if grantless != token.startswith("Atc|"):
            record(403)
            why = "needs a grantless token" if grantless else "needs the seller's token, not a grantless one"
            return 403, _errors("Unauthorized", "Access to requested resource is denied.", f"{name} {why}."), headers
        rdt = query.pop("_rdt", None) is not None
        problems = tuple(self.models.request_problems(op, path_params, query, body))
        if problems:
            with self.lock:
                self.violations.extend(f"{name}: {p}" for p in problems)
            record(400, problems)
            return 400, _errors("InvalidInput", "; ".join(problems)[:500]), headers
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
            return 429, _errors("QuotaExceeded", "You exceeded your quota for the requested resource."), headers
        if fault == "error":
            record(500)
            return 500, _errors("InternalFailure", "We encountered an internal error. Please try again."), headers
        static = self.models.static_answer(op, {**path_params, **query})
        if static is not None:
            record(static[0])
            return static[0], static[1], headers
        if path_params.get("sellerId") not in (None, self.seller_id):
            record(403)
            return 403, _errors("Unauthorized", "Access to requested resource is denied."), headers
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

    # --- operations (under self.lock) -------------------------------------------------

    def _missing(self, path_params, query, body) -> tuple[int, Any]:
        return 501, _errors("NotImplemented", "This operation is not served by the loopback sandbox.")

    def _getListingsItem(self, path_params, query, body):
        item = self.items.get(path_params["sku"])
        if item is None:
            return 404, _errors("NOT_FOUND", f"SKU '{path_params['sku']}' not found in marketplace {US}")
        return 200, self._render(item, included=query.get("includedData", "summaries").split(","))

    def _searchListingsItems(self, path_params, query, body):
        skus = sorted(self.items)
        size = int(query.get("pageSize") or 10)
        start = int(query.get("pageToken") or 0)
        page = skus[start : start + size]
        included = query.get("includedData", "summaries").split(",")
        answer: dict[str, Any] = {
            "numberOfResults": len(skus),
            "items": [self._render(self.items[s], included=included) for s in page],
        }
        if start + size < len(skus):
            answer["pagination"] = {"nextToken": str(start + size)}
        return 200, answer

    def _putListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        issues = self._issues(body.get("attributes") or {}, body.get("requirements"), full=True)
        preview = query.get("mode") == "VALIDATION_PREVIEW"
        answer = self._submission(sku, issues, preview)
        if answer["status"] == "INVALID" or preview:
            return 200, answer
        now = datetime.now(UTC)
        current = self.items.get(sku)
        self.items[sku] = {
            "sku": sku,
            "productType": body["productType"],
            "attributes": dict(body["attributes"]),
            "created": current["created"] if current else now,
            "updated": now,
            "ready_at": time.time() + self.processing_seconds,
            "issues": [i for i in issues if i["severity"] != "ERROR"],
        }
        return 200, answer

    def _patchListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        current = self.items.get(sku)
        if current is None:
            issue = _issue("4000003", f"The SKU '{sku}' does not exist for this seller.", [], "ERROR")
            return 200, self._submission(sku, [issue], query.get("mode") == "VALIDATION_PREVIEW")
        attributes = dict(current["attributes"])
        for patch in body["patches"]:
            name = patch["path"].removeprefix("/attributes/")
            if patch["op"] == "delete":
                attributes.pop(name, None)
            else:
                attributes[name] = patch.get("value")
        issues = self._issues(attributes, "LISTING_OFFER_ONLY", full=True)
        preview = query.get("mode") == "VALIDATION_PREVIEW"
        answer = self._submission(sku, issues, preview)
        if answer["status"] != "INVALID" and not preview:
            current["attributes"] = attributes
            current["updated"] = datetime.now(UTC)
        return 200, answer

    def _deleteListingsItem(self, path_params, query, body):
        sku = path_params["sku"]
        if self.items.pop(sku, None) is None:
            return 404, _errors("NOT_FOUND", f"SKU '{sku}' not found")
        return 200, {"sku": sku, "status": "ACCEPTED", "submissionId": str(uuid.uuid4()), "issues": []}

    def _searchOrders(self, path_params, query, body):
        after = query.get("lastUpdatedAfter") or query.get("createdAfter")
        if not after or ("lastUpdatedAfter" in query and "createdAfter" in query):
            return 400, _errors("InvalidInput", "Exactly one of createdAfter or lastUpdatedAfter is required.")
        since = _parse(after)
        key = "lastUpdatedTime" if "lastUpdatedAfter" in query else "createdTime"
        rows = sorted(
            (o for o in self.orders.values() if _parse(o[key]) >= since), key=lambda o: (o[key], o["orderId"])
        )
        size = int(query.get("maxResultsPerPage") or 100)
        start = int(query.get("paginationToken") or 0)
        answer: dict[str, Any] = {"orders": [json.loads(json.dumps(o)) for o in rows[start : start + size]]}
        if start + size < len(rows):
            answer["pagination"] = {"nextToken": str(start + size)}
        answer["lastUpdatedBefore"] = stamp(datetime.now(UTC))
        return 200, answer

    def _getOrder(self, path_params, query, body):
        order = self.orders.get(path_params["orderId"])
        if order is None:
            return 404, _errors("NotFound", f"Order {path_params['orderId']} not found")
        wanted = set((query.get("includedData") or "").split(","))
        if wanted & {"BUYER", "RECIPIENT"} and not query.get("_rdt"):
            return 403, _errors(
                "Unauthorized", "Access to requested resource is denied.", "Buyer data needs a Restricted Data Token."
            )
        answer = json.loads(json.dumps(order))
        pii = self.pii.get(order["orderId"]) or {}
        if "BUYER" in wanted and pii.get("buyer"):
            answer["buyer"] = pii["buyer"]
        if "RECIPIENT" in wanted and pii.get("recipient"):
            answer["recipient"] = pii["recipient"]
        return 200, {"order": answer}

    def _confirmShipment(self, path_params, query, body):
        order = self.orders.get(path_params["orderId"])
        if order is None:
            return 404, {"errors": [{"code": "NotFound", "message": f"Order {path_params['orderId']} not found"}]}
        known = {line["orderItemId"]: line["quantityOrdered"] for line in order["orderItems"]}
        package = body["packageDetail"]
        for line in package["orderItems"]:
            if known.get(line["orderItemId"], 0) < line["quantity"]:
                return 400, {
                    "errors": [
                        {
                            "code": "InvalidInput",
                            "message": f"Order item {line['orderItemId']} cannot ship {line['quantity']}.",
                        }
                    ]
                }
        order["fulfillment"]["fulfillmentStatus"] = "SHIPPED"
        order["lastUpdatedTime"] = stamp(datetime.now(UTC))
        order.setdefault("packages", []).append(
            {
                "packageReferenceId": package["packageReferenceId"],
                "carrier": package["carrierCode"],
                "trackingNumber": package["trackingNumber"],
            }
        )
        return 204, None

    def _createRestrictedDataToken(self, path_params, query, body):
        opens = {(r["method"], r["path"]) for r in body["restrictedResources"]}
        token = "Atz.sprdt|" + secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + 3600
        self.restricted[token] = opens
        return 200, {"restrictedDataToken": token, "expiresIn": 3600}

    # --- notifications -------------------------------------------------------------------

    def _getDestinations(self, path_params, query, body):
        return 200, {"payload": list(self.destinations.values())}

    def _createDestination(self, path_params, query, body):
        arn = ((body.get("resourceSpecification") or {}).get("sqs") or {}).get("arn")
        if not arn:
            return 400, _errors("InvalidInput", "An SQS destination needs resourceSpecification.sqs.arn.")
        if any(d["resource"].get("sqs", {}).get("arn") == arn for d in self.destinations.values()):
            return 409, _errors("Conflict", f"A destination for {arn} already exists.")
        destination_id = str(uuid.uuid4())
        self.destinations[destination_id] = {
            "destinationId": destination_id,
            "name": body["name"],
            "resource": {"sqs": {"arn": arn}},
        }
        return 200, {"payload": self.destinations[destination_id]}

    def _getSubscription(self, path_params, query, body):
        found = self.subscriptions.get(path_params["notificationType"])
        if found is None:
            return 404, _errors("NotFound", f"No subscription for {path_params['notificationType']}.")
        return 200, {"payload": found}

    def _createSubscription(self, path_params, query, body):
        kind = path_params["notificationType"]
        if body["destinationId"] not in self.destinations:
            return 400, _errors("InvalidInput", f"Unknown destination {body['destinationId']}.")
        if kind in self.subscriptions:
            return 409, _errors("Conflict", f"A subscription for {kind} already exists.")
        self.subscriptions[kind] = {
            "subscriptionId": str(uuid.uuid4()),
            "payloadVersion": body["payloadVersion"],
            "destinationId": body["destinationId"],
        }
        return 200, {"payload": self.subscriptions[kind]}

    # --- feeds ---------------------------------------------------------------------------

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

    def _createFeedDocument(self, path_params, query, body):
        document_id = "amzn1.tortuga.4." + uuid.uuid4().hex
        self.documents[document_id] = {"content": b"", "compression": None}
        return 201, {"feedDocumentId": document_id, "url": f"{self.base_url}/_documents/{document_id}"}

    def _createFeed(self, path_params, query, body):
        if body["inputFeedDocumentId"] not in self.documents:
            return 400, _errors("InvalidInput", f"Unknown inputFeedDocumentId {body['inputFeedDocumentId']}")
        feed_id = str(50000 + len(self.feeds) + 1)
        self.feeds[feed_id] = {
            "feedId": feed_id,
            "feedType": body["feedType"],
            "marketplaceIds": list(body["marketplaceIds"]),
            "createdTime": stamp(datetime.now(UTC)),
            "processingStatus": "IN_QUEUE",
            "document": body["inputFeedDocumentId"],
        }
        return 202, {"feedId": feed_id}

    def _getFeed(self, path_params, query, body):
        feed = self.feeds.get(path_params["feedId"])
        if feed is None:
            return 404, _errors("NotFound", f"Feed {path_params['feedId']} not found")
        if feed["processingStatus"] == "IN_QUEUE":
            self._process_feed(feed)
        return 200, {k: v for k, v in feed.items() if k != "document"}

    def _getFeedDocument(self, path_params, query, body):
        document_id = path_params["feedDocumentId"]
        document = self.documents.get(document_id)
        if document is None:
            return 404, _errors("NotFound", f"Document {document_id} not found")
        answer = {"feedDocumentId": document_id, "url": f"{self.base_url}/_documents/{document_id}"}
        if document.get("compression"):
            answer["compressionAlgorithm"] = document["compression"]
        return 200, answer

    def _process_feed(self, feed: dict) -> None:
        """Apply a JSON_LISTINGS_FEED like Amazon: check it against the feed schema, apply each
        message with the same checks as the Listings Items API, and write a GZIP processing report."""
        import gzip

        from jsonschema import Draft7Validator

        now = stamp(datetime.now(UTC))
        feed["processingStartTime"] = now
        try:
            document = json.loads(self.documents[feed["document"]]["content"] or b"null")
        except ValueError:
            document = None
        schema = json.loads((models_dir().parent / "schemas" / "feeds" / "listings-feed-schema-v2.json").read_text())
        problems = (
            [e.message for e in Draft7Validator(schema).iter_errors(document)] if document is not None else ["not JSON"]
        )
        if feed["feedType"] != "JSON_LISTINGS_FEED" or problems:
            self.feed_problems.extend(problems)
            feed.update(processingStatus="FATAL", processingEndTime=now)
            return
        issues, accepted, invalid = [], 0, 0
        for message in document["messages"]:
            sku, message_id = message["sku"], message["messageId"]
            found = self._apply_feed_message(message)
            for issue in found:
                row = {
                    "messageId": message_id,
                    "sku": sku,
                    "code": issue["code"],
                    "severity": issue["severity"],
                    "message": issue["message"],
                }
                if issue.get("attributeNames"):
                    row["attributeName"] = issue["attributeNames"][0]
                issues.append(row)
            if any(i["severity"] == "ERROR" for i in found):
                invalid += 1
            else:
                accepted += 1
        report = {
            "header": {"sellerId": self.seller_id, "version": "2.0", "feedId": feed["feedId"]},
            "issues": issues,
            "summary": {
                "errors": sum(1 for i in issues if i["severity"] == "ERROR"),
                "warnings": sum(1 for i in issues if i["severity"] == "WARNING"),
                "messagesProcessed": accepted + invalid,
                "messagesAccepted": accepted,
                "messagesInvalid": invalid,
            },
        }
        report_id = "amzn1.tortuga.4." + uuid.uuid4().hex
        self.documents[report_id] = {"content": gzip.compress(json.dumps(report).encode()), "compression": "GZIP"}
        feed.update(processingStatus="DONE", processingEndTime=stamp(datetime.now(UTC)), resultFeedDocumentId=report_id)

    def _apply_feed_message(self, message: dict) -> list[dict]:
        sku = message["sku"]
        current = self.items.get(sku)
        operation = message["operationType"]
        if operation in ("PATCH", "PARTIAL_UPDATE"):
            if current is None:
                return [_issue("4000003", f"The SKU '{sku}' does not exist for this seller.", [])]
            attributes = dict(current["attributes"])
            if operation == "PATCH":
                for patch in message["patches"]:
                    attributes[patch["path"].removeprefix("/attributes/")] = patch.get("value")
            else:
                attributes.update(message["attributes"])
            found = self._issues(attributes, "LISTING_OFFER_ONLY", full=True)
            if not any(i["severity"] == "ERROR" for i in found):
                current["attributes"] = attributes
                current["updated"] = datetime.now(UTC)
            return found
        if operation == "DELETE":
            self.items.pop(sku, None)
            return []
        found = self._issues(message.get("attributes") or {}, message.get("requirements"), full=True)
        if not any(i["severity"] == "ERROR" for i in found):
            now = datetime.now(UTC)
            self.items[sku] = {
                "sku": sku,
                "productType": message["productType"],
                "attributes": dict(message["attributes"]),
                "created": current["created"] if current else now,
                "updated": now,
                "ready_at": time.time() + self.processing_seconds,
                "issues": [],
            }
        return found

    # --- listings as Amazon shows them -----------------------------------------------

    def _issues(self, attributes: Mapping[str, Any], requirements: str | None, *, full: bool) -> list[dict]:
        found = []

        def first(name: str) -> Mapping[str, Any]:
            rows = attributes.get(name) or []
            return rows[0] if rows and isinstance(rows[0], Mapping) else {}

        if requirements == "LISTING_OFFER_ONLY":
            asin = str(first("merchant_suggested_asin").get("value") or "")
            if not asin:
                found.append(
                    _issue(
                        "90220", "'merchant_suggested_asin' is required but not supplied.", ["merchant_suggested_asin"]
                    )
                )
            elif len(asin) != 10 or not asin.isalnum() or asin in self.unknown_asins:
                found.append(
                    _issue(
                        "8541",
                        f"The ASIN '{asin}' does not match any product in the Amazon catalog.",
                        ["merchant_suggested_asin"],
                    )
                )
        condition = str(first("condition_type").get("value") or "")
        if not condition:
            found.append(_issue("90220", "'condition_type' is required but not supplied.", ["condition_type"]))
        elif condition not in CONDITION_TYPES:
            found.append(
                _issue("90000900", f"The value '{condition}' is not valid for 'condition_type'.", ["condition_type"])
            )
        offer = first("purchasable_offer")
        try:
            price = Decimal(str(offer["our_price"][0]["schedule"][0]["value_with_tax"]))
        except (KeyError, IndexError, TypeError, ArithmeticError):
            price = None
        if price is None:
            found.append(_issue("90220", "'purchasable_offer' is required but not supplied.", ["purchasable_offer"]))
        elif price <= 0:
            found.append(_issue("90000900", "The price must be greater than 0.", ["purchasable_offer"]))
        availability = first("fulfillment_availability")
        quantity = availability.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            found.append(
                _issue("90000900", "'quantity' must be a whole number of 0 or more.", ["fulfillment_availability"])
            )
        return found

    def _submission(self, sku: str, issues: list[dict], preview: bool) -> dict:
        errors = [i for i in issues if i["severity"] == "ERROR"]
        status = "INVALID" if errors else ("VALID" if preview else "ACCEPTED")
        return {"sku": sku, "status": status, "submissionId": str(uuid.uuid4()), "issues": issues}

    def _render(self, item: Mapping[str, Any], included: list[str] | None = None) -> dict:
        included = included or ["summaries", "attributes", "issues", "offers", "fulfillmentAvailability"]
        ready = time.time() >= item["ready_at"]
        quantity = _quantity(item)
        status = (["BUYABLE", "DISCOVERABLE"] if quantity > 0 else ["DISCOVERABLE"]) if ready else []
        rendered: dict[str, Any] = {"sku": item["sku"]}
        if "summaries" in included:
            head = {
                "marketplaceId": US,
                "asin": _asin(item) or None,
                "productType": item["productType"],
                "conditionType": _first_value(item, "condition_type") or None,
                "status": status,
                "itemName": f"Offer {item['sku']}",
                "createdDate": stamp(item["created"]),
                "lastUpdatedDate": stamp(item["updated"]),
            }
            rendered["summaries"] = [{k: v for k, v in head.items() if v is not None}]
        if "attributes" in included:
            rendered["attributes"] = item["attributes"]
        if "issues" in included:
            rendered["issues"] = list(item["issues"])
        if "offers" in included and ready and _price(item) is not None:
            rendered["offers"] = [
                {"marketplaceId": US, "offerType": "B2C", "price": {"currencyCode": "USD", "amount": str(_price(item))}}
            ]
        if "fulfillmentAvailability" in included:
            rendered["fulfillmentAvailability"] = [{"fulfillmentChannelCode": "DEFAULT", "quantity": quantity}]
        return rendered


def _errors(code: str, message: str, details: str = "") -> dict:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"errors": [error]}


def _issue(code: str, message: str, names: list[str], severity: str = "ERROR") -> dict:
    category = "MISSING_ATTRIBUTE" if "required" in message else "INVALID_ATTRIBUTE"
    return {"code": code, "message": message, "severity": severity, "attributeNames": names, "categories": [category]}


def _first_value(item: Mapping[str, Any], name: str) -> Any:
    rows = item["attributes"].get(name) or []
    return rows[0].get("value") if rows and isinstance(rows[0], Mapping) else None


def _asin(item: Mapping[str, Any]) -> str:
    return str(_first_value(item, "merchant_suggested_asin") or "")


def _quantity(item: Mapping[str, Any]) -> int:
    rows = item["attributes"].get("fulfillment_availability") or []
    try:
        return int(rows[0]["quantity"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0


def _set_quantity(item: dict, quantity: int) -> None:
    rows = item["attributes"].get("fulfillment_availability") or [{"fulfillment_channel_code": "DEFAULT"}]
    item["attributes"]["fulfillment_availability"] = [{**rows[0], "quantity": quantity}]


def _price(item: Mapping[str, Any]) -> Decimal | None:
    rows = item["attributes"].get("purchasable_offer") or []
    try:
        return Decimal(str(rows[0]["our_price"][0]["schedule"][0]["value_with_tax"])).quantize(Decimal("0.01"))
    except (IndexError, KeyError, TypeError, ArithmeticError):
        return None


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
