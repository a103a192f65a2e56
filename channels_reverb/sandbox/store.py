"""The loopback Reverb's marketplace: listings, orders and webhook registrations in memory.

Behaves the way Reverb is documented and observed to behave (CHANNELS.md §2): listings
need make and model, a create without `publish` stays a draft, a Brand New item with no
UPC stays a draft with only a warning, only Brand New / B-Stock / Mint (with inventory)
hold more than one unit, `inventory: 0` takes a listing off sale, a sold one-of-a-kind
listing is locked, drafts cannot be ended and only drafts can be deleted. Answers are
HAL+JSON with `_links`, money objects and page fields. No HTTP here: the server turns
these (status, body) answers into responses.
"""

from __future__ import annotations

import os
import pickle
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from ..mappers import CONDITION_UUIDS, CURRENCIES, MINT_WITH_INVENTORY_UUID, SHIPPING_PROVIDERS, parse_time

CONDITION_NAMES = {
    CONDITION_UUIDS["non_functioning"]: ("non-functioning", "Non Functioning"),
    CONDITION_UUIDS["poor"]: ("poor", "Poor"),
    CONDITION_UUIDS["fair"]: ("fair", "Fair"),
    CONDITION_UUIDS["good"]: ("good", "Good"),
    CONDITION_UUIDS["very_good"]: ("very-good", "Very Good"),
    CONDITION_UUIDS["excellent"]: ("excellent", "Excellent"),
    CONDITION_UUIDS["mint"]: ("mint", "Mint"),
    MINT_WITH_INVENTORY_UUID: ("mint-with-inventory", "Mint (with inventory)"),
    CONDITION_UUIDS["b_stock"]: ("b-stock", "B-Stock"),
    CONDITION_UUIDS["brand_new"]: ("brand-new", "Brand New"),
}
MULTI_UNIT_UUIDS = {CONDITION_UUIDS["brand_new"], CONDITION_UUIDS["b_stock"], MINT_WITH_INVENTORY_UUID}
LISTING_STATE_FILTERS = {"all", "draft", "ended", "live", "ordered", "sold_out", "suspended", "seller_unavailable"}
END_REASONS = {"not_sold", "reverb_sale"}
WEBHOOK_TOPICS = {
    "listings/update",
    "listings/publish",
    "listings/bumps-ran-out",
    "orders/create",
    "orders/update",
    "payments/create",
    "payments/update",
    "app/uninstalled",
}
ORDER_STATUSES = {
    "unpaid",
    "payment_pending",
    "pending_review",
    "blocked",
    "paid",
    "shipped",
    "picked_up",
    "received",
    "refunded",
    "cancelled",
}
CURRENCY_SYMBOLS = {
    "USD": "$",
    "CAD": "C$",
    "EUR": "€",
    "GBP": "£",
    "AUD": "A$",
    "JPY": "¥",
    "NZD": "NZ$",
    "MXN": "MX$",
}
TEXT_FIELDS = ("make", "model", "title", "description", "finish", "year", "sku", "upc", "shipping_profile_id")

Answer = tuple[int, Any]


class SandboxError(Exception):
    """A test asked the sandbox for something Reverb would not allow (e.g. buying an ended listing)."""


def money(amount: Decimal, currency: str) -> dict:
    """Reverb's money object."""
    amount = amount.quantize(Decimal("0.01"))
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    return {
        "amount": str(amount),
        "amount_cents": int(amount * 100),
        "currency": currency,
        "symbol": symbol,
        "display": f"{symbol}{amount:,.2f}",
    }


def _invalid(message: str, errors: Mapping[str, list[str]] | None = None, status: int = 422) -> Answer:
    return status, {"message": message, "errors": dict(errors or {})}


class ReverbStore:
    """Reverb's state for one seller, safe to use from the server's threads."""

    def __init__(
        self,
        base_url: Callable[[], str],
        *,
        clock: Callable[[], datetime] | None = None,
        page_size: int = 24,
        max_page_size: int = 100,
        utc_offset_minutes: int = -300,
        require_category: bool = False,
    ) -> None:
        self._base_url = base_url
        self.require_category = require_category
        self.clock = clock or (lambda: datetime.now(UTC))
        self.page_size = page_size  # what a page holds when per_page is not sent
        self.max_page_size = max_page_size  # the most a page holds whatever per_page says
        self.zone = timezone(timedelta(minutes=utc_offset_minutes))
        self.lock = threading.RLock()
        self.listings: dict[int, dict] = {}
        self.orders: dict[str, dict] = {}
        self.registrations: dict[int, dict] = {}
        self._next_listing = 71_000_001
        self._next_order = 4_100_001
        self._next_registration = 1

    # --- keeping state across restarts (the demo) ----------------------------------------

    _KEPT = ("listings", "orders", "registrations", "_next_listing", "_next_order", "_next_registration")

    def save(self, path: str) -> None:
        """Write the shop's state to `path` (atomically: a crash never leaves half a file)."""
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

    # --- rendering ----------------------------------------------------------------------

    def stamp(self, when: datetime) -> str:
        """A time the way Reverb writes it: ISO 8601, whole seconds, the shop's offset."""
        return when.astimezone(self.zone).replace(microsecond=0).isoformat()

    def render_listing(self, listing: dict) -> dict:
        base = self._base_url()
        lid = listing["id"]
        slug_name, display = CONDITION_NAMES.get(listing["condition_uuid"], ("", ""))
        photos = [
            {
                "_links": {
                    size: {"href": f"https://rvb-img.reverb.com/image/upload/{size}/{lid}/{n}.jpg"}
                    for size in ("full", "large_crop", "small_crop", "thumbnail")
                }
            }
            for n, _ in enumerate(listing["photos"], start=1)
        ]
        rendered = {
            "id": lid,
            "slug": listing["slug"],
            "sku": listing["sku"],
            "make": listing["make"],
            "model": listing["model"],
            "title": listing["title"],
            "description": listing["description"],
            "finish": listing["finish"],
            "year": listing["year"],
            "condition": {"uuid": listing["condition_uuid"], "slug": slug_name, "display_name": display}
            if listing["condition_uuid"]
            else None,
            "price": money(listing["price"], listing["currency"]) if listing["price"] is not None else None,
            "listing_currency": listing["currency"],
            "inventory": listing["inventory"],
            "has_inventory": listing["has_inventory"],
            "offers_enabled": listing["offers_enabled"],
            "state": {"slug": listing["state"], "description": listing["state"].replace("_", " ").title()},
            "categories": [{"uuid": uuid} for uuid in listing["categories"]],
            "shipping_profile_id": listing["shipping_profile_id"] or None,
            "upc": listing["upc"] or None,
            "upc_does_not_apply": listing["upc_does_not_apply"],
            "created_at": self.stamp(listing["created_at"]),
            "published_at": self.stamp(listing["published_at"]) if listing["published_at"] else None,
            "photos": photos,
            "videos": [{"link": link} for link in listing["videos"]],
            "_links": {
                "self": {"href": f"{base}/listings/{lid}"},
                "update": {"href": f"{base}/listings/{lid}", "method": "PUT"},
                "end": {"href": f"{base}/my/listings/{lid}/state/end", "method": "PUT"},
                "edit": {"href": f"{base}/listings/{lid}/edit"},
                "web": {"href": f"https://reverb.com/item/{listing['slug']}"},
            },
        }
        return rendered

    def render_order(self, order: dict) -> dict:
        base = self._base_url()
        currency = order["currency"]
        quantity = order["quantity"]
        subtotal = order["unit_price"] * quantity
        total = subtotal + order["shipping"] + order["tax"]
        buyer = order["buyer"]
        first, _, last = buyer["name"].partition(" ")
        return {
            "order_number": order["order_number"],
            "uuid": order["uuid"],
            "order_bundle_id": order["order_bundle_id"],
            "product_id": order["listing_id"],
            "sku": order["sku"],
            "title": order["title"],
            "quantity": quantity,
            "status": order["status"],
            "order_source": "reverb",
            "created_at": self.stamp(order["created_at"]),
            "updated_at": self.stamp(order["updated_at"]),
            "paid_at": self.stamp(order["paid_at"]) if order["paid_at"] else None,
            "amount_product": money(order["unit_price"], currency),
            "amount_product_subtotal": money(subtotal, currency),
            "shipping": money(order["shipping"], currency),
            "amount_tax": money(order["tax"], currency),
            "total": money(total, currency),
            "buyer_id": buyer.get("id", 501),
            "buyer_name": buyer["name"],
            "buyer_first_name": first,
            "buyer_last_name": last,
            "buyer_email": buyer["email"],
            "shipping_address": {
                "name": buyer["name"],
                "street_address": buyer.get("street_address", "1 Main St"),
                "extended_address": buyer.get("extended_address", ""),
                "locality": buyer.get("locality", "Chicago"),
                "region": buyer.get("region", "IL"),
                "postal_code": buyer.get("postal_code", "60601"),
                "country_code": buyer.get("country_code", "US"),
                "phone": buyer.get("phone", "555-0100"),
            },
            "_links": {
                "self": {"href": f"{base}/my/orders/selling/{order['order_number']}"},
                "listing": {"href": f"{base}/listings/{order['listing_id']}"},
                "ship": {"href": f"{base}/my/orders/selling/{order['order_number']}/ship", "method": "POST"},
            },
        }

    def page(
        self, path: str, key: str, items: list[dict], query: Mapping[str, str], render: Callable[[dict], dict]
    ) -> Answer:
        """A page of a collection, with Reverb's total/current_page/total_pages and `_links.next`.
        Only the page's own items are rendered."""
        try:
            page = max(1, int(query.get("page") or 1))
            per_page = max(1, min(self.max_page_size, int(query.get("per_page") or self.page_size)))
        except ValueError:
            return _invalid("page and per_page must be numbers", status=400)
        total = len(items)
        total_pages = max(1, -(-total // per_page))
        chunk = [render(item) for item in items[(page - 1) * per_page : page * per_page]]
        base = self._base_url()
        kept = {k: v for k, v in query.items() if k not in ("page",)}
        links = {"self": {"href": f"{base}{path}?{urlencode({**kept, 'page': page})}"}}
        if page < total_pages:
            links["next"] = {"href": f"{base}{path}?{urlencode({**kept, 'page': page + 1})}"}
        if page > 1:
            links["prev"] = {"href": f"{base}{path}?{urlencode({**kept, 'page': page - 1})}"}
        return 200, {
            "total": total,
            "current_page": page,
            "total_pages": total_pages,
            key: chunk,
            "_links": links,
        }

    # --- listings -----------------------------------------------------------------------

    def find_listing(self, ref: str | int) -> dict | None:
        """By id, or by slug (which starts with the id)."""
        match = re.match(r"^(\d+)", str(ref))
        return self.listings.get(int(match.group(1))) if match else None

    def _validate(self, body: Mapping[str, Any], current: dict | None) -> tuple[dict, dict[str, list[str]]]:
        """Reverb's field rules. Returns the changes to apply and the errors by field."""
        changes: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name in TEXT_FIELDS:
            if name in body:
                if body[name] is not None and not isinstance(body[name], str):
                    errors.setdefault(name, []).append("must be a string")
                else:
                    changes[name] = body[name] or ""
        for name in ("make", "model"):
            value = changes.get(name, current[name] if current else "")
            if not str(value).strip():
                errors.setdefault(name, []).append("can't be blank")
        if "price" in body:
            price = body["price"]
            if not isinstance(price, Mapping) or not isinstance(price.get("amount"), str):
                errors.setdefault("price", []).append("must be {amount: string, currency}")
            else:
                try:
                    amount = Decimal(price["amount"])
                except InvalidOperation:
                    amount = None
                if amount is None or amount <= 0:
                    errors.setdefault("price", []).append("must be a number greater than 0")
                elif price.get("currency") not in CURRENCIES:
                    errors.setdefault("price", []).append(f"currency must be one of {', '.join(sorted(CURRENCIES))}")
                else:
                    changes["price"] = amount
                    changes["currency"] = price["currency"]
        if "condition" in body:
            condition = body["condition"]
            uuid = condition.get("uuid") if isinstance(condition, Mapping) else None
            if uuid not in CONDITION_NAMES:
                errors.setdefault("condition", []).append("is not a valid condition")
            else:
                changes["condition_uuid"] = uuid
        for name in ("has_inventory", "offers_enabled", "upc_does_not_apply", "publish"):
            if name in body and not isinstance(body[name], bool):
                errors.setdefault(name, []).append("must be true or false")
            elif name in body and name != "publish":
                changes[name] = body[name]
        if "inventory" in body:
            if not isinstance(body["inventory"], int) or isinstance(body["inventory"], bool) or body["inventory"] < 0:
                errors.setdefault("inventory", []).append("must be a whole number, 0 or more")
            else:
                changes["inventory"] = body["inventory"]
        if "photos" in body:
            if not isinstance(body["photos"], list) or not all(isinstance(p, str) for p in body["photos"]):
                errors.setdefault("photos", []).append("must be a list of image URLs")
            else:
                changes["photos"] = list(body["photos"])
        if "videos" in body:
            videos = body["videos"]
            if not isinstance(videos, list) or not all(isinstance(v, Mapping) and v.get("link") for v in videos):
                errors.setdefault("videos", []).append("must be a list of {link}")
            elif len(videos) > 1:
                errors.setdefault("videos", []).append("only one video is allowed")
            else:
                changes["videos"] = [v["link"] for v in videos]
        if "categories" in body:
            categories = body["categories"]
            if not isinstance(categories, list) or not all(
                isinstance(c, Mapping) and c.get("uuid") for c in categories
            ):
                errors.setdefault("categories", []).append("must be a list of {uuid}")
            else:
                changes["categories"] = [c["uuid"] for c in categories]
        condition_uuid = changes.get("condition_uuid", current["condition_uuid"] if current else "")
        has_inventory = changes.get("has_inventory", current["has_inventory"] if current else False)
        inventory = changes.get("inventory", current["inventory"] if current else 1)
        if inventory > 1 and (not has_inventory or condition_uuid not in MULTI_UNIT_UUIDS):
            errors.setdefault("inventory", []).append(
                "only Brand New, B-Stock and Mint (with inventory) listings can have more than one"
            )
        return changes, errors

    def _publish_warnings(self, listing: dict) -> list[str]:
        warnings = []
        if listing["condition_uuid"] == CONDITION_UUIDS["brand_new"] and not (
            listing["upc"] or listing["upc_does_not_apply"]
        ):
            warnings.append("Brand New listings need a valid UPC or upc_does_not_apply: the listing stays a draft.")
        if not listing["condition_uuid"]:
            warnings.append("A condition is required to publish: the listing stays a draft.")
        if listing["price"] is None:
            warnings.append("A price is required to publish: the listing stays a draft.")
        if self.require_category and not listing["categories"]:
            warnings.append("A category is required to publish: the listing stays a draft.")
        return warnings

    def _publish(self, listing: dict) -> list[str]:
        warnings = self._publish_warnings(listing)
        if not warnings:
            listing["state"] = "live"
            listing["published_at"] = listing["published_at"] or self.clock()
        return warnings

    def create_listing(self, body: Any) -> Answer:
        if not isinstance(body, Mapping):
            return _invalid("The body must be a JSON object.", status=400)
        changes, errors = self._validate(body, None)
        if errors:
            return _invalid("The listing could not be saved.", errors)
        with self.lock:
            lid = self._next_listing
            self._next_listing += 1
            now = self.clock()
            listing = {
                "id": lid,
                "make": "",
                "model": "",
                "title": "",
                "description": "",
                "finish": "",
                "year": "",
                "sku": "",
                "upc": "",
                "shipping_profile_id": "",
                "price": None,
                "currency": "USD",
                "condition_uuid": "",
                "has_inventory": False,
                "inventory": 1,
                "offers_enabled": True,
                "upc_does_not_apply": False,
                "photos": [],
                "videos": [],
                "categories": [],
                "state": "draft",
                "created_at": now,
                "published_at": None,
                "updated_at": now,
            }
            listing.update(changes)
            if not listing["has_inventory"]:
                listing["inventory"] = 1 if listing["inventory"] else 0
            title = listing["title"] or f"{listing['make']} {listing['model']}"
            listing["slug"] = f"{lid}-{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}"
            warnings = self._publish(listing) if body.get("publish") is True else []
            self.listings[lid] = listing
            message = "Your listing has been saved as a draft." if listing["state"] == "draft" else "Listing created."
            return 201, {"message": message, "listing": self.render_listing(listing), "warnings": warnings}

    def update_listing(self, ref: str, body: Any) -> Answer:
        if not isinstance(body, Mapping):
            return _invalid("The body must be a JSON object.", status=400)
        with self.lock:
            listing = self.find_listing(ref)
            if listing is None:
                return 404, {"message": "The listing you were looking for does not exist."}
            if listing["state"] == "sold" and not listing["has_inventory"]:
                return _invalid("This item has sold; a sold listing cannot be changed.")
            changes, errors = self._validate(body, listing)
            if errors:
                return _invalid("The listing could not be saved.", errors)
            listing.update(changes)
            listing["updated_at"] = self.clock()
            if "inventory" in changes:
                if listing["inventory"] == 0 and listing["state"] in ("live", "seller_unavailable"):
                    listing["state"] = "sold_out" if listing["has_inventory"] else "ended"
                elif listing["inventory"] > 0 and listing["state"] == "sold_out":
                    listing["state"] = "live"
            warnings: list[str] = []
            if body.get("publish") is True and listing["state"] in ("draft", "ended"):
                if listing["inventory"] == 0 and not listing["has_inventory"]:
                    listing["inventory"] = 1  # a one-of-a-kind listing put back on sale offers its one unit
                warnings = self._publish(listing)
            return 200, {"message": "Listing updated.", "listing": self.render_listing(listing), "warnings": warnings}

    def get_listing(self, ref: str) -> Answer:
        with self.lock:
            listing = self.find_listing(ref)
            if listing is None:
                return 404, {"message": "The listing you were looking for does not exist."}
            return 200, self.render_listing(listing)

    def end_listing(self, ref: str, body: Any) -> Answer:
        reason = body.get("reason") if isinstance(body, Mapping) else None
        if reason not in END_REASONS:
            return _invalid("Invalid reason.", {"reason": [f"must be one of {', '.join(sorted(END_REASONS))}"]})
        with self.lock:
            listing = self.find_listing(ref)
            if listing is None:
                return 404, {"message": "The listing you were looking for does not exist."}
            if listing["state"] == "draft":
                return _invalid("Drafts cannot be ended; delete the draft instead.")
            if listing["state"] not in ("live", "seller_unavailable", "suspended"):
                return _invalid(f"This listing cannot be ended: it is {listing['state']}.")
            listing["state"] = "sold" if reason == "reverb_sale" else "ended"
            listing["updated_at"] = self.clock()
            return 200, None  # Reverb answers an end with an empty body

    def delete_listing(self, ref: str) -> Answer:
        with self.lock:
            listing = self.find_listing(ref)
            if listing is None:
                return 404, {"message": "The listing you were looking for does not exist."}
            if listing["state"] != "draft":
                return _invalid("Only drafts can be deleted.", status=400)
            del self.listings[listing["id"]]
            return 200, {}

    def my_listings(self, query: Mapping[str, str]) -> Answer:
        state = query.get("state") or "live"
        if state not in LISTING_STATE_FILTERS:
            return _invalid(f"state must be one of {', '.join(sorted(LISTING_STATE_FILTERS))}", status=400)
        sku = query.get("sku")
        with self.lock:
            found = [
                listing
                for listing in sorted(self.listings.values(), key=lambda item: -item["id"])  # newest first
                if (state == "all" or listing["state"] == state) and (sku is None or listing["sku"] == sku)
            ]
            return self.page("/my/listings", "listings", found, query, self.render_listing)

    # --- orders -------------------------------------------------------------------------

    def selling_orders(self, query: Mapping[str, str]) -> Answer:
        bounds = {}
        for name in ("updated_start_date", "updated_end_date", "created_start_date", "created_end_date"):
            if query.get(name):
                bounds[name] = parse_time(query[name])
                if bounds[name] is None:
                    return _invalid(f"{name} is not an ISO 8601 time", status=400)
        # Times are compared to the second, as Reverb stores them.
        with self.lock:
            found = []
            for order in sorted(self.orders.values(), key=lambda o: (o["created_at"], o["order_number"]), reverse=True):
                updated = order["updated_at"].replace(microsecond=0)
                created = order["created_at"].replace(microsecond=0)
                if "updated_start_date" in bounds and updated < bounds["updated_start_date"]:
                    continue
                if "updated_end_date" in bounds and updated > bounds["updated_end_date"]:
                    continue
                if "created_start_date" in bounds and created < bounds["created_start_date"]:
                    continue
                if "created_end_date" in bounds and created > bounds["created_end_date"]:
                    continue
                found.append(order)
            return self.page("/my/orders/selling/all", "orders", found, query, self.render_order)

    def selling_order(self, number: str) -> Answer:
        with self.lock:
            order = self.orders.get(str(number))
            if order is None:
                return 404, {"message": "Order not found."}
            return 200, self.render_order(order)

    def sell(
        self,
        ref: str | int,
        *,
        quantity: int = 1,
        placed_at: datetime | None = None,
        status: str = "paid",
        buyer: Mapping[str, str] | None = None,
        shipping: Decimal = Decimal("0"),
    ) -> dict:
        """A buyer checks out: the order is created and the listing's stock goes down as Reverb does it."""
        if status not in ORDER_STATUSES:
            raise SandboxError(f"Reverb has no order status {status!r}.")
        if quantity < 1:
            raise SandboxError("A sale is of one unit or more.")
        with self.lock:
            listing = self._listing_for_sale(ref)
            if listing["state"] != "live":
                raise SandboxError(f"Listing {listing['id']} ({listing['sku']}) is {listing['state']}, not for sale.")
            available = listing["inventory"] if listing["has_inventory"] else 1
            if quantity > available:
                raise SandboxError(f"Listing {listing['id']} has {available} for sale, not {quantity}.")
            now = self.clock()
            if listing["has_inventory"]:
                listing["inventory"] -= quantity
                if listing["inventory"] == 0:
                    listing["state"] = "sold_out"
            else:
                listing["inventory"] = 0
                listing["state"] = "sold"
            listing["updated_at"] = now
            number = str(self._next_order)
            self._next_order += 1
            placed = placed_at or now
            order = {
                "order_number": number,
                "uuid": f"00000000-0000-4000-8000-{int(number):012d}",
                "order_bundle_id": number,
                "listing_id": listing["id"],
                "sku": listing["sku"],
                "title": listing["title"],
                "quantity": quantity,
                "status": status,
                "created_at": placed,
                "updated_at": max(now, placed),
                "paid_at": now if status in ("paid", "shipped", "picked_up", "received") else None,
                "unit_price": listing["price"] or Decimal("0"),
                "currency": listing["currency"],
                "shipping": shipping,
                "tax": Decimal("0"),
                "buyer": {"name": "Jamie Rivera", "email": "jamie.rivera@example.com", **(buyer or {})},
            }
            self.orders[number] = order
            return self.render_order(order)

    def _listing_for_sale(self, ref: str | int) -> dict:
        if isinstance(ref, int) or str(ref).isdigit():
            listing = self.listings.get(int(ref))
            if listing is not None:
                return listing
        matches = sorted((x for x in self.listings.values() if x["sku"] == str(ref)), key=lambda x: -x["id"])
        if not matches:
            raise SandboxError(f"No listing with id or SKU {ref!r}.")
        live = [x for x in matches if x["state"] == "live"]
        return (live or matches)[0]

    def ship_order(self, number: str, body: Any) -> Answer:
        """POST /my/orders/selling/{id}/ship: provider, tracking_number and send_notification, all required."""
        if not isinstance(body, Mapping):
            return _invalid("The body must be a JSON object.", status=400)
        errors = {
            name: ["is required"] for name in ("provider", "tracking_number", "send_notification") if name not in body
        }
        if body.get("provider") and body["provider"] not in SHIPPING_PROVIDERS:
            errors["provider"] = [f"must be one of {', '.join(SHIPPING_PROVIDERS)}"]
        if errors:
            return _invalid("The shipment could not be saved.", errors)
        with self.lock:
            order = self.orders.get(str(number))
            if order is None:
                return 404, {"message": "Order not found."}
            if order["status"] not in ("paid", "shipped"):
                return _invalid(f"An order that is {order['status']} cannot be shipped.")
            order["status"] = "shipped"
            order["shipment"] = {"provider": body["provider"], "tracking_number": str(body["tracking_number"])}
            order["updated_at"] = self.clock()
            return 200, self.render_order(order)

    def set_order_status(self, number: str, status: str) -> dict:
        if status not in ORDER_STATUSES:
            raise SandboxError(f"Reverb has no order status {status!r}.")
        with self.lock:
            order = self.orders.get(str(number))
            if order is None:
                raise SandboxError(f"No order {number}.")
            order["status"] = status
            order["updated_at"] = self.clock()
            if status in ("paid", "shipped", "picked_up", "received") and not order["paid_at"]:
                order["paid_at"] = order["updated_at"]
            return self.render_order(order)

    # --- webhooks -----------------------------------------------------------------------

    def register_webhook(self, body: Any) -> Answer:
        url = body.get("url") if isinstance(body, Mapping) else None
        topic = body.get("topic") if isinstance(body, Mapping) else None
        errors = {}
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = ["must be an http(s) URL"]
        if topic not in WEBHOOK_TOPICS:
            errors["topic"] = [f"must be one of {', '.join(sorted(WEBHOOK_TOPICS))}"]
        if errors:
            return _invalid("The webhook could not be registered.", errors)
        with self.lock:
            rid = self._next_registration
            self._next_registration += 1
            self.registrations[rid] = {"id": rid, "url": url, "topic": topic}
            return 201, dict(self.registrations[rid])

    def webhook_urls(self, topic: str) -> list[str]:
        with self.lock:
            return [r["url"] for r in self.registrations.values() if r["topic"] == topic]
