"""The sandbox's state and the Stripe endpoints billing calls."""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

import stripe

from .server import Handler
from .wire import PERIOD_SECONDS, Recorded, StripeError, _public, load_fixtures, sign_payload


@dataclass
class StripeSandbox:
    """The loopback Stripe API. Thread-safe; start() picks a free port."""

    api_key_prefix: str = "sk_test_"
    webhook_url: str = ""  # where the demo checkout page delivers signed events
    webhook_secret: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    customers: dict = field(default_factory=dict)
    sessions: dict = field(default_factory=dict)
    portal_sessions: dict = field(default_factory=dict)
    subscriptions: dict = field(default_factory=dict)
    invoices: dict = field(default_factory=dict)
    prices: dict = field(default_factory=dict)
    meter_events: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)

    def __post_init__(self):
        self.fixtures = load_fixtures()
        self._lock = threading.RLock()
        self._idempotent: dict[str, tuple[str, int, dict]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.fail_next: list[tuple[int, str]] = []  # (status, message) answers to give next, for outage tests

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> StripeSandbox:
        handler = type("SandboxHandler", (Handler,), {"sandbox": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StripeSandbox:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what tests read ------------------------------------------------------------------------

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # --- objects, from the fixtures -------------------------------------------------------------

    def _new(self, resource: str, prefix: str, **fields) -> dict:
        obj = copy.deepcopy(self.fixtures[resource])
        obj.update(id=f"{prefix}_{secrets.token_hex(12)}", created=int(time.time()), livemode=False)
        obj.update(fields)
        return obj

    def add_price(self, price_id: str, unit_amount: int, *, currency: str = "usd", metered: bool = False) -> dict:
        """A price billing can sell (Stripe refuses checkouts with unknown prices)."""
        price = copy.deepcopy(self.fixtures["price"])
        price.update(
            id=price_id,
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
            currency=currency,
            created=int(time.time()),
            lookup_key=None,
            transform_quantity=None,
        )
        price["recurring"] = {
            "interval": "month",
            "interval_count": 1,
            "meter": "mtr_sandbox" if metered else None,
            "usage_type": "metered" if metered else "licensed",
            "trial_period_days": None,
        }
        with self._lock:
            self.prices[price_id] = price
        return price

    def _price(self, price_id: str) -> dict:
        if price_id not in self.prices:
            raise StripeError(400, f"No such price: '{price_id}'", code="resource_missing", param="price")
        return copy.deepcopy(self.prices[price_id])

    def _item(self, subscription_id: str, price_id: str, quantity, start: int) -> dict:
        item = copy.deepcopy(self.fixtures["subscription_item"])
        price = self._price(price_id)
        metered = price["recurring"]["usage_type"] == "metered"
        item.update(
            id=f"si_{secrets.token_hex(7)}",
            created=int(time.time()),
            price=price,
            quantity=None if metered else int(quantity or 1),
            subscription=subscription_id,
            current_period_start=start,
            current_period_end=start + PERIOD_SECONDS,
            billing_thresholds=None,
            plan=None,
            metadata={},
        )
        return item

    def _invoice(self, subscription: dict, *, status: str, billing_reason: str) -> dict:
        amount = sum((i["price"]["unit_amount"] or 0) * (i["quantity"] or 0) for i in subscription["items"]["data"])
        invoice = self._new(
            "invoice",
            "in",
            customer=subscription["customer"],
            status=status,
            billing_reason=billing_reason,
            amount_due=amount,
            amount_paid=amount if status == "paid" else 0,
            amount_remaining=0 if status == "paid" else amount,
            amount_overpaid=0,
            subtotal=amount,
            subtotal_excluding_tax=amount,
            total=amount,
            total_excluding_tax=amount,
            attempted=True,
            attempt_count=1,
            number=f"SBX-{len(self.invoices) + 1:04d}",
            hosted_invoice_url=f"{self.url}/invoices/view",
            invoice_pdf=f"{self.url}/invoices/pdf",
            period_start=subscription["items"]["data"][0]["current_period_start"],
            period_end=subscription["items"]["data"][0]["current_period_end"],
            shipping_cost=None,
            last_finalization_error=None,
            from_invoice=None,
        )
        invoice["parent"] = {
            "quote_details": None,
            "subscription_details": {"metadata": subscription["metadata"], "subscription": subscription["id"]},
            "type": "subscription_details",
        }
        invoice["lines"]["data"] = []
        invoice["lines"]["url"] = f"/v1/invoices/{invoice['id']}/lines"
        invoice["status_transitions"]["paid_at"] = invoice["created"] if status == "paid" else None
        with self._lock:
            self.invoices[invoice["id"]] = invoice
        subscription["latest_invoice"] = invoice["id"]
        return invoice

    # --- what the buyer and Stripe's clock do (test helpers) ------------------------------------

    def complete_checkout(self, session_id: str, *, status: str = "active") -> dict:
        """The buyer pays on the checkout page: the subscription and its first invoice exist."""
        with self._lock:
            session = self.sessions[session_id]
            now = int(time.time())
            subscription = self._new(
                "subscription",
                "sub",
                customer=session["customer"],
                status=status,
                billing_cycle_anchor=now,
                start_date=now,
                cancel_at=None,
                canceled_at=None,
                ended_at=None,
                cancel_at_period_end=False,
                trial_start=None,
                trial_end=None,
                metadata=dict(session["_subscription_metadata"]),
                latest_invoice=None,
                pending_update=None,
                pause_collection=None,
                transfer_data=None,
                next_pending_invoice_item_invoice=None,
                billing_cycle_anchor_config=None,
                pending_invoice_item_interval=None,
                billing_thresholds=None,
                billing_schedules=[],
            )
            subscription["items"]["data"] = [
                self._item(subscription["id"], line["price"], line.get("quantity"), now)
                for line in session["_line_items"]
            ]
            subscription["items"]["url"] = f"/v1/subscription_items?subscription={subscription['id']}"
            self.subscriptions[subscription["id"]] = subscription
            self._invoice(subscription, status="paid", billing_reason="subscription_create")
            session.update(status="complete", payment_status="paid", subscription=subscription["id"])
            return copy.deepcopy(subscription)

    def set_subscription_status(self, subscription_id: str, status: str) -> dict:
        """What Stripe's billing cycle does: past_due after a failed renewal, active when paid, ..."""
        with self._lock:
            subscription = self.subscriptions[subscription_id]
            subscription["status"] = status
            if status == "past_due":
                self._invoice(subscription, status="open", billing_reason="subscription_cycle")
            if status in ("canceled", "incomplete_expired"):
                subscription.update(ended_at=int(time.time()), canceled_at=int(time.time()))
            return copy.deepcopy(subscription)

    def session_public(self, session_id: str) -> dict:
        with self._lock:
            return _public(self.sessions[session_id])

    def event_payload(self, event_type: str, obj: dict) -> str:
        """A webhook body: Stripe's event object around a snapshot of `obj`, as JSON text."""
        event = copy.deepcopy(self.fixtures["event"])
        event.update(
            id=f"evt_{secrets.token_hex(12)}",
            type=event_type,
            created=int(time.time()),
            api_version=stripe.api_version,
            livemode=False,
            pending_webhooks=1,
        )
        event["data"] = {"object": _public(copy.deepcopy(obj))}
        event["request"] = {"id": None, "idempotency_key": None}
        return json.dumps(event, default=str)

    def deliver(self, event_type: str, obj: dict) -> int:
        """Send a signed event to `webhook_url` (the demo); returns the HTTP status."""
        payload = self.event_payload(event_type, obj)
        request = urllib.request.Request(
            self.webhook_url,
            data=payload.encode(),
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign_payload(payload, self.webhook_secret),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    # --- the API ------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict, idempotency_key: str | None) -> tuple[int, dict, bool]:
        with self._lock:
            if self.fail_next:
                status, message = self.fail_next.pop(0)
                self.requests.append(Recorded(method, path, params, idempotency_key))
                raise StripeError(status, message, type_="api_error")
            if idempotency_key and method == "POST":
                fingerprint = json.dumps([method, path, params], sort_keys=True)
                seen = self._idempotent.get(idempotency_key)
                if seen is not None:
                    self.requests.append(Recorded(method, path, params, idempotency_key, replayed=True))
                    if seen[0] != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{idempotency_key}' if you meant to "
                            "execute a different request.",
                            type_="idempotency_error",
                        )
                    return seen[1], copy.deepcopy(seen[2]), True
            self.requests.append(Recorded(method, path, params, idempotency_key))
            status, body = self._route(method, path, params)
            if idempotency_key and method == "POST":
                self._idempotent[idempotency_key] = (fingerprint, status, copy.deepcopy(body))
            return status, body, False

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:1] != ["v1"]:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        parts = parts[1:]
        match method, parts:
            case "POST", ["customers"]:
                customer = self._new(
                    "customer",
                    "cus",
                    email=params.get("email"),
                    name=params.get("name"),
                    metadata=params.get("metadata", {}),
                    discount=None,
                    currency=None,
                )
                self.customers[customer["id"]] = customer
                return 200, customer
            case "GET", ["customers", customer_id]:
                return 200, self._get(self.customers, customer_id, "customer")
            case "POST", ["checkout", "sessions"]:
                return 200, self._checkout_create(params)
            case "GET", ["checkout", "sessions", session_id]:
                return 200, _public(self._get(self.sessions, session_id, "checkout.session"))
            case "POST", ["billing_portal", "sessions"]:
                self._get(self.customers, params.get("customer", ""), "customer")
                portal = self._new(
                    "billing_portal.session",
                    "bps",
                    customer=params["customer"],
                    return_url=params.get("return_url"),
                    flow=None,
                    livemode=False,
                )
                portal["url"] = f"{self.url}/p/session/{portal['id']}"
                self.portal_sessions[portal["id"]] = portal
                return 200, portal
            case "GET", ["subscriptions", subscription_id]:
                return 200, self._get(self.subscriptions, subscription_id, "subscription")
            case "POST", ["subscriptions", subscription_id]:
                return 200, self._subscription_update(subscription_id, params)
            case "DELETE", ["subscriptions", subscription_id]:
                self._get(self.subscriptions, subscription_id, "subscription")
                return 200, self.set_subscription_status(subscription_id, "canceled")
            case "GET", ["invoices"]:
                customer = params.get("customer")
                data = [i for i in self.invoices.values() if not customer or i["customer"] == customer]
                data.sort(key=lambda i: (i["created"], i["number"]), reverse=True)
                limit = int(params.get("limit", 10))
                return 200, {
                    "object": "list",
                    "data": copy.deepcopy(data[:limit]),
                    "has_more": len(data) > limit,
                    "url": "/v1/invoices",
                }
            case "POST", ["billing", "meter_events"]:
                return 200, self._meter_event(params)
        raise StripeError(404, f"Unrecognized request URL ({method}: /{'/'.join(['v1', *parts])}).")

    def _get(self, table: dict, object_id: str, label: str) -> dict:
        if object_id not in table:
            raise StripeError(404, f"No such {label}: '{object_id}'", code="resource_missing", param="id")
        return copy.deepcopy(table[object_id])

    def _checkout_create(self, params: dict) -> dict:
        if params.get("mode") != "subscription":
            raise StripeError(400, "This sandbox sells subscriptions only (mode=subscription).", param="mode")
        customer = params.get("customer", "")
        self._get(self.customers, customer, "customer")
        line_items = params.get("line_items") or []
        if not line_items:
            raise StripeError(400, "line_items is required in subscription mode.", param="line_items")
        for line in line_items:
            self._price(line.get("price", ""))
        session = self._new(
            "checkout.session",
            "cs_test",
            mode="subscription",
            customer=customer,
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata", {}),
            success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"),
            status="open",
            payment_status="unpaid",
            payment_intent=None,
            subscription=None,
            invoice=None,
            expires_at=int(time.time()) + 24 * 3600,
            shipping_address_collection=None,
            shipping_cost=None,
            total_details=None,
            currency="usd",
            currency_conversion=None,
            recovered_from=None,
            after_expiration=None,
            invoice_creation=None,
        )
        session["url"] = f"{self.url}/c/pay/{session['id']}"
        session["_line_items"] = line_items
        session["_subscription_metadata"] = (params.get("subscription_data") or {}).get("metadata", {})
        self.sessions[session["id"]] = session
        return _public(session)

    def _subscription_update(self, subscription_id: str, params: dict) -> dict:
        self._get(self.subscriptions, subscription_id, "subscription")
        subscription = self.subscriptions[subscription_id]
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise StripeError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        start = subscription["items"]["data"][0]["current_period_start"]
        for change in params.get("items") or []:
            existing = next((i for i in subscription["items"]["data"] if i["id"] == change.get("id")), None)
            if change.get("id") and existing is None:
                raise StripeError(400, f"No such subscription item: '{change['id']}'", code="resource_missing")
            if change.get("deleted") in ("true", True):
                subscription["items"]["data"].remove(existing)
            elif existing is not None:
                if change.get("price"):
                    existing["price"] = self._price(change["price"])
                if change.get("quantity") not in (None, ""):
                    existing["quantity"] = int(change["quantity"])
            else:
                subscription["items"]["data"].append(
                    self._item(subscription_id, change["price"], change.get("quantity"), start)
                )
        if "cancel_at_period_end" in params:
            flag = params["cancel_at_period_end"] in ("true", True)
            subscription["cancel_at_period_end"] = flag
            subscription["cancel_at"] = subscription["items"]["data"][0]["current_period_end"] if flag else None
        if params.get("metadata"):
            subscription["metadata"].update(params["metadata"])
        if params.get("items") and params.get("proration_behavior", "create_prorations") != "none":
            self._invoice(subscription, status="paid", billing_reason="subscription_update")
        return copy.deepcopy(subscription)

    def _meter_event(self, params: dict) -> dict:
        for name in ("event_name", "payload"):
            if not params.get(name):
                raise StripeError(400, f"Missing required param: {name}.", param=name)
        identifier = params.get("identifier") or secrets.token_hex(8)
        if identifier in self.meter_events:
            # Stripe deduplicates meter events by identifier: the first one stands.
            return copy.deepcopy(self.meter_events[identifier])
        event = copy.deepcopy(self.fixtures["billing.meter_event"])
        event.update(
            event_name=params["event_name"],
            identifier=identifier,
            payload=params["payload"],
            timestamp=int(params.get("timestamp") or time.time()),
            created=int(time.time()),
        )
        self.meter_events[identifier] = event
        return copy.deepcopy(event)

    # --- the demo checkout page ---------------------------------------------------------------

    def pay(self, session_id: str) -> str:
        """The demo page's Pay button: complete the checkout and deliver the events."""
        subscription = self.complete_checkout(session_id)
        if self.webhook_url:
            self.deliver("checkout.session.completed", self.session_public(session_id))
            self.deliver("customer.subscription.created", subscription)
            self.deliver("invoice.paid", self.invoices[subscription["latest_invoice"]])
        return self.sessions[session_id]["success_url"]
