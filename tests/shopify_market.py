"""The loopback Shopify as a marketplace of the end-to-end harness (tests/test_sync_e2e_harness.py).

`ShopifyMarket` has the methods of `LoopbackMarket` (sell, offered, seen, writes, faults...)
so the end-to-end tests drive Shopify and Reverb the same way; it alone knows Shopify's wire
format and translates what the loopback store holds and was sent into the channel
contract's words. Holds no tests.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from channels_shopify import mappers
from channels_shopify.models import ShopifyConnection
from channels_shopify.sandbox import DEFAULT_SECRET, DEFAULT_TOKEN, LOCATION_ID, SHOP_DOMAIN, ShopifySandbox
from inventory.channels import ListingSeen
from inventory.models import ChannelConnection
from tests.test_sync_e2e_harness import Write

# What the loopback store was sent, back in the contract's field names.
_PRODUCT_FIELDS = {"title": "title", "descriptionHtml": "description", "vendor": "brand", "productType": "category"}


def shopify_connection(account, sandbox: ShopifySandbox, name: str = "Website", **fields: Any) -> ShopifyConnection:
    """A connection of this account to the loopback store (token, signing secret and location set)."""
    values = {
        "shop_domain": sandbox.store.shop_domain,
        "access_token": DEFAULT_TOKEN,
        "webhook_secret": DEFAULT_SECRET,
        "location_id": LOCATION_ID,
        "api_url": sandbox.endpoint,
        # The connection's own default: a loopback store on a busy 2-vCPU CI machine has been seen to take
        # longer than 2 s to answer. Tests of a timeout set their own, shorter one.
        "timeout_seconds": 10.0,
        "priority": 10,
    }
    values.update(fields)
    return ShopifyConnection.objects.create(account=account, name=name, **values)


class ShopifyMarket:
    """The loopback Shopify store and this shop's connection to it, for the end-to-end tests.

    Faults: error_rate, rate_limit_rate (THROTTLED answers), timeout_rate, timeout_delay, seed;
    bucket_size and restore_rate set the store's cost bucket.
    """

    channel = "shopify"

    def __init__(
        self,
        account,
        name: str,
        *,
        webhook_base: str | None = None,
        priority: int = 10,
        timeout: float = 2.0,
        seed: int = 0,
        bucket_size: float = 2000.0,
        restore_rate: float = 100.0,
        **faults: Any,
    ) -> None:
        self.account = account
        self.name = name
        self.webhook_base = webhook_base
        self.priority = priority
        self.timeout = timeout
        faults.pop("retry_after", None)  # Shopify says when to retry through its cost figures
        if "rate_limit_rate" in faults:
            faults["throttle_rate"] = faults.pop("rate_limit_rate")
        self.sandbox = ShopifySandbox(
            seed=seed, shop_domain=SHOP_DOMAIN, bucket_size=bucket_size, restore_rate=restore_rate, **faults
        )
        self.connection: ChannelConnection | None = None

    def __enter__(self) -> ShopifyMarket:
        self.sandbox.start()
        self.connection = shopify_connection(
            self.account, self.sandbox, self.name, priority=self.priority, timeout_seconds=self.timeout
        )
        if self.webhook_base:
            self.sandbox.webhook_urls.append(self.webhook_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.sandbox.stop()

    @property
    def webhook_url(self) -> str:
        return self.webhook_base.rstrip("/") + self.connection.webhook_path

    # --- the buyer's and the seller's side -----------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, webhook: bool = True) -> str:
        """A buyer checks out (signed orders/create and orders/paid go out before this returns); the order id."""
        return self.sandbox.simulate_sale(sku, quantity=quantity, deliver_webhook=webhook)["legacyResourceId"]

    def order_delivery(self, order_id: str) -> tuple[str, bytes, dict[str, str]]:
        """(url, body, headers) of the signed orders/create delivery of an order, as Shopify sends it."""
        order = self.sandbox.store.orders[int(order_id)]
        body = json.dumps(self.sandbox.order_payload(order)).encode()
        return self.webhook_url, body, self.sandbox.webhook_headers("orders/create", body)

    def list_directly(self, sku: str, *, title: str, price: str, quantity: int = 1) -> ListingSeen:
        return mappers.listing_seen(self.sandbox.add_product(sku, title=title, price=price, quantity=quantity))

    # --- what the store holds -------------------------------------------------------------

    def offered(self, sku: str) -> list[ListingSeen]:
        return [mappers.listing_seen(p, sku) for p in self.sandbox.products(sku=sku)]

    def seen(self, external_id: str) -> ListingSeen | None:
        product = self.sandbox.product(external_id)
        return None if product is None else mappers.listing_seen(product)

    def listing_count_by_sku(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for product in self.sandbox.products():
            for variant in mappers.nodes(product["variants"]):
                counts[variant["sku"]] = counts.get(variant["sku"], 0) + 1
        return counts

    def order_ids(self) -> list[str]:
        return [str(order["number"]) for order in self.sandbox.orders()]

    # --- what the store was sent --------------------------------------------------------

    def writes(self, external_id: str | None = None) -> list[Write]:
        return [w for w in self.requests(external_id) if w.kind != "read"]

    def requests(self, external_id: str | None = None) -> list[Write]:
        """Calls about products: create, revise, stock, end (status DRAFT) and read (by id), oldest first."""
        found = []
        for request in self.sandbox.requests():
            variables = request.variables or {}
            if request.operation == "ProductSet":
                product_input = variables.get("input") or {}
                kind, product_id = ("revise", product_input["id"]) if product_input.get("id") else ("create", "")
                fields = {k: v for name, k in _PRODUCT_FIELDS.items() if (v := product_input.get(name)) is not None}
            elif request.operation == "ProductUpdate":
                product_input = variables.get("product") or {}
                product_id = product_input.get("id", "")
                kind = "end" if product_input.get("status") == "DRAFT" else "revise"
                fields = {k: v for name, k in _PRODUCT_FIELDS.items() if (v := product_input.get(name)) is not None}
            elif request.operation == "VariantsBulkUpdate":
                kind, product_id = "revise", variables.get("productId", "")
                fields = {}
                for variant in variables.get("variants") or []:
                    if variant.get("price") is not None:
                        fields["price"] = Decimal(variant["price"])
            elif request.operation == "InventorySet":
                [quantity] = variables["input"]["quantities"]
                kind, product_id = "stock", self._product_of_item(quantity["inventoryItemId"])
                fields = {"quantity": quantity["quantity"]}
            elif request.operation == "Product":
                kind, product_id, fields = "read", variables.get("id", ""), {}
            else:
                continue  # lookups by SKU, pages, orders, the shop
            if external_id is None or product_id == str(external_id):
                found.append(Write(kind, product_id, fields, request.status))
        return found

    def _product_of_item(self, inventory_item_id: str) -> str:
        number = int(str(inventory_item_id).rsplit("/", 1)[-1])
        item = self.sandbox.store.items.get(number)
        if item is None:
            return ""
        variant = self.sandbox.store.variants.get(item["variant"])
        return f"gid://shopify/Product/{variant['product']}" if variant else ""

    @property
    def calls(self) -> int:
        return self.sandbox.calls()

    def reset_log(self) -> None:
        self.sandbox.reset_log()

    def set_faults(self, **faults: Any) -> None:
        if "rate_limit_rate" in faults:
            faults["throttle_rate"] = faults.pop("rate_limit_rate")
        faults.pop("retry_after", None)
        self.sandbox.set_faults(**faults)

    def go_down(self) -> None:
        self.sandbox.set_faults(error_rate=1.0, throttle_rate=0.0, timeout_rate=0.0)
