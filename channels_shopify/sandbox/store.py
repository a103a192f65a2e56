"""The loopback Shopify's state and what each query and mutation does to it.

Documents are executed by graphql-core against the real 2025-01 Admin schema: the root
value below holds a resolver for each root field the sandbox implements, and every object
is a plain dict shaped like the schema's type (graphql-core's default resolver reads dict
keys, and calls a value that is a function with the field's arguments). A root field the
sandbox does not implement answers an error instead of inventing data.

Behaviour follows Shopify's documentation (CHANNELS.md §3): productSet replaces the list
fields it is given (variants and files left out are deleted) and keeps omitted scalars;
inventorySetQuantities checks the compare quantity (COMPARE_QUANTITY_STALE /
COMPARE_QUANTITY_REQUIRED); variant search by SKU is a prefix search, as fuzzy as Shopify's.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

SHOP_DOMAIN = "sandbox-guitars.myshopify.com"
LOCATION_ID = "gid://shopify/Location/1"
INVENTORY_NAMES = ("available", "on_hand")
INVENTORY_REASONS = (
    "correction",
    "cycle_count_available",
    "damaged",
    "movement_created",
    "movement_updated",
    "movement_received",
    "movement_canceled",
    "other",
    "promotion",
    "quality_control",
    "received",
    "reservation_created",
    "reservation_deleted",
    "reservation_updated",
    "restock",
    "safety_stock",
    "shrinkage",
)


class SandboxError(Exception):
    """A request the sandbox answers with a top-level GraphQL error."""

    def __init__(self, message: str, code: str = "BAD_REQUEST"):
        super().__init__(message)
        self.code = code


def _gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def _num(gid: Any, kind: str) -> int | None:
    match = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(gid or ""))
    return int(match.group(1)) if match else None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _money(amount: Decimal, currency: str) -> dict:
    money = {"amount": f"{amount:.2f}", "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _error(field: list[str], message: str, code: str | None = None) -> dict:
    error: dict[str, Any] = {"field": field, "message": message}
    if code:
        error["code"] = code
    return error


# --- Shopify's search syntax (the part the back office uses) ---------------------------

_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?("(?:[^"\\]|\\.)*"|'[^']*'|\S+)""")


def parse_search(query: str | None) -> list[tuple[str, str, str]]:
    terms = []
    for name, op, value in _TERM.findall(query or ""):
        if value[:1] in "\"'":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((name.lower(), op or "=", value))
    return terms


def _time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _compare(actual: datetime, op: str, wanted: datetime) -> bool:
    return {
        ">": actual > wanted,
        ">=": actual >= wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
        "=": actual == wanted,
    }[op]


# --- paging -------------------------------------------------------------------------------


def _cursor(key: tuple) -> str:
    return base64.b64encode(json.dumps(list(key)).encode()).decode()


def _uncursor(cursor: str) -> tuple:
    try:
        return tuple(json.loads(base64.b64decode(cursor)))
    except (ValueError, TypeError):
        raise SandboxError(f"Invalid cursor for current pagination sort: {cursor!r}", "BAD_REQUEST") from None


def page(
    items: list[Any],
    key: Callable[[Any], tuple],
    view: Callable[[Any], dict],
    *,
    first=None,
    after=None,
    last=None,
    before=None,
    reverse=False,
) -> dict:
    """A connection of `items` (sorted by `key`), cursor-paged by key so changes between pages shift nothing."""
    if first is None and last is None:
        raise SandboxError("you must provide one of first or last", "BAD_REQUEST")
    if (first or 0) > 250 or (last or 0) > 250:
        raise SandboxError("The first and last arguments must not exceed 250", "BAD_REQUEST")
    ordered = sorted(items, key=key, reverse=bool(reverse))
    if after:
        mark = _uncursor(after)
        ordered = [i for i in ordered if (list(key(i)) < list(mark) if reverse else list(key(i)) > list(mark))]
    if before:
        mark = _uncursor(before)
        ordered = [i for i in ordered if (list(key(i)) > list(mark) if reverse else list(key(i)) < list(mark))]
    has_previous = False
    if first is not None:
        chunk, has_next = ordered[:first], len(ordered) > first
    else:
        chunk, has_next = ordered[-last:] if last else [], False
        has_previous = len(ordered) > (last or 0)
    views = [view(i) for i in chunk]
    cursors = [_cursor(key(i)) for i in chunk]
    return {
        "nodes": views,
        "edges": [{"node": v, "cursor": c} for v, c in zip(views, cursors, strict=True)],
        "pageInfo": {
            "hasNextPage": has_next,
            "hasPreviousPage": has_previous or bool(after),
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
    }


class ShopifyStore:
    """Products (one or more variants), inventory levels per location, orders, webhook subscriptions."""

    def __init__(
        self, *, shop_domain: str = SHOP_DOMAIN, currency: str = "USD", clock: Callable[[], datetime] | None = None
    ) -> None:
        self.lock = threading.RLock()
        self.shop_domain = shop_domain
        self.currency = currency
        self._clock = clock or (lambda: datetime.now(UTC))
        self._next = 1001
        self._last_time: datetime | None = None
        self.locations: dict[str, dict] = {LOCATION_ID: {"id": LOCATION_ID, "name": "Shop floor", "isActive": True}}
        self.products: dict[int, dict] = {}
        self.variants: dict[int, dict] = {}
        self.items: dict[int, dict] = {}  # inventory items, by number: {sku, tracked, levels: {location: qty}}
        self.orders: dict[int, dict] = {}
        self.subscriptions: dict[int, dict] = {}
        self._next_order = 1001

    # --- time and ids -------------------------------------------------------------------

    def now(self) -> datetime:
        """Shopify's times have whole seconds; never earlier than the last one given (several changes may
        share a second, as on Shopify, and the cursors order those by id)."""
        now = self._clock().replace(microsecond=0)
        if self._last_time is not None and now < self._last_time:
            now = self._last_time
        self._last_time = now
        return now

    def next_id(self) -> int:
        with self.lock:
            self._next += 1
            return self._next - 1

    _KEPT = ("products", "variants", "items", "orders", "subscriptions", "locations", "_next", "_next_order")

    def save(self, path: str) -> None:
        """Write the store's state to `path` (atomically: a crash never leaves half a file)."""
        with self.lock:
            state = {name: getattr(self, name) for name in self._KEPT}
            tmp = f"{path}.tmp"
            with open(tmp, "wb") as out:
                pickle.dump(state, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)

    def load(self, path: str) -> bool:
        """Read the state `save` wrote (this sandbox's own file). Returns whether there was one."""
        if not os.path.exists(path):
            return False
        with open(path, "rb") as source, self.lock:
            state = pickle.load(source)  # the sandbox's own file, written by save()
            for name in self._KEPT:
                setattr(self, name, state[name])
        return True

    # --- views (dicts shaped like the schema's types) -------------------------------------

    def product_view(self, product: dict) -> dict:
        number = product["number"]
        status = product["status"]
        return {
            "__typename": "Product",
            "id": _gid("Product", number),
            "legacyResourceId": str(number),
            "title": product["title"],
            "handle": product["handle"],
            "status": status,
            "descriptionHtml": product["descriptionHtml"],
            "vendor": product["vendor"],
            "productType": product["productType"],
            "tags": list(product["tags"]),
            "createdAt": _iso(product["createdAt"]),
            "updatedAt": _iso(product["updatedAt"]),
            "onlineStoreUrl": f"https://{self.shop_domain}/products/{product['handle']}"
            if status == "ACTIVE"
            else None,
            "seo": dict(product["seo"]),
            "media": lambda info, **args: page(
                list(enumerate(product["files"])), lambda f: (f[0],), self._media_view, **_paging(args)
            ),
            "variants": lambda info, **args: page(
                [self.variants[v] for v in product["variants"]],
                lambda v: (v["number"],),
                self.variant_view,
                **_paging(args),
            ),
        }

    def _media_view(self, indexed: tuple[int, dict]) -> dict:
        _index, file = indexed
        return {
            "__typename": "MediaImage",
            "id": _gid("MediaImage", file["number"]),
            "alt": file["alt"],
            "mediaContentType": "IMAGE",
            "status": "READY",
            "image": {"url": file["url"], "altText": file["alt"], "id": _gid("ProductImage", file["number"])},
        }

    def variant_view(self, variant: dict) -> dict:
        item = self.items[variant["item"]]
        return {
            "__typename": "ProductVariant",
            "id": _gid("ProductVariant", variant["number"]),
            "legacyResourceId": str(variant["number"]),
            "title": variant["title"],
            "sku": item["sku"],
            "price": f"{variant['price']:.2f}",
            "compareAtPrice": f"{variant['compareAtPrice']:.2f}" if variant.get("compareAtPrice") is not None else None,
            "inventoryQuantity": sum(item["levels"].values()),
            "inventoryItem": self.item_view(variant["item"]),
            "product": lambda info, **args: self.product_view(self.products[variant["product"]]),
        }

    def item_view(self, number: int) -> dict:
        item = self.items[number]

        def level(info, locationId):
            location = str(locationId)
            if location not in item["levels"]:
                return None
            return {
                "id": f"gid://shopify/InventoryLevel/{number}?inventory_item_id={number}",
                "quantities": lambda info, names: [
                    {
                        "id": f"gid://shopify/InventoryQuantity/{number}-{n}",
                        "name": n,
                        "quantity": item["levels"][location],
                        "updatedAt": None,
                    }
                    for n in names
                    if n in INVENTORY_NAMES
                ],
                "location": dict(self.locations.get(location) or {"id": location, "name": "?", "isActive": False}),
            }

        return {
            "__typename": "InventoryItem",
            "id": _gid("InventoryItem", number),
            "sku": item["sku"],
            "tracked": item["tracked"],
            "inventoryLevel": level,
        }

    def order_view(self, order: dict) -> dict:
        currency = order["currency"]
        lines = order["lines"]
        return {
            "__typename": "Order",
            "id": _gid("Order", order["number"]),
            "legacyResourceId": str(order["number"]),
            "name": order["name"],
            "createdAt": _iso(order["createdAt"]),
            "updatedAt": _iso(order["updatedAt"]),
            "processedAt": _iso(order["createdAt"]),
            "cancelledAt": _iso(order["cancelledAt"]) if order.get("cancelledAt") else None,
            "displayFinancialStatus": order["financialStatus"],
            "currencyCode": currency,
            "email": order["email"],
            "customer": {"displayName": order["buyer"], "email": order["email"]} if order["buyer"] else None,
            "shippingAddress": dict(order["address"]) if order["address"] else None,
            "subtotalPriceSet": _money(order["subtotal"], currency),
            "totalShippingPriceSet": _money(order["shipping"], currency),
            "totalTaxSet": _money(Decimal("0"), currency),
            "totalPriceSet": _money(order["subtotal"] + order["shipping"], currency),
            "lineItems": lambda info, **args: page(
                list(enumerate(lines)), lambda i: (i[0],), lambda i: self._line_view(i[1], currency), **_paging(args)
            ),
        }

    def _line_view(self, line: dict, currency: str) -> dict:
        product = self.products.get(line["product"])
        variant = self.variants.get(line["variant"])
        return {
            "id": _gid("LineItem", line["number"]),
            "sku": line["sku"],
            "title": line["title"],
            "quantity": line["quantity"],
            "currentQuantity": 0 if line.get("refunded") else line["quantity"],
            "originalUnitPriceSet": _money(line["price"], currency),
            "product": self.product_view(product) if product else None,
            "variant": self.variant_view(variant) if variant else None,
        }

    # --- root fields --------------------------------------------------------------------

    def root(self) -> dict[str, Any]:
        """The root value for graphql-core: query and mutation fields the sandbox implements."""
        return {
            "shop": lambda info: {
                "name": "Sandbox Guitars",
                "myshopifyDomain": self.shop_domain,
                "currencyCode": self.currency,
            },
            "location": lambda info, id: dict(self.locations[id]) if id in self.locations else None,
            "locations": lambda info, **args: page(
                list(self.locations.values()), lambda loc: (loc["id"],), dict, **_paging(args)
            ),
            "product": lambda info, id: self._product_or_none(id),
            "products": self._products,
            "productVariants": self._product_variants,
            "order": lambda info, id: (
                self.order_view(self.orders[_num(id, "Order")]) if _num(id, "Order") in self.orders else None
            ),
            "orders": self._orders,
            "webhookSubscriptions": lambda info, **args: page(
                list(self.subscriptions.values()), lambda s: (s["number"],), self._subscription_view, **_paging(args)
            ),
            "productSet": self._product_set,
            "productUpdate": self._product_update,
            "productVariantsBulkUpdate": self._variants_bulk_update,
            "inventorySetQuantities": self._inventory_set,
            "webhookSubscriptionCreate": self._subscription_create,
            "webhookSubscriptionUpdate": self._subscription_update,
        }

    def _product_or_none(self, gid: str) -> dict | None:
        number = _num(gid, "Product")
        return self.product_view(self.products[number]) if number in self.products else None

    def _products(self, info, query=None, sortKey=None, **args) -> dict:
        products = [p for p in self.products.values() if self._product_matches(p, parse_search(query))]
        key = (lambda p: (_iso(p["updatedAt"]), p["number"])) if sortKey == "UPDATED_AT" else (lambda p: (p["number"],))
        return page(products, key, self.product_view, **_paging(args))

    def _product_matches(self, product: dict, terms) -> bool:
        for name, op, value in terms:
            if name == "updated_at":
                wanted = _time(value)
                if wanted is None or not _compare(product["updatedAt"], op, wanted):
                    return False
            elif name == "status":
                if product["status"].lower() not in value.lower().split(","):
                    return False
            elif name == "sku":
                skus = [self.items[self.variants[v]["item"]]["sku"].lower() for v in product["variants"]]
                if not any(s.startswith(value.lower()) for s in skus):
                    return False
        return True

    def _product_variants(self, info, query=None, **args) -> dict:
        terms = parse_search(query)
        found = []
        for variant in self.variants.values():
            sku = self.items[variant["item"]]["sku"].lower()
            if all(not (n == "sku" and not sku.startswith(v.lower())) for n, _op, v in terms):
                found.append(variant)
        return page(found, lambda v: (v["number"],), self.variant_view, **_paging(args))

    def _orders(self, info, query=None, sortKey=None, **args) -> dict:
        terms = parse_search(query)
        orders = []
        for order in self.orders.values():
            keep = True
            for name, op, value in terms:
                if name in ("updated_at", "created_at"):
                    wanted = _time(value)
                    field = order["updatedAt"] if name == "updated_at" else order["createdAt"]
                    keep = keep and wanted is not None and _compare(field, op, wanted)
            if keep:
                orders.append(order)
        key = (lambda o: (_iso(o["updatedAt"]), o["number"])) if sortKey == "UPDATED_AT" else (lambda o: (o["number"],))
        return page(orders, key, self.order_view, **_paging(args))

    def _subscription_view(self, sub: dict) -> dict:
        return {
            "id": _gid("WebhookSubscription", sub["number"]),
            "topic": sub["topic"],
            "format": sub["format"],
            "callbackUrl": sub["callbackUrl"],
            "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub["callbackUrl"]},
        }

    # --- mutations ----------------------------------------------------------------------

    def _product_set(self, info, input, synchronous=True) -> dict:
        errors: list[dict] = []
        product_id = input.get("id")
        product = None
        if product_id:
            product = self.products.get(_num(product_id, "Product"))
            if product is None:
                return {
                    "product": None,
                    "productSetOperation": None,
                    "userErrors": [_error(["input", "id"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")],
                }
        title = input.get("title", product["title"] if product else None)
        if not (title or "").strip():
            errors.append(_error(["input", "title"], "Title can't be blank", "INVALID_INPUT"))
        elif len(title) > 255:
            errors.append(_error(["input", "title"], "Title is too long (maximum is 255 characters)", "INVALID_INPUT"))
        variants_in = input.get("variants")
        options = input.get("productOptions")
        if variants_in is not None:
            if not options:
                errors.append(
                    _error(
                        ["input", "productOptions"],
                        "Product options input is required when updating variants",
                        "PRODUCT_OPTIONS_INPUT_MISSING",
                    )
                )
            else:
                allowed = {(o.get("name"), v.get("name")) for o in options for v in o.get("values") or []}
                for n, variant in enumerate(variants_in):
                    for value in variant.get("optionValues") or []:
                        if (value.get("optionName"), value.get("name")) not in allowed:
                            errors.append(
                                _error(
                                    ["input", "variants", str(n), "optionValues"],
                                    "Option value does not exist",
                                    "OPTION_VALUE_DOES_NOT_EXIST",
                                )
                            )
                    if variant.get("id") and (
                        _num(variant["id"], "ProductVariant") not in (product or {}).get("variants", [])
                    ):
                        errors.append(
                            _error(
                                ["input", "variants", str(n), "id"],
                                "Product variant does not exist",
                                "PRODUCT_VARIANT_DOES_NOT_EXIST",
                            )
                        )
                    price = variant.get("price")
                    if price is not None and _decimal(price) is None:
                        errors.append(
                            _error(["input", "variants", str(n), "price"], "Price is invalid", "INVALID_VARIANT")
                        )
                    elif price is not None and _decimal(price) < 0:
                        errors.append(
                            _error(
                                ["input", "variants", str(n), "price"],
                                "Price must be greater than or equal to 0",
                                "INVALID_VARIANT",
                            )
                        )
                    for quantity in variant.get("inventoryQuantities") or []:
                        if quantity.get("locationId") not in self.locations:
                            errors.append(
                                _error(
                                    ["input", "variants", str(n), "inventoryQuantities"],
                                    "Location does not exist",
                                    "INVALID_INPUT",
                                )
                            )
        elif product is None:
            errors.append(
                _error(
                    ["input", "variants"],
                    "Variants input is required when creating a product",
                    "VARIANTS_INPUT_MISSING",
                )
            )
        if errors:
            return {"product": None, "productSetOperation": None, "userErrors": errors}

        now = self.now()
        if product is None:
            number = self.next_id()
            product = {
                "number": number,
                "title": title,
                "handle": self._handle(title, number),
                "status": "ACTIVE",
                "descriptionHtml": "",
                "vendor": "",
                "productType": "",
                "tags": [],
                "seo": {"title": None, "description": None},
                "files": [],
                "variants": [],
                "createdAt": now,
                "updatedAt": now,
            }
            self.products[number] = product
        self._apply_scalars(product, input)
        if "files" in input and input["files"] is not None:
            product["files"] = [
                {"number": self.next_id(), "url": f.get("originalSource") or "", "alt": f.get("alt") or ""}
                for f in input["files"]
            ]
        if variants_in is not None:
            kept = []
            for variant_in in variants_in:
                number = _num(variant_in.get("id"), "ProductVariant")
                if number is None:
                    number = self.next_id()
                    item_number = self.next_id()
                    self.items[item_number] = {"sku": "", "tracked": False, "levels": {}, "variant": number}
                    self.variants[number] = {
                        "number": number,
                        "product": product["number"],
                        "item": item_number,
                        "title": "Default Title",
                        "price": Decimal("0"),
                        "compareAtPrice": None,
                    }
                self._apply_variant(self.variants[number], variant_in)
                kept.append(number)
            for gone in set(product["variants"]) - set(kept):  # left out of the list: deleted
                self.items.pop(self.variants[gone]["item"], None)
                self.variants.pop(gone, None)
            product["variants"] = kept
        product["updatedAt"] = now
        return {"product": self.product_view(product), "productSetOperation": None, "userErrors": []}

    def _handle(self, title: str, number: int) -> str:
        base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "product"
        taken = {p["handle"] for p in self.products.values()}
        return base if base not in taken else f"{base}-{number}"

    def _apply_scalars(self, product: dict, input: dict) -> None:
        for name in ("title", "descriptionHtml", "vendor", "productType", "status"):
            if input.get(name) is not None:
                product[name] = input[name]
        if input.get("tags") is not None:
            product["tags"] = list(input["tags"])
        if input.get("seo") is not None:
            product["seo"] = {"title": input["seo"].get("title"), "description": input["seo"].get("description")}

    def _apply_variant(self, variant: dict, variant_in: dict) -> None:
        item = self.items[variant["item"]]
        if variant_in.get("price") is not None:
            variant["price"] = _decimal(variant_in["price"])
        if "compareAtPrice" in variant_in:
            variant["compareAtPrice"] = _decimal(variant_in["compareAtPrice"])
        if variant_in.get("sku") is not None:
            item["sku"] = variant_in["sku"]
        inventory = variant_in.get("inventoryItem") or {}
        if inventory.get("sku") is not None:
            item["sku"] = inventory["sku"]
        if inventory.get("tracked") is not None:
            item["tracked"] = bool(inventory["tracked"])
        for quantity in variant_in.get("inventoryQuantities") or []:
            item["levels"][quantity["locationId"]] = int(quantity["quantity"])

    def _product_update(self, info, product=None, media=None) -> dict:
        product_in = product or {}
        found = self.products.get(_num(product_in.get("id"), "Product"))
        if found is None:
            return {"product": None, "userErrors": [_error(["id"], "Product does not exist")]}
        if "title" in product_in and not (product_in["title"] or "").strip():
            return {"product": None, "userErrors": [_error(["title"], "Title can't be blank")]}
        if product_in.get("status") is not None and product_in["status"] not in ("ACTIVE", "DRAFT", "ARCHIVED"):
            return {"product": None, "userErrors": [_error(["status"], "Status is invalid")]}
        self._apply_scalars(found, product_in)
        found["updatedAt"] = self.now()
        return {"product": self.product_view(found), "userErrors": []}

    def _variants_bulk_update(self, info, productId, variants, media=None, allowPartialUpdates=False) -> dict:
        product = self.products.get(_num(productId, "Product"))
        if product is None:
            return {
                "product": None,
                "productVariants": None,
                "userErrors": [_error(["productId"], "Product does not exist", "PRODUCT_DOES_NOT_EXIST")],
            }
        errors = []
        for n, variant_in in enumerate(variants):
            number = _num(variant_in.get("id"), "ProductVariant")
            if number not in product["variants"]:
                errors.append(
                    _error(
                        ["variants", str(n), "id"], "Product variant does not exist", "PRODUCT_VARIANT_DOES_NOT_EXIST"
                    )
                )
            elif variant_in.get("price") is not None and (_decimal(variant_in["price"]) or Decimal("-1")) < 0:
                errors.append(
                    _error(["variants", str(n), "price"], "Price must be greater than or equal to 0", "INVALID_INPUT")
                )
        if errors:
            return {"product": None, "productVariants": None, "userErrors": errors}
        for variant_in in variants:
            self._apply_variant(self.variants[_num(variant_in["id"], "ProductVariant")], variant_in)
        product["updatedAt"] = self.now()
        return {
            "product": self.product_view(product),
            "productVariants": [self.variant_view(self.variants[_num(v["id"], "ProductVariant")]) for v in variants],
            "userErrors": [],
        }

    def _inventory_set(self, info, input) -> dict:
        def refused(field, message, code):
            return {"inventoryAdjustmentGroup": None, "userErrors": [_error(field, message, code)]}

        if input["name"] not in INVENTORY_NAMES:
            return refused(
                ["input", "name"], "The quantity name must be either 'available' or 'on_hand'.", "INVALID_NAME"
            )
        if input["reason"] not in INVENTORY_REASONS:
            return refused(["input", "reason"], "The specified reason is invalid.", "INVALID_REASON")
        ignore = bool(input.get("ignoreCompareQuantity"))
        changes = []
        for n, quantity in enumerate(input["quantities"]):
            item = self.items.get(_num(quantity["inventoryItemId"], "InventoryItem"))
            path = ["input", "quantities", str(n)]
            if item is None:
                return refused(
                    [*path, "inventoryItemId"],
                    "The specified inventory item could not be found.",
                    "INVALID_INVENTORY_ITEM",
                )
            if quantity["locationId"] not in self.locations:
                return refused([*path, "locationId"], "The specified location could not be found.", "INVALID_LOCATION")
            if quantity["locationId"] not in item["levels"]:
                return refused(
                    [*path, "locationId"],
                    "The inventory item is not stocked at the location.",
                    "ITEM_NOT_STOCKED_AT_LOCATION",
                )
            if quantity["quantity"] < 0:
                return refused([*path, "quantity"], "The quantity can't be negative.", "INVALID_QUANTITY_NEGATIVE")
            current = item["levels"][quantity["locationId"]]
            if not ignore:
                if quantity.get("compareQuantity") is None:
                    return refused(
                        [*path, "compareQuantity"],
                        "The compareQuantity argument must be given to each "
                        "quantity or ignored using ignoreCompareQuantity.",
                        "COMPARE_QUANTITY_REQUIRED",
                    )
                if quantity["compareQuantity"] != current:
                    return refused(
                        [*path, "compareQuantity"],
                        "The compareQuantity value does not match the stored value.",
                        "COMPARE_QUANTITY_STALE",
                    )
            changes.append((item, quantity["locationId"], current, quantity["quantity"]))
        for item, location, _current, target in changes:  # all or nothing
            item["levels"][location] = target
        return {
            "inventoryAdjustmentGroup": {
                "id": _gid("InventoryAdjustmentGroup", self.next_id()),
                "reason": input["reason"],
                "createdAt": _iso(self.now()),
                "referenceDocumentUri": input.get("referenceDocumentUri"),
                "changes": [
                    {"name": input["name"], "delta": target - current, "quantityAfterChange": target}
                    for _item, _loc, current, target in changes
                ],
            },
            "userErrors": [],
        }

    def _subscription_create(self, info, topic, webhookSubscription) -> dict:
        url = webhookSubscription.get("callbackUrl") or ""
        if not re.match(r"^https?://", url):
            return {
                "webhookSubscription": None,
                "userErrors": [_error(["webhookSubscription", "callbackUrl"], "Address is invalid")],
            }
        for sub in self.subscriptions.values():
            if sub["topic"] == topic and sub["callbackUrl"] == url:
                return {
                    "webhookSubscription": None,
                    "userErrors": [
                        _error(["webhookSubscription", "callbackUrl"], "Address for this topic has already been taken")
                    ],
                }
        number = self.next_id()
        sub = {
            "number": number,
            "topic": topic,
            "callbackUrl": url,
            "format": webhookSubscription.get("format") or "JSON",
        }
        self.subscriptions[number] = sub
        return {"webhookSubscription": self._subscription_view(sub), "userErrors": []}

    def _subscription_update(self, info, id, webhookSubscription) -> dict:
        sub = self.subscriptions.get(_num(id, "WebhookSubscription"))
        if sub is None:
            return {"webhookSubscription": None, "userErrors": [_error(["id"], "Webhook subscription does not exist")]}
        if webhookSubscription.get("callbackUrl"):
            sub["callbackUrl"] = webhookSubscription["callbackUrl"]
        return {"webhookSubscription": self._subscription_view(sub), "userErrors": []}

    # --- what happens in the store itself (buyers, the seller in Shopify's admin) -----------

    def variant_by_sku(self, sku: str, *, for_sale: bool = True) -> dict | None:
        for variant in sorted(self.variants.values(), key=lambda v: -v["number"]):
            item = self.items[variant["item"]]
            product = self.products[variant["product"]]
            if item["sku"].casefold() == sku.casefold() and (not for_sale or product["status"] == "ACTIVE"):
                return variant
        return None

    def sell(
        self,
        sku: str,
        *,
        quantity: int = 1,
        financial_status: str = "PAID",
        location: str = LOCATION_ID,
        buyer: str = "Jamie Buyer",
        email: str = "jamie@example.com",
        more_skus: tuple[str, ...] = (),
    ) -> dict:
        """A buyer checks out (this SKU, and one of each of `more_skus` on further lines): the order is
        created and the stock at the location goes down. Nothing changes when one line cannot be had."""
        wanted = [(sku, quantity), *((more, 1) for more in more_skus)]
        picked = []
        for line_sku, line_quantity in wanted:
            variant = self.variant_by_sku(line_sku)
            if variant is None:
                raise SandboxError(f"No product for sale with SKU {line_sku!r}.", "NOT_FOUND")
            item = self.items[variant["item"]]
            available = item["levels"].get(location, 0)
            if item["tracked"] and available < line_quantity:
                raise SandboxError(f"Only {available} of {line_sku!r} left at {location}.", "NOT_ENOUGH_STOCK")
            picked.append((variant, item, line_quantity))
        lines = []
        for variant, item, line_quantity in picked:
            if item["tracked"]:
                item["levels"][location] -= line_quantity
            product = self.products[variant["product"]]
            lines.append(
                {
                    "number": self.next_id(),
                    "sku": item["sku"],
                    "title": product["title"],
                    "quantity": line_quantity,
                    "price": variant["price"],
                    "product": product["number"],
                    "variant": variant["number"],
                }
            )
        now = self.now()
        number = self.next_id()
        name = f"#{self._next_order}"
        self._next_order += 1
        order = {
            "number": number,
            "name": name,
            "createdAt": now,
            "updatedAt": now,
            "cancelledAt": None,
            "financialStatus": financial_status,
            "currency": self.currency,
            "email": email,
            "buyer": buyer,
            "address": {
                "name": buyer,
                "address1": "1 Main Street",
                "address2": "",
                "city": "Nashville",
                "provinceCode": "TN",
                "zip": "37203",
                "countryCodeV2": "US",
            },
            "subtotal": sum((line["price"] * line["quantity"] for line in lines), Decimal("0")),
            "shipping": Decimal("0.00"),
            "lines": lines,
        }
        self.orders[number] = order
        return order

    def mark_paid(self, order_number: int) -> dict:
        order = self.orders[order_number]
        order["financialStatus"] = "PAID"
        order["updatedAt"] = self.now()
        return order

    def cancel(self, order_number: int, *, restock: bool = True, refund: bool = True) -> dict:
        order = self.orders[order_number]
        if order["cancelledAt"] is None:
            order["cancelledAt"] = self.now()
            if refund:
                order["financialStatus"] = "REFUNDED" if order["financialStatus"] == "PAID" else "VOIDED"
            if restock:
                for line in order["lines"]:
                    variant = self.variants.get(line["variant"])
                    if variant is not None:
                        levels = self.items[variant["item"]]["levels"]
                        levels[LOCATION_ID] = levels.get(LOCATION_ID, 0) + line["quantity"]
                    line["refunded"] = True
        order["updatedAt"] = order["cancelledAt"]
        return order

    def set_quantity(self, sku: str, quantity: int, location: str = LOCATION_ID) -> None:
        """The seller changes the stock in Shopify's admin (no product update)."""
        variant = self.variant_by_sku(sku, for_sale=False)
        if variant is None:
            raise SandboxError(f"No product with SKU {sku!r}.", "NOT_FOUND")
        self.items[variant["item"]]["levels"][location] = quantity

    def add_product(
        self,
        sku: str,
        *,
        title: str,
        price: str,
        quantity: int = 1,
        status: str = "ACTIVE",
        vendor: str = "",
        extra_variants: int = 0,
    ) -> dict:
        """The seller makes a product in Shopify's admin, not through the back office."""
        now = self.now()
        number = self.next_id()
        product = {
            "number": number,
            "title": title,
            "handle": self._handle(title, number),
            "status": status,
            "descriptionHtml": "",
            "vendor": vendor,
            "productType": "",
            "tags": [],
            "seo": {"title": None, "description": None},
            "files": [],
            "variants": [],
            "createdAt": now,
            "updatedAt": now,
        }
        self.products[number] = product
        for n in range(1 + extra_variants):
            variant_number, item_number = self.next_id(), self.next_id()
            self.items[item_number] = {
                "sku": sku if n == 0 else f"{sku}-V{n}",
                "tracked": True,
                "levels": {LOCATION_ID: quantity},
                "variant": variant_number,
            }
            self.variants[variant_number] = {
                "number": variant_number,
                "product": number,
                "item": item_number,
                "title": "Default Title" if n == 0 else f"Option {n}",
                "price": Decimal(price),
                "compareAtPrice": None,
            }
            product["variants"].append(variant_number)
        return self.product_view(product)

    def edit_product(self, product_gid: str, **changes: Any) -> dict:
        product = self.products[_num(product_gid, "Product")]
        self._apply_scalars(product, changes)
        product["updatedAt"] = self.now()
        return self.product_view(product)


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _paging(args: dict) -> dict:
    return {k: args[k] for k in ("first", "after", "last", "before", "reverse") if k in args}
