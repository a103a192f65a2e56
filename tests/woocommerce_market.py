"""The loopback WooCommerce shop as a market of the end-to-end harness (tests/test_sync_e2e_harness.py).

`WooCommerceMarket` has the methods of `LoopbackMarket`, so the engine's end-to-end tests can run
with a WooCommerce shop beside the loopback Reverb: it builds the connection, registers the
webhooks on the live server (each creation's ping answered), and translates what the shop holds
and was sent into the channel contract's words.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from channels_woocommerce import mappers, sync
from channels_woocommerce.models import WooCommerceConnection
from channels_woocommerce.sandbox import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox, php_json, sign
from inventory.channels import ListingSeen
from tests.test_sync_e2e_harness import Write

# What the shop was sent, back in the contract's field names.
_WOO_FIELDS = {
    "name": "title",
    "description": "description",
    "regular_price": "price",
    "sku": "sku",
    "images": "photos",
    "categories": "category",
    "stock_quantity": "quantity",
}


class WooCommerceMarket:
    """A WooCommerce shop for the end-to-end tests: its loopback server and this shop's connection to it."""

    channel = "woocommerce"

    def __init__(
        self,
        account,
        name: str,
        *,
        webhook_base: str | None = None,
        priority: int = 60,
        timeout: float = 10.0,
        seed: int = 0,
        **faults: Any,
    ) -> None:
        self.account = account
        self.name = name
        self.webhook_base = webhook_base
        self.priority = priority
        self.timeout = timeout
        self.sandbox = WooSandbox(seed=seed, **faults)
        self.connection: WooCommerceConnection | None = None

    def __enter__(self) -> WooCommerceMarket:
        self.sandbox.start()
        self.connection = WooCommerceConnection.objects.create(
            account=self.account,
            name=self.name,
            priority=self.priority,
            store_url=self.sandbox.store_url,
            consumer_key=DEFAULT_KEY,
            consumer_secret=DEFAULT_SECRET,
            timeout_seconds=self.timeout,
            listing_scan_interval_seconds=0,  # every pull also reads the products changed there
        )
        if self.webhook_base:
            faults = self.sandbox.set_faults()
            self.sandbox.set_faults(error_rate=0, rate_limit_rate=0, timeout_rate=0)  # set up, then misbehave
            sync.register_webhooks(self.connection, self.webhook_base)
            self.sandbox.set_faults(
                error_rate=faults.error_rate, rate_limit_rate=faults.rate_limit_rate, timeout_rate=faults.timeout_rate
            )
        self.sandbox.reset_log()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    @property
    def webhook_url(self) -> str:
        return self.webhook_base.rstrip("/") + self.connection.webhook_path

    # --- the buyer's and the seller's side on the shop ------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        return str(self.sandbox.simulate_sale(sku, quantity=quantity, deliver_webhook=webhook)["id"])

    def order_delivery(self, order_id: str) -> tuple[str, bytes, dict[str, str]]:
        order = self.sandbox.order(order_id)
        body = php_json(order)
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": "created",
            "X-WC-Webhook-Signature": sign(self.connection.webhook_secret, body),
            "X-WC-Webhook-Delivery-ID": f"manual-{order_id}",
        }
        return self.webhook_url, body, headers

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        return mappers.listing_seen(self.sandbox.add_external_product(sku, name=title, price=price, quantity=quantity))

    # --- what the shop holds ----------------------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        return [mappers.listing_seen(raw) for raw in self.sandbox.products(sku=sku)]

    def seen(self, external_id: str) -> ListingSeen | None:
        raw = self.sandbox.product(int(external_id))
        return None if raw is None else mappers.listing_seen(raw)

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for raw in self.sandbox.products():
            counts[raw["sku"]] = counts.get(raw["sku"], 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return [str(order["id"]) for order in self.sandbox.orders()]

    # --- what the shop was sent -------------------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind in ("create", "revise", "end", "delete")]

    def requests(self, external_id: str | None = None) -> list[Write]:
        """Calls about products (writes, and "read" for a product read back by id), oldest first."""
        found = []
        for request in self.sandbox.requests():
            parts = request.path.strip("/").split("/")
            if request.method == "POST" and parts == ["products"]:
                kind, product_id = "create", ""
            elif parts[0] == "products" and len(parts) == 2 and parts[1].isdigit():
                if request.method == "PUT" and request.body == mappers.end_body():
                    kind = "end"
                else:
                    kind = {"PUT": "revise", "DELETE": "delete", "GET": "read"}.get(request.method, request.method)
                product_id = parts[1]
            else:
                continue  # lookups by SKU, pages, orders, webhooks
            if external_id is None or product_id == str(external_id):
                found.append(Write(kind, product_id, self._contract_fields(request.body), request.status))
        return found

    @staticmethod
    def _contract_fields(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            return {}
        fields: dict[str, Any] = {}
        for name, value in body.items():
            if name not in _WOO_FIELDS:
                continue  # the shop's own switches (manage_stock, status, type, attributes...)
            if name == "regular_price":
                value = Decimal(value)
            fields[_WOO_FIELDS[name]] = value
        return fields

    @property
    def calls(self) -> int:
        return self.sandbox.calls()

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    def set_faults(self, **faults: Any) -> None:
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        self.sandbox.set_faults(error_rate=1.0, rate_limit_rate=0.0, timeout_rate=0.0)
