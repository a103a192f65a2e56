"""The loopback shop's state: products, orders, webhooks, categories, and the rules WooCommerce applies.

Answers are shaped as WooCommerce 8/9 returns them, with more fields than the docs list (a
real store's plugins add their own), so readers that choke on an unknown field fail here
first. Errors are WordPress's `{code, message, data: {status}}` with WooCommerce's own codes.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

WEBHOOK_TOPICS = frozenset(
    f"{resource}.{event}"
    for resource in ("order", "product", "customer", "coupon")
    for event in ("created", "updated", "deleted", "restored")
)
STOCK_HOLDING = frozenset({"on-hold", "processing", "completed"})
DEFAULT_CATEGORIES = {15: "Uncategorized", 17: "Electric Guitars", 18: "Amplifiers", 19: "Effects"}
BATCH_LIMIT = 100


class SandboxError(Exception):
    """A test asked the sandbox for something it cannot do (no such product, nothing left to sell)."""


def error(status: int, code: str, message: str, **data: Any) -> tuple[int, dict]:
    return status, {"code": code, "message": message, "data": {"status": status, **data}}


SITE_OFFSET = timedelta(hours=-5)  # the site runs on UTC-5 (New York): a GMT time sent without dates_are_gmt misses 5 h


def _gmt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _local(gmt_text: str) -> str:
    parsed = _parse_after(gmt_text)
    return (parsed + SITE_OFFSET).strftime("%Y-%m-%dT%H:%M:%S") if parsed else gmt_text


def _localise(out: dict) -> dict:
    for name in ("date_created", "date_modified", "date_paid"):
        if out.get(f"{name}_gmt"):
            out[name] = _local(out[f"{name}_gmt"])
    return out


def _parse_after(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class WooStore:
    """Everything the shop holds, behind one lock."""

    def __init__(self, root_url: Callable[[], str], *, clock: Callable[[], datetime] | None = None) -> None:
        self.root_url = root_url
        self.clock = clock or (lambda: datetime.now(UTC))
        self.lock = threading.RLock()
        self.products: dict[int, dict] = {}
        self.orders: dict[int, dict] = {}
        self.webhooks: dict[int, dict] = {}
        self.categories = dict(DEFAULT_CATEGORIES)
        self.refused_skus: dict[str, str] = {}  # sku -> message: the shop refuses these (a plugin's rule)
        self.currency = "USD"
        self._next_product = 101
        self._next_order = 5001
        self._next_webhook = 1
        self._next_image = 9001

    # --- keeping the shop across restarts (the demo's sandbox) ------------------------

    _STATE = ("products", "orders", "webhooks", "categories", "refused_skus", "currency")
    _COUNTERS = ("_next_product", "_next_order", "_next_webhook", "_next_image")

    def save(self, path: str) -> None:
        """Write everything the shop holds to `path` (atomically: a crash never leaves half a file)."""
        with self.lock:
            state = {name: getattr(self, name) for name in (*self._STATE, *self._COUNTERS)}
            text = json.dumps(state)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        temporary = f"{path}.tmp"
        with open(temporary, "w") as out:
            out.write(text)
        os.replace(temporary, path)

    def load(self, path: str) -> bool:
        """Read a state written by save(); False when there is none yet."""
        if not os.path.exists(path):
            return False
        with open(path) as source:
            state = json.load(source)
        with self.lock:
            for name in ("products", "orders", "webhooks", "categories"):
                setattr(self, name, {int(k): v for k, v in state.get(name, {}).items()})
            self.refused_skus = dict(state.get("refused_skus", {}))
            self.currency = state.get("currency", self.currency)
            for name in self._COUNTERS:
                setattr(self, name, int(state.get(name, getattr(self, name))))
        return True

    def now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    # --- products ---------------------------------------------------------------------

    def _sku_taken(self, sku: str, except_id: int | None = None) -> bool:
        return (
            any(p["sku"] == sku and p["id"] != except_id and p["status"] != "trash" for p in self.products.values())
            if sku
            else False
        )

    def _apply(self, product: dict, body: Mapping[str, Any]) -> tuple[int, dict] | None:
        """Apply a create/update body; an error answer when the shop would refuse it."""
        if "sku" in body:
            sku = str(body["sku"] or "")
            if sku in self.refused_skus:
                return error(400, "woocommerce_rest_product_not_created", self.refused_skus[sku])
            if self._sku_taken(sku, product.get("id")):
                return error(400, "product_invalid_sku", "Invalid or duplicated SKU.", resource_id=product.get("id", 0))
            product["sku"] = sku
        for price in ("regular_price", "sale_price"):
            if price in body:
                text = str(body[price] or "")
                if text:
                    try:
                        Decimal(text)
                    except InvalidOperation:
                        return error(400, "rest_invalid_param", f"Invalid parameter(s): {price}")
                product[price] = text
        for name in ("name", "description", "short_description", "status", "type", "backorders", "catalog_visibility"):
            if name in body:
                product[name] = body[name]
        if "name" in body and not product.get("slug"):
            product["slug"] = re.sub(r"[^a-z0-9]+", "-", str(body["name"]).lower()).strip("-")
        if "manage_stock" in body:
            product["manage_stock"] = bool(body["manage_stock"])
        if "stock_quantity" in body:
            product["stock_quantity"] = int(body["stock_quantity"]) if body["stock_quantity"] is not None else None
        if "images" in body:
            images = []
            for position, image in enumerate(body["images"] or []):
                if not str(image.get("src") or "").startswith(("http://", "https://")) and "id" not in image:
                    return error(
                        400,
                        "woocommerce_product_image_upload_error",
                        f"Error getting remote image {image.get('src')}.",
                    )
                self._next_image += 1
                images.append(
                    {
                        "id": image.get("id") or self._next_image,
                        "date_created": _gmt(self.now()),
                        "date_created_gmt": _gmt(self.now()),
                        "date_modified": _gmt(self.now()),
                        "date_modified_gmt": _gmt(self.now()),
                        "src": image.get("src", ""),
                        "name": str(image.get("src", "")).rsplit("/", 1)[-1],
                        "alt": image.get("alt", ""),
                        "position": image.get("position", position),
                    }
                )
            product["images"] = images
        if "categories" in body:
            product["categories"] = [
                {"id": c["id"], "name": self.categories.get(c["id"], ""), "slug": f"cat-{c['id']}"}
                for c in body["categories"] or []
            ]
        if "attributes" in body:
            product["attributes"] = [
                {
                    "id": 0,
                    "name": a.get("name", ""),
                    "slug": str(a.get("name", "")).lower(),
                    "position": a.get("position", i),
                    "visible": a.get("visible", False),
                    "variation": a.get("variation", False),
                    "options": list(a.get("options") or []),
                }
                for i, a in enumerate(body["attributes"] or [])
            ]
        if product.get("manage_stock"):
            quantity = product.get("stock_quantity") or 0
            product["stock_status"] = "instock" if quantity > 0 else "outofstock"
        product["price"] = product.get("sale_price") or product.get("regular_price") or ""
        product["date_modified_gmt"] = _gmt(self.now())
        product["date_modified"] = product["date_modified_gmt"]
        return None

    def create_product(self, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            now = _gmt(self.now())
            product = {
                "id": 0,
                "name": "",
                "slug": "",
                "date_created": now,
                "date_created_gmt": now,
                "type": "simple",
                "status": "publish",
                "featured": False,
                "catalog_visibility": "visible",
                "description": "",
                "short_description": "",
                "sku": "",
                "regular_price": "",
                "sale_price": "",
                "manage_stock": False,
                "stock_quantity": None,
                "stock_status": "instock",
                "backorders": "no",
                "images": [],
                "categories": [{"id": 15, "name": "Uncategorized", "slug": "uncategorized"}],
                "attributes": [],
                "total_sales": 0,
            }
            refused = self._apply(product, body)
            if refused:
                return refused
            product["id"] = self._next_product
            self._next_product += 1
            self.products[product["id"]] = product
            return 201, self.render_product(product)

    def update_product(self, product_id: int, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            product = self.products.get(product_id)
            if product is None:
                return error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            updated = dict(product)
            refused = self._apply(updated, {k: v for k, v in body.items() if k != "id"})
            if refused:
                return refused
            self.products[product_id] = updated
            return 200, self.render_product(updated)

    def get_product(self, product_id: int) -> tuple[int, dict]:
        with self.lock:
            product = self.products.get(product_id)
            if product is None:
                return error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            return 200, self.render_product(product)

    def delete_product(self, product_id: int, force: bool) -> tuple[int, dict]:
        with self.lock:
            product = self.products.get(product_id)
            if product is None:
                return error(404, "woocommerce_rest_product_invalid_id", "Invalid ID.")
            if force:
                del self.products[product_id]
            else:
                product["status"] = "trash"
            return 200, self.render_product(product)

    def list_products(self, query: Mapping[str, Any]) -> list[dict]:
        with self.lock:
            found = list(self.products.values())
        status = query.get("status", "any")
        found = (
            [p for p in found if p["status"] != "trash"]
            if status == "any"
            else [p for p in found if p["status"] == status]
        )
        if "sku" in query:
            found = [p for p in found if p["sku"] == query["sku"]]
        if query.get("include"):
            wanted = set(query["include"])
            found = [p for p in found if p["id"] in wanted]
        found = _modified_filter(found, query)
        reverse = query.get("order", "desc") == "desc"
        key = query.get("orderby", "date")
        found.sort(
            key=(lambda p: p["id"]) if key in ("id", "date", "include") else (lambda p: p.get("name", "")),
            reverse=reverse,
        )
        return [self.render_product(p) for p in found]

    def batch(self, body: Mapping[str, Any]) -> tuple[int, dict]:
        total = sum(len(body.get(op) or []) for op in ("create", "update", "delete"))
        if total > BATCH_LIMIT:
            return error(
                413,
                "woocommerce_rest_request_entity_too_large",
                f"Unable to accept more than {BATCH_LIMIT} items for this request.",
            )
        answer: dict[str, list] = {}
        for operation in ("create", "update", "delete"):
            if operation not in body:
                continue
            results = []
            for obj in body[operation]:
                if operation == "create":
                    status, out = self.create_product(obj)
                elif operation == "update":
                    status, out = self.update_product(int(obj["id"]), obj)
                else:
                    status, out = self.delete_product(int(obj), force=True)
                if status >= 400:
                    item_id = obj.get("id", 0) if isinstance(obj, dict) else obj
                    out = {"id": item_id, "error": out}
                results.append(out)
            answer[operation] = results
        return 200, answer

    def render_product(self, product: Mapping[str, Any]) -> dict:
        root = self.root_url()
        out = dict(product)
        out["permalink"] = f"{root}/product/{product.get('slug') or product['id']}/"
        out["on_sale"] = bool(product.get("sale_price"))
        out["purchasable"] = product["status"] == "publish" and bool(product.get("price"))
        # What real stores add beyond the docs: must be ignored by readers.
        out["meta_data"] = [{"id": 1, "key": "_wpcom_is_markdown", "value": "1"}]
        out["jetpack_sharing_enabled"] = True
        out["brands"] = []
        out["_links"] = {
            "self": [{"href": f"{root}/wp-json/wc/v3/products/{product['id']}"}],
            "collection": [{"href": f"{root}/wp-json/wc/v3/products"}],
        }
        return _localise(out)

    # --- orders -----------------------------------------------------------------------

    def sell(
        self,
        ref: str | int,
        *,
        quantity: int = 1,
        status: str = "processing",
        placed_at: datetime | None = None,
        buyer: Mapping[str, str] | None = None,
    ) -> dict:
        """A checkout on the shop's website. Stock goes down for on-hold/processing/completed orders."""
        with self.lock:
            product = self.find_product(ref)
            if product is None:
                raise SandboxError(f"No product {ref!r}.")
            if product["status"] != "publish":
                raise SandboxError(f"Product {product['id']} is {product['status']}: it cannot be bought.")
            if product.get("manage_stock") and (product.get("stock_quantity") or 0) < quantity:
                raise SandboxError(f"Product {product['id']} has {product.get('stock_quantity')} in stock.")
            placed = (placed_at or self.now()).astimezone(UTC).replace(microsecond=0)
            price = Decimal(product.get("price") or "0")
            buyer = dict(buyer or {})
            order_id = self._next_order
            self._next_order += 1
            order = {
                "id": order_id,
                "parent_id": 0,
                "number": str(order_id),
                "order_key": f"wc_order_{order_id:08d}",
                "created_via": "checkout",
                "version": "9.4.2",
                "status": "pending",
                "currency": self.currency,
                "date_created": _gmt(placed),
                "date_created_gmt": _gmt(placed),
                "date_modified": _gmt(self.now()),
                "date_modified_gmt": _gmt(self.now()),
                "discount_total": "0.00",
                "shipping_total": "25.00",
                "total_tax": "0.00",
                "total": str(price * quantity + Decimal("25.00")),
                "customer_id": 0,
                "billing": {
                    "first_name": buyer.get("first_name", "Dana"),
                    "last_name": buyer.get("last_name", "Buyer"),
                    "email": buyer.get("email", "dana@example.com"),
                    "address_1": "1 Main St",
                    "city": "Nashville",
                    "state": "TN",
                    "postcode": "37201",
                    "country": "US",
                },
                "shipping": {
                    "first_name": buyer.get("first_name", "Dana"),
                    "last_name": buyer.get("last_name", "Buyer"),
                    "address_1": "1 Main St",
                    "address_2": "",
                    "city": "Nashville",
                    "state": "TN",
                    "postcode": "37201",
                    "country": "US",
                },
                "payment_method": "stripe",
                "line_items": [
                    {
                        "id": order_id * 10,
                        "name": product["name"],
                        "product_id": product["id"],
                        "variation_id": 0,
                        "quantity": quantity,
                        "sku": product["sku"],
                        "price": float(price),  # WooCommerce sends the line price as a number
                        "subtotal": str(price * quantity),
                        "total": str(price * quantity),
                        "meta_data": [],
                    }
                ],
                "shipping_lines": [],
                "meta_data": [],
                "_stock_reduced": False,
            }
            self.orders[order_id] = order
            self._set_status(order, status)
            return self.render_order(order)

    def _set_status(self, order: dict, status: str) -> None:
        order["status"] = status
        holds = status in STOCK_HOLDING
        if holds != order["_stock_reduced"]:
            for line in order["line_items"]:
                product = self.products.get(line["product_id"])
                if product and product.get("manage_stock"):
                    change = -line["quantity"] if holds else line["quantity"]
                    product["stock_quantity"] = max(0, (product.get("stock_quantity") or 0) + change)
                    product["stock_status"] = "instock" if product["stock_quantity"] > 0 else "outofstock"
                    product["total_sales"] = product.get("total_sales", 0) + (line["quantity"] if holds else 0)
                    product["date_modified_gmt"] = product["date_modified"] = _gmt(self.now())
            order["_stock_reduced"] = holds
        order["date_modified_gmt"] = order["date_modified"] = _gmt(self.now())
        if status in ("processing", "completed") and not order.get("date_paid_gmt"):
            order["date_paid_gmt"] = order["date_paid"] = _gmt(self.now())

    def set_order_status(self, order_id: int, status: str) -> dict:
        with self.lock:
            order = self.orders.get(int(order_id))
            if order is None:
                raise SandboxError(f"No order {order_id}.")
            self._set_status(order, status)
            return self.render_order(order)

    def update_order(self, order_id: int, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            if "status" in body:
                self._set_status(order, body["status"])
            return 200, self.render_order(order)

    def add_order_note(self, order_id: int, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return error(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
            note = {
                "id": len(order.setdefault("_notes", [])) + 1,
                "note": body["note"],
                "customer_note": bool(body.get("customer_note")),
                "date_created_gmt": _gmt(self.now()),
            }
            order["_notes"].append(note)
            return 201, note

    def get_order(self, order_id: int) -> tuple[int, dict]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return error(404, "woocommerce_rest_shop_order_invalid_id", "Invalid ID.")
            return 200, self.render_order(order)

    def list_orders(self, query: Mapping[str, Any]) -> list[dict]:
        with self.lock:
            found = list(self.orders.values())
        status = query.get("status", "any")
        if status != "any":
            found = [o for o in found if o["status"] == status]
        found = _modified_filter(found, query)
        found.sort(key=lambda o: (o["date_created_gmt"], o["id"]), reverse=query.get("order", "desc") == "desc")
        return [self.render_order(o) for o in found]

    def render_order(self, order: Mapping[str, Any]) -> dict:
        out = {k: v for k, v in order.items() if not k.startswith("_")}
        out["_links"] = {"self": [{"href": f"{self.root_url()}/wp-json/wc/v3/orders/{order['id']}"}]}
        out["is_editable"] = order["status"] in ("pending", "on-hold")
        return _localise(out)

    def find_product(self, ref: str | int) -> dict | None:
        with self.lock:
            if isinstance(ref, int) or (str(ref).isdigit() and int(ref) in self.products):
                return self.products.get(int(ref))
            matches = [p for p in self.products.values() if p["sku"] == str(ref) and p["status"] != "trash"]
            return max(matches, key=lambda p: p["id"]) if matches else None

    # --- webhooks ---------------------------------------------------------------------

    def create_webhook(self, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            topic = str(body.get("topic") or "")
            if topic not in WEBHOOK_TOPICS and not topic.startswith("action."):
                return error(
                    400, "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must be valid."
                )
            url = str(body.get("delivery_url") or "")
            if not url.startswith(("http://", "https://")):
                return error(
                    400, "woocommerce_rest_webhook_invalid_delivery_url", "Webhook delivery URL must be a valid URL."
                )
            webhook_id = self._next_webhook
            self._next_webhook += 1
            now = _gmt(self.now())
            hook = {
                "id": webhook_id,
                "name": body.get("name") or f"Webhook created on {now}",
                "status": body.get("status") or "active",
                "topic": topic,
                "resource": topic.split(".")[0],
                "event": topic.split(".")[1],
                "hooks": [f"woocommerce_{topic.replace('.', '_')}"],
                "delivery_url": url,
                "date_created_gmt": now,
                "date_modified_gmt": now,
                "_secret": str(body.get("secret") or ""),
                "_failures": 0,
            }
            self.webhooks[webhook_id] = hook
            return 201, self.render_webhook(hook)

    def update_webhook(self, webhook_id: int, body: Mapping[str, Any]) -> tuple[int, dict]:
        with self.lock:
            hook = self.webhooks.get(webhook_id)
            if hook is None:
                return error(404, "woocommerce_rest_webhook_invalid_id", "Invalid ID.")
            for name in ("name", "status", "topic", "delivery_url"):
                if name in body:
                    hook[name] = body[name]
            if "secret" in body:
                hook["_secret"] = str(body["secret"])
            if body.get("status") == "active":
                hook["_failures"] = 0
            hook["date_modified_gmt"] = _gmt(self.now())
            return 200, self.render_webhook(hook)

    def render_webhook(self, hook: Mapping[str, Any]) -> dict:
        out = {k: v for k, v in hook.items() if not k.startswith("_")}
        out["secret"] = ""  # never shown back (WooCommerce shows it only in the admin)
        return out

    def webhooks_for(self, topic: str) -> list[dict]:
        with self.lock:
            return [h for h in self.webhooks.values() if h["topic"] == topic and h["status"] == "active"]


def _modified_filter(found: list[dict], query: Mapping[str, Any]) -> list[dict]:
    gmt = query.get("dates_are_gmt") is True
    for name, keep in (("modified_after", lambda a, b: a > b), ("modified_before", lambda a, b: a < b)):
        if name in query:
            limit = _parse_after(str(query[name]))
            if limit is None:
                continue
            if not gmt:  # read in the site's timezone (UTC-5 here), as WooCommerce does without dates_are_gmt
                limit = limit - SITE_OFFSET
            found = [r for r in found if keep(_parse_after(r["date_modified_gmt"]), limit)]
    return found
