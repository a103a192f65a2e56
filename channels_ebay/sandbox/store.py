"""The loopback eBay's state and rules: inventory items, offers, listings, orders, the revision budget.

Every method takes the request's parsed JSON and returns (status, body) in eBay's wire format
(error bodies as {"errors": [{errorId, domain, category, message, longMessage, parameters}]}).
Bodies are already checked against the OpenAPI documents by the server; the rules here are
eBay's own (publish preconditions, published offers only in bulk price/quantity, 250 revisions
per listing per day, a withdrawn offer republished under a new listing id).
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

REVISIONS_PER_DAY = 250


class SandboxError(Exception):
    pass


def error(
    status: int,
    error_id: int,
    message: str,
    *,
    field: str = "",
    category: str = "REQUEST",
    domain: str = "API_INVENTORY",
) -> tuple[int, dict]:
    entry: dict[str, Any] = {
        "errorId": error_id,
        "domain": domain,
        "subdomain": "Selling",
        "category": category,
        "message": message,
        "longMessage": message,
    }
    if field:
        entry["parameters"] = [{"name": "field", "value": field}]
        entry["inputRefIds"] = [field]
    return status, {"errors": [entry]}


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class EbayStore:
    """What the loopback eBay holds for one seller."""

    def __init__(self, clock: Callable[[], datetime] | None = None, *, non_leaf_categories=("619",)) -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.items: dict[str, dict] = {}
        self.offers: dict[str, dict] = {}
        self.orders: dict[str, dict] = {}
        self.locations: set[str] = {"main-warehouse"}
        self.policies: dict[str, dict[str, str]] = {
            "fulfillment": {"6100001": "EBAY_US"},
            "payment": {"6200001": "EBAY_US"},
            "return": {"6300001": "EBAY_US"},
        }
        self.non_leaf_categories = set(non_leaf_categories)
        self.legacy_listings: dict[str, dict] = {}  # made on eBay's site: invisible to the Inventory API
        self.revisions: dict[str, tuple[str, int]] = {}  # listingId -> (day, count)
        self.counters = {"offer": 7_000_000_000, "listing": 110_000_000_000, "order": 0}

    def new_id(self, kind: str) -> str:
        with self.lock:
            self.counters[kind] += 1
            return str(self.counters[kind])

    # --- keeping state across restarts (the demo) ---------------------------------------------

    KEPT = ("items", "offers", "orders", "locations", "policies", "legacy_listings", "revisions", "counters")

    def state(self) -> dict:
        with self.lock:
            state = copy.deepcopy({name: getattr(self, name) for name in self.KEPT})
        state["locations"] = sorted(state["locations"])
        return state

    def restore(self, state: dict) -> None:
        with self.lock:
            for name in self.KEPT:
                if name in state:
                    setattr(self, name, set(state[name]) if name == "locations" else state[name])

    # --- inventory items ---------------------------------------------------------------------

    def put_item(self, sku: str, body: dict) -> tuple[int, Any]:
        sku = unquote(sku)
        if len(sku) > 50:
            return error(400, 25707, "This is an invalid value for a SKU. The SKU is too long.", field="sku")
        with self.lock:
            offer = self._published_offer(sku)
            if offer is not None:
                refused = self._revise(offer)
                if refused:
                    return refused
            created = sku not in self.items
            self.items[sku] = {"sku": sku, "locale": "en_US", **copy.deepcopy(body)}
            if offer is not None:
                quantity = ((body.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity")
                if quantity is not None:
                    self._set_quantity(offer, int(quantity))
            return (201 if created else 204), None

    def get_item(self, sku: str) -> tuple[int, Any]:
        sku = unquote(sku)
        with self.lock:
            item = self.items.get(sku)
            if item is None:
                return error(404, 25702, f"The SKU {sku} is not available in the system.", field="sku")
            return 200, self.render_item(item)

    def render_item(self, item: dict) -> dict:
        out = copy.deepcopy(item)
        ship = (out.get("availability") or {}).get("shipToLocationAvailability")
        if ship is not None:
            ship.pop("availabilityDistributions", None)
        return out

    def list_items(self, query: dict[str, str]) -> tuple[int, Any]:
        try:
            limit = int(query.get("limit") or 25)
            page = int(query.get("offset") or 0)
        except ValueError:
            return error(400, 25709, "Invalid value for limit or offset.", field="limit")
        if not 1 <= limit <= 100:
            return error(400, 25709, "Invalid value for limit: 1 to 100.", field="limit")
        with self.lock:
            skus = sorted(self.items)
            chunk = skus[page * limit : (page + 1) * limit]
            body: dict[str, Any] = {
                "href": f"/sell/inventory/v1/inventory_item?limit={limit}&offset={page}",
                "limit": limit,
                "size": len(chunk),
                "total": len(skus),
                "inventoryItems": [self.render_item(self.items[s]) for s in chunk],
            }
            if (page + 1) * limit < len(skus):
                body["next"] = f"/sell/inventory/v1/inventory_item?limit={limit}&offset={page + 1}"
            return 200, body

    # --- offers ------------------------------------------------------------------------------

    def create_offer(self, body: dict) -> tuple[int, Any]:
        sku = body.get("sku") or ""
        marketplace = body.get("marketplaceId") or ""
        if not sku or not marketplace or body.get("format") != "FIXED_PRICE":
            return error(400, 25002, "sku, marketplaceId and format FIXED_PRICE are required.", field="sku")
        with self.lock:
            if sku not in self.items:
                return error(400, 25702, f"The SKU {sku} is not available in the system.", field="sku")
            for offer in self.offers.values():
                if offer["sku"] == sku and offer["marketplaceId"] == marketplace and offer["format"] == "FIXED_PRICE":
                    status, answer = error(400, 25002, "Offer entity already exists.", field="offerId")
                    answer["errors"][0]["parameters"] = [{"name": "offerId", "value": offer["offerId"]}]
                    return status, answer
            offer_id = self.new_id("offer")
            self.offers[offer_id] = {**copy.deepcopy(body), "offerId": offer_id, "status": "UNPUBLISHED"}
            return 201, {"offerId": offer_id}

    def get_offer(self, offer_id: str) -> tuple[int, Any]:
        with self.lock:
            offer = self.offers.get(offer_id)
            if offer is None:
                return error(404, 25713, "This Offer is not available.", field="offerId")
            return 200, copy.deepcopy(offer)

    def offers_for_sku(self, query: dict[str, str]) -> tuple[int, Any]:
        sku = query.get("sku") or ""
        if not sku:
            return error(400, 25709, "Invalid value for sku: the sku is required.", field="sku")
        with self.lock:
            if sku not in self.items:
                return error(404, 25702, f"The SKU {sku} is not available in the system.", field="sku")
            found = [
                copy.deepcopy(o)
                for o in self.offers.values()
                if o["sku"] == sku
                and (not query.get("marketplace_id") or o["marketplaceId"] == query["marketplace_id"])
            ]
            if not found:
                return error(404, 25713, "This Offer is not available.", field="sku")
            return 200, {"offers": found, "total": len(found), "size": len(found), "limit": 100}

    def update_offer(self, offer_id: str, body: dict) -> tuple[int, Any]:
        with self.lock:
            offer = self.offers.get(offer_id)
            if offer is None:
                return error(404, 25713, "This Offer is not available.", field="offerId")
            if offer["status"] == "PUBLISHED":
                refused = self._revise(offer)
                if refused:
                    return refused
            kept = {
                k: offer[k] for k in ("offerId", "sku", "marketplaceId", "format", "status", "listing") if k in offer
            }
            self.offers[offer_id] = {**copy.deepcopy(body), **kept}
            if offer["status"] == "PUBLISHED" and "availableQuantity" in body:
                self._set_quantity(self.offers[offer_id], int(body["availableQuantity"]))
            return 200, {"offerId": offer_id}

    def publish_offer(self, offer_id: str) -> tuple[int, Any]:
        with self.lock:
            offer = self.offers.get(offer_id)
            if offer is None:
                return error(404, 25713, "This Offer is not available.", field="offerId")
            item = self.items.get(offer["sku"]) or {}
            problem = self._publish_problem(offer, item)
            if problem:
                return problem
            if offer["status"] == "PUBLISHED" and offer["listing"]["listingStatus"] == "ACTIVE":
                return 200, {"listingId": offer["listing"]["listingId"]}
            listing_id = self.new_id("listing")  # a new listing, also for an offer whose listing ended
            offer["status"] = "PUBLISHED"
            offer["listing"] = {"listingId": listing_id, "listingStatus": "ACTIVE", "soldQuantity": 0}
            return 200, {"listingId": listing_id}

    def _publish_problem(self, offer: dict, item: dict) -> tuple[int, Any] | None:
        product = item.get("product") or {}
        if not product.get("title"):
            return error(400, 25002, "A title is required.", field="product.title")
        if not product.get("imageUrls"):
            return error(400, 25002, "At least one picture is required.", field="product.imageUrls")
        if not item.get("condition"):
            return error(400, 25021, "A valid condition is required for this category.", field="condition")
        if not offer.get("categoryId"):
            return error(
                400,
                25005,
                "The eBay listing associated with the inventory item requires a category ID.",
                field="categoryId",
            )
        if offer["categoryId"] in self.non_leaf_categories:
            return error(400, 25005, f"Category {offer['categoryId']} is not a leaf category.", field="categoryId")
        if offer.get("merchantLocationKey") not in self.locations:
            return error(400, 25002, "A valid merchantLocationKey is required.", field="merchantLocationKey")
        policies = offer.get("listingPolicies") or {}
        for kind, name in (
            ("fulfillment", "fulfillmentPolicyId"),
            ("payment", "paymentPolicyId"),
            ("return", "returnPolicyId"),
        ):
            if self.policies[kind].get(policies.get(name) or "") != offer["marketplaceId"]:
                return error(
                    400, 25007, f"Invalid {kind} policy for {offer['marketplaceId']}.", field=f"listingPolicies.{name}"
                )
        price = ((offer.get("pricingSummary") or {}).get("price") or {}).get("value")
        if not price or Decimal(price) <= 0:
            return error(400, 25003, "Invalid price.", field="pricingSummary.price")
        if int(offer.get("availableQuantity") or 0) <= 0:
            return error(400, 25002, "The quantity must be greater than zero.", field="availableQuantity")
        return None

    def withdraw_offer(self, offer_id: str) -> tuple[int, Any]:
        with self.lock:
            offer = self.offers.get(offer_id)
            if offer is None:
                return error(404, 25713, "This Offer is not available.", field="offerId")
            listing = offer.get("listing") or {}
            if offer["status"] != "PUBLISHED" or listing.get("listingStatus") != "ACTIVE":
                return error(400, 25713, "This Offer is not published or its listing has ended.", field="offerId")
            offer["status"] = "UNPUBLISHED"
            listing["listingStatus"] = "ENDED"
            return 200, {"listingId": listing["listingId"]}

    def bulk_price_quantity(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 25:
            return error(400, 25709, "Invalid value for requests: 1 to 25 entries.", field="requests")
        responses = []
        with self.lock:
            for entry in entries:
                sku = entry.get("sku") or ""
                for part in entry.get("offers") or [{}]:
                    responses.append(self._price_quantity_one(sku, entry, part))
        status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
        return status, {"responses": responses}

    def _price_quantity_one(self, sku: str, entry: dict, part: dict) -> dict:
        offer_id = str(part.get("offerId") or "")
        offer = self.offers.get(offer_id)
        answer: dict[str, Any] = {"sku": sku, "offerId": offer_id}
        if offer is None or offer["sku"] != sku:
            _status, body = error(404, 25713, "This Offer is not available.", field="offerId")
            return {**answer, "statusCode": 404, "errors": body["errors"]}
        if offer["status"] != "PUBLISHED":
            _status, body = error(400, 25713, "Only published offers can be updated here.", field="offerId")
            return {**answer, "statusCode": 400, "errors": body["errors"]}
        price = (part.get("price") or {}).get("value")
        if price is not None and Decimal(price) <= 0:
            _status, body = error(400, 25003, "Invalid price.", field="price")
            return {**answer, "statusCode": 400, "errors": body["errors"]}
        refused = self._revise(offer)
        if refused:
            return {**answer, "statusCode": refused[0], "errors": refused[1]["errors"]}
        if price is not None:
            offer.setdefault("pricingSummary", {})["price"] = copy.deepcopy(part["price"])
        quantity = part.get("availableQuantity")
        if quantity is None:
            quantity = (entry.get("shipToLocationAvailability") or {}).get("quantity")
        if quantity is not None:
            item = self.items.get(sku)
            if item is not None:
                item.setdefault("availability", {}).setdefault("shipToLocationAvailability", {})["quantity"] = int(
                    quantity
                )
            self._set_quantity(offer, int(quantity))
        return {**answer, "statusCode": 200}

    def _set_quantity(self, offer: dict, quantity: int) -> None:
        offer["availableQuantity"] = quantity
        listing = offer.get("listing") or {}
        if offer["status"] == "PUBLISHED" and listing.get("listingStatus") == "ACTIVE" and quantity <= 0:
            listing["listingStatus"] = "ENDED"  # quantity 0 ends a listing, as eBay does without out-of-stock control

    def _published_offer(self, sku: str) -> dict | None:
        for offer in self.offers.values():
            if offer["sku"] == sku and offer["status"] == "PUBLISHED":
                return offer
        return None

    def _revise(self, offer: dict) -> tuple[int, Any] | None:
        """Count one revision of the offer's listing; refuse past 250 today."""
        listing_id = (offer.get("listing") or {}).get("listingId")
        if not listing_id:
            return None
        day = self.clock().date().isoformat()
        seen_day, count = self.revisions.get(listing_id, (day, 0))
        if seen_day != day:
            count = 0
        if count >= REVISIONS_PER_DAY:
            return error(
                400,
                25002,
                f"Listing {listing_id} has been revised {REVISIONS_PER_DAY} times today, the daily limit.",
                field="offerId",
                category="BUSINESS",
            )
        self.revisions[listing_id] = (day, count + 1)
        return None

    def revisions_today(self, sku: str) -> int:
        with self.lock:
            offer = self._published_offer(sku) or next((o for o in self.offers.values() if o["sku"] == sku), None)
            listing_id = ((offer or {}).get("listing") or {}).get("listingId")
            day, count = self.revisions.get(listing_id or "", ("", 0))
            return count if day == self.clock().date().isoformat() else 0

    # --- bulk item and offer calls (each entry as its single call would do it) ---------------------

    @staticmethod
    def _bulk(responses: list[dict]) -> tuple[int, Any]:
        return (200 if all(r["statusCode"] == 200 for r in responses) else 207), {"responses": responses}

    @staticmethod
    def _outcome(status: int, answer: Any, **keys: Any) -> dict:
        entry = {**keys, "statusCode": 200 if status < 300 else status}
        if status >= 300:
            entry["errors"] = answer["errors"]
        return entry

    def bulk_get_items(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 25:
            return error(400, 25709, "Invalid value for requests: 1 to 25 entries.", field="requests")
        responses = []
        for entry in entries:
            status, answer = self.get_item(str(entry.get("sku") or ""))
            found = self._outcome(status, answer, sku=entry.get("sku") or "")
            if status == 200:
                found["inventoryItem"] = answer
            responses.append(found)
        return self._bulk(responses)

    def bulk_put_items(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 25:
            return error(400, 25709, "Invalid value for requests: 1 to 25 entries.", field="requests")
        responses = []
        for entry in entries:
            sku = str(entry.get("sku") or "")
            item = {k: v for k, v in entry.items() if k not in ("sku", "locale")}
            status, answer = self.put_item(sku, item) if sku else error(400, 25707, "A SKU is required.", field="sku")
            responses.append(self._outcome(status, answer, sku=sku, locale=entry.get("locale") or "en_US"))
        return self._bulk(responses)

    def bulk_create_offers(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 25:
            return error(400, 25709, "Invalid value for requests: 1 to 25 entries.", field="requests")
        responses = []
        for entry in entries:
            status, answer = self.create_offer(entry)
            keys = {
                "sku": entry.get("sku") or "",
                "marketplaceId": entry.get("marketplaceId") or "",
                "format": entry.get("format") or "",
            }
            if status < 300:
                keys["offerId"] = answer["offerId"]
            responses.append(self._outcome(status, answer, **keys))
        return self._bulk(responses)

    def bulk_publish(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 25:
            return error(400, 25709, "Invalid value for requests: 1 to 25 entries.", field="requests")
        responses = []
        for entry in entries:
            offer_id = str(entry.get("offerId") or "")
            status, answer = self.publish_offer(offer_id)
            found = self._outcome(status, answer, offerId=offer_id)
            if status < 300:
                found["listingId"] = answer["listingId"]
            responses.append(found)
        return self._bulk(responses)

    # --- migration of listings made on eBay's site -------------------------------------------

    def add_legacy_listing(self, sku: str, *, title: str, price: str, quantity: int = 1) -> str:
        with self.lock:
            listing_id = self.new_id("listing")
            self.legacy_listings[listing_id] = {"sku": sku, "title": title, "price": price, "quantity": quantity}
            return listing_id

    def migrate(self, body: dict) -> tuple[int, Any]:
        entries = body.get("requests") or []
        if not 1 <= len(entries) <= 5:
            return error(400, 25709, "Invalid value for requests: 1 to 5 listings.", field="requests")
        responses = []
        with self.lock:
            for entry in entries:
                listing_id = str(entry.get("listingId") or "")
                legacy = self.legacy_listings.get(listing_id)
                if legacy is None or not legacy["sku"]:
                    _s, err = error(
                        400, 25718, "Cannot migrate: the listing needs a SKU and business policies.", field="listingId"
                    )
                    responses.append({"listingId": listing_id, "statusCode": 400, "errors": err["errors"]})
                    continue
                del self.legacy_listings[listing_id]
                sku = legacy["sku"]
                self.items[sku] = {
                    "sku": sku,
                    "locale": "en_US",
                    "condition": "USED_EXCELLENT",
                    "product": {"title": legacy["title"], "imageUrls": ["https://i.ebayimg.com/legacy.jpg"]},
                    "availability": {"shipToLocationAvailability": {"quantity": legacy["quantity"]}},
                }
                offer_id = self.new_id("offer")
                self.offers[offer_id] = {
                    "offerId": offer_id,
                    "sku": sku,
                    "marketplaceId": "EBAY_US",
                    "format": "FIXED_PRICE",
                    "availableQuantity": legacy["quantity"],
                    "pricingSummary": {"price": {"value": legacy["price"], "currency": "USD"}},
                    "status": "PUBLISHED",
                    "listing": {"listingId": listing_id, "listingStatus": "ACTIVE", "soldQuantity": 0},
                }
                responses.append(
                    {
                        "listingId": listing_id,
                        "marketplaceId": "EBAY_US",
                        "statusCode": 200,
                        "inventoryItems": [{"sku": sku, "offerId": offer_id}],
                    }
                )
        status = 200 if all(r["statusCode"] == 200 for r in responses) else 207
        return status, {"responses": responses}

    # --- locations and policies ----------------------------------------------------------------

    def get_location(self, key: str) -> tuple[int, Any]:
        if key not in self.locations:
            return error(404, 25804, f"Location {key} not found.", field="merchantLocationKey")
        return 200, {
            "merchantLocationKey": key,
            "merchantLocationStatus": "ENABLED",
            "name": "Loopback warehouse",
            "locationTypes": ["WAREHOUSE"],
            "location": {"address": {"postalCode": "37203", "country": "US"}},
        }

    def get_policy(self, kind: str, policy_id: str) -> tuple[int, Any]:
        marketplace = self.policies.get(kind, {}).get(policy_id)
        if marketplace is None:
            return error(404, 20404, f"No {kind} policy {policy_id}.", field=f"{kind}PolicyId", domain="API_ACCOUNT")
        return 200, {f"{kind}PolicyId": policy_id, "name": f"Loopback {kind}", "marketplaceId": marketplace}

    # --- sales and orders ----------------------------------------------------------------------

    def sell(self, sku: str, quantity: int = 1, *, buyer: str = "loopback_buyer", paid: bool = True) -> dict:
        with self.lock:
            offer = self._published_offer(sku)
            if offer is None or (offer.get("listing") or {}).get("listingStatus") != "ACTIVE":
                raise SandboxError(f"{sku} is not for sale on the loopback eBay")
            if int(offer.get("availableQuantity") or 0) < quantity:
                raise SandboxError(f"{sku} has fewer than {quantity} available")
            price = Decimal(offer["pricingSummary"]["price"]["value"])
            currency = offer["pricingSummary"]["price"]["currency"]
            listing = offer["listing"]
            listing["soldQuantity"] = int(listing.get("soldQuantity") or 0) + quantity
            left = int(offer["availableQuantity"]) - quantity
            item = self.items.get(sku)
            if item is not None:
                item["availability"]["shipToLocationAvailability"]["quantity"] = left
            self._set_quantity(offer, left)
            now = self.clock()
            order_id = f"{int(self.new_id('order')):02d}-{10000 + len(self.orders):05d}-{20000 + len(self.orders):05d}"
            total = price * quantity
            amount = {"value": f"{total:.2f}", "currency": currency}
            order = {
                "orderId": order_id,
                "legacyOrderId": f"{listing['listingId']}-{len(self.orders) + 1}",
                "creationDate": iso(now),
                "lastModifiedDate": iso(now),
                "orderFulfillmentStatus": "NOT_STARTED",
                "orderPaymentStatus": "PAID" if paid else "PENDING",
                "sellerId": "loopback_seller",
                "buyer": {"username": buyer},
                "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
                "pricingSummary": {
                    "priceSubtotal": amount,
                    "deliveryCost": {"value": "0.00", "currency": currency},
                    "total": amount,
                },
                "fulfillmentStartInstructions": [
                    {
                        "fulfillmentInstructionsType": "SHIP_TO",
                        "shippingStep": {
                            "shipTo": {
                                "fullName": "Loopback Buyer",
                                "email": "buyer@example.com",
                                "contactAddress": {
                                    "addressLine1": "1 Loop Street",
                                    "city": "Nashville",
                                    "stateOrProvince": "TN",
                                    "postalCode": "37203",
                                    "country": "US",
                                },
                            }
                        },
                    }
                ],
                "lineItems": [
                    {
                        "lineItemId": str(10_000_000 + len(self.orders)),
                        "legacyItemId": listing["listingId"],
                        "sku": sku,
                        "title": ((item or {}).get("product") or {}).get("title") or sku,
                        "quantity": quantity,
                        "lineItemCost": amount,
                        "lineItemFulfillmentStatus": "NOT_STARTED",
                    }
                ],
            }
            self.orders[order_id] = order
            return copy.deepcopy(order)

    def set_order(self, order_id: str, **changes: Any) -> dict:
        with self.lock:
            order = self.orders[order_id]
            if "cancelState" in changes:
                order["cancelStatus"]["cancelState"] = changes.pop("cancelState")
            order.update(changes)
            order["lastModifiedDate"] = iso(self.clock() + timedelta(milliseconds=1))
            return copy.deepcopy(order)

    def get_order(self, order_id: str) -> tuple[int, Any]:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return error(404, 32100, f"Order {order_id} not found.", field="orderId", domain="API_FULFILLMENT")
            return 200, copy.deepcopy(order)

    def search_orders(self, raw_query: str, query: dict[str, str]) -> tuple[int, Any]:
        if "[" in raw_query or "]" in raw_query or "{" in raw_query:
            return error(
                400,
                30700,
                "The filter must be percent-encoded ([ ] { } as %5B %5D %7B %7D).",
                field="filter",
                domain="API_FULFILLMENT",
            )
        try:
            limit = int(query.get("limit") or 50)
            offset = int(query.get("offset") or 0)
        except ValueError:
            return error(400, 30820, "Invalid limit or offset.", field="limit", domain="API_FULFILLMENT")
        if not 1 <= limit <= 200 or offset < 0:
            return error(400, 30820, "limit is 1 to 200, offset 0 or more.", field="limit", domain="API_FULFILLMENT")
        start = end = None
        field = "lastModifiedDate"
        flt = query.get("filter") or ""
        for part in [p for p in flt.split(",") if p]:
            name, _, value = part.partition(":")
            if name not in ("creationdate", "lastmodifieddate", "orderfulfillmentstatus"):
                return error(400, 30800, f"Unknown filter {name}.", field="filter", domain="API_FULFILLMENT")
            if name == "orderfulfillmentstatus":
                continue
            if name == "creationdate" or field != "creationDate":  # creationdate wins when both are sent
                field = "creationDate" if name == "creationdate" else "lastModifiedDate"
                try:
                    low, high = value.strip("[]").split("..")
                    start = parse_iso(low) if low else None
                    end = parse_iso(high) if high else None
                except ValueError:
                    return error(400, 30810, f"Invalid date range {value}.", field="filter", domain="API_FULFILLMENT")
        with self.lock:
            found = sorted(self.orders.values(), key=lambda o: (o[field], o["orderId"]))
            found = [
                o
                for o in found
                if (start is None or parse_iso(o[field]) >= start) and (end is None or parse_iso(o[field]) <= end)
            ]
            page = found[offset : offset + limit]
            body: dict[str, Any] = {
                "href": f"/sell/fulfillment/v1/order?limit={limit}&offset={offset}",
                "limit": limit,
                "offset": offset,
                "total": len(found),
                "orders": copy.deepcopy(page),
            }
            if offset + limit < len(found):
                body["next"] = f"/sell/fulfillment/v1/order?limit={limit}&offset={offset + limit}"
            return 200, body

    # --- for tests ------------------------------------------------------------------------------

    def offers_by_sku(self, sku: str) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(o) for o in self.offers.values() if o["sku"] == sku]

    def new_notification_id(self) -> str:
        return str(uuid.uuid4())
