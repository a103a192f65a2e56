"""The loopback Etsy's state: one shop with its profiles, listings, inventory, images, receipts,
shipments, and the OAuth apps, codes and tokens. Answers in the spec's shapes. Thread-safe."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

Answer = tuple[int, Any]

SHOP_ID = 55500001
USER_ID = 77700001
SHIPPING_PROFILE_ID = 90001
RETURN_POLICY_ID = 91001
READINESS_STATE_ID = 92001
APPLICATION_ID = 424242
DEFAULT_KEYSTRING = "sandboxkeystring"
DEFAULT_SHARED_SECRET = "sandboxsharedsecret"
DEFAULT_REDIRECT = "http://127.0.0.1/etsy/oauth/callback/"


class SandboxError(Exception):
    """A sandbox control call that cannot be done (unknown SKU, listing not for sale...)."""


def error(status: int, message: str) -> Answer:
    return status, {"error": message}


def money(amount: Decimal, currency: str = "USD") -> dict:
    cents = int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    return {"amount": cents, "divisor": 100, "currency_code": currency}


class EtsyStore:
    def __init__(self, *, clock: Callable[[], float] = time.time, token_lifetime: int = 3600) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.token_lifetime = token_lifetime
        self.apps = {DEFAULT_KEYSTRING: DEFAULT_SHARED_SECRET}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.refresh_tokens: dict[str, dict] = {}
        self.refuse_refresh = False
        self.listings: dict[int, dict] = {}
        self.images: dict[int, list[dict]] = {}
        self.receipts: dict[int, dict] = {}
        self._next = {"listing": 1_500_000_001, "image": 3_000_000_001, "receipt": 2_900_000_001, "txn": 4_100_000_001}

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] += 1
        return value

    def now(self) -> int:
        return int(self.clock())

    # --- OAuth ------------------------------------------------------------------------

    def authorize(self, query: Mapping[str, str]) -> tuple[int, str | dict]:
        """Consent is given at once (the real page asks the shop owner): a redirect with code and state."""
        problems = [
            name
            for name in ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge")
            if not query.get(name)
        ]
        if problems:
            return 400, {"error": "invalid_request", "error_description": f"missing {', '.join(problems)}"}
        if query["response_type"] != "code" or query.get("code_challenge_method") != "S256":
            return 400, {"error": "invalid_request", "error_description": "response_type=code and S256 are required"}
        if query["client_id"] not in self.apps:
            return 400, {"error": "invalid_client"}
        if not (43 <= len(query["code_challenge"]) <= 128):
            return 400, {"error": "invalid_request", "error_description": "code_challenge must be 43-128 characters"}
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "client_id": query["client_id"],
                "redirect_uri": query["redirect_uri"],
                "challenge": query["code_challenge"],
                "scopes": query["scope"].split(),
                "expires": self.now() + 300,
            }
        separator = "&" if "?" in query["redirect_uri"] else "?"
        return 302, f"{query['redirect_uri']}{separator}code={code}&state={query['state']}"

    def token(self, form: Mapping[str, str]) -> Answer:
        grant = form.get("grant_type")
        if form.get("client_id") not in self.apps:
            return 401, {"error": "invalid_client"}
        with self.lock:
            if grant == "authorization_code":
                pending = self.codes.pop(form.get("code", ""), None)
                if pending is None or pending["expires"] < self.now():
                    return 400, {"error": "invalid_grant", "error_description": "code unknown, used or expired"}
                if pending["redirect_uri"] != form.get("redirect_uri") or pending["client_id"] != form["client_id"]:
                    return 400, {"error": "invalid_grant", "error_description": "redirect_uri or client_id differ"}
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != pending["challenge"]:
                    return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match"}
                return 200, self._issue(pending["scopes"])
            if grant == "refresh_token":
                grant_row = self.refresh_tokens.get(form.get("refresh_token", ""))
                if grant_row is None or self.refuse_refresh:
                    return 400, {"error": "invalid_grant", "error_description": "refresh token revoked or unknown"}
                return 200, self._issue(grant_row["scopes"], refresh=form["refresh_token"])
        return 400, {"error": "unsupported_grant_type"}

    def _issue(self, scopes: list[str], refresh: str | None = None) -> dict:
        access = f"{USER_ID}.{secrets.token_urlsafe(24)}"
        self.tokens[access] = {"scopes": scopes, "expires": self.now() + self.token_lifetime}
        if refresh is None:
            refresh = f"{USER_ID}.{secrets.token_urlsafe(24)}"
            self.refresh_tokens[refresh] = {"scopes": scopes}
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "refresh_token": refresh,
        }

    def grant(self, scopes: str = "listings_r listings_w listings_d transactions_r transactions_w shops_r") -> dict:
        """Tokens as if the shop owner had connected (tests and the demo skip the browser)."""
        with self.lock:
            return self._issue(scopes.split())

    def token_problem(self, bearer: str, scopes: tuple[str, ...]) -> str:
        row = self.tokens.get(bearer)
        if row is None:
            return "invalid_token"
        if row["expires"] <= self.now():
            return "expired_token"
        missing = [s for s in scopes if s not in row["scopes"]]
        return f"insufficient_scope: {' '.join(missing)}" if missing else ""

    def expire_tokens(self) -> None:
        with self.lock:
            for row in self.tokens.values():
                row["expires"] = self.now() - 1

    # --- rendering --------------------------------------------------------------------

    def render_listing(self, listing: dict, *, images: bool = False) -> dict:
        out = {
            "listing_id": listing["listing_id"],
            "user_id": USER_ID,
            "shop_id": SHOP_ID,
            "title": listing["title"],
            "description": listing["description"],
            "state": listing["state"],
            "creation_timestamp": listing["created"],
            "created_timestamp": listing["created"],
            "ending_timestamp": listing["created"] + 120 * 86400,
            "original_creation_timestamp": listing["created"],
            "last_modified_timestamp": listing["updated"],
            "updated_timestamp": listing["updated"],
            "state_timestamp": listing["updated"],
            "quantity": listing["quantity"],
            "shop_section_id": None,
            "featured_rank": -1,
            "url": f"https://www.etsy.com/listing/{listing['listing_id']}",
            "num_favorers": 0,
            "non_taxable": False,
            "is_taxable": True,
            "is_customizable": False,
            "is_personalizable": False,
            "listing_type": listing["type"],
            "tags": list(listing["tags"]),
            "materials": list(listing["materials"]),
            "shipping_profile_id": listing["shipping_profile_id"],
            "return_policy_id": listing["return_policy_id"],
            "processing_min": None,
            "processing_max": None,
            "who_made": listing["who_made"],
            "when_made": listing["when_made"],
            "is_supply": listing["is_supply"],
            "item_weight": None,
            "item_weight_unit": None,
            "item_length": None,
            "item_width": None,
            "item_height": None,
            "item_dimensions_unit": None,
            "is_private": False,
            "style": [],
            "file_data": "",
            "has_variations": False,
            "should_auto_renew": listing["should_auto_renew"],
            "language": "en-US",
            "price": money(listing["price"]),
            "taxonomy_id": listing["taxonomy_id"],
            "readiness_state_id": listing["readiness_state_id"],
            "skus": [listing["sku"]] if listing["sku"] else [],
        }
        if images:
            out["images"] = [self.render_image(listing["listing_id"], i) for i in self._images(listing["listing_id"])]
        return out

    def _images(self, listing_id: int) -> list[dict]:
        return sorted(self.images.get(listing_id, []), key=lambda i: i["rank"])

    def render_image(self, listing_id: int, image: dict) -> dict:
        base = f"https://i.etsystatic.com/sandbox/{image['listing_image_id']}"
        return {
            "listing_id": listing_id,
            "listing_image_id": image["listing_image_id"],
            "hex_code": None,
            "red": None,
            "green": None,
            "blue": None,
            "hue": None,
            "saturation": None,
            "brightness": None,
            "is_black_and_white": None,
            "creation_tsz": image["created"],
            "created_timestamp": image["created"],
            "rank": image["rank"],
            "url_75x75": f"{base}/75x75.jpg",
            "url_170x135": f"{base}/170x135.jpg",
            "url_570xN": f"{base}/570xN.jpg",
            "url_fullxfull": f"{base}/fullxfull.jpg",
            "full_height": None,
            "full_width": None,
            "alt_text": image["alt_text"],
        }

    def render_inventory(self, listing: dict) -> dict:
        return {
            "products": [
                {
                    "product_id": listing["listing_id"] + 7,
                    "sku": listing["sku"],
                    "is_deleted": False,
                    "offerings": [
                        {
                            "offering_id": listing["listing_id"] + 11,
                            "quantity": listing["quantity"],
                            "is_enabled": listing["offering_enabled"],
                            "is_deleted": False,
                            "price": money(listing["price"]),
                            "readiness_state_id": listing["readiness_state_id"],
                        }
                    ],
                    "property_values": [],
                }
            ],
            "price_on_property": [],
            "quantity_on_property": [],
            "sku_on_property": [],
            "readiness_state_on_property": [],
        }

    def render_receipt(self, receipt: dict) -> dict:
        subtotal = sum((t["price"] * t["quantity"] for t in receipt["transactions"]), Decimal("0"))
        shipping = receipt["shipping"]
        return {
            "receipt_id": receipt["receipt_id"],
            "receipt_type": 0,
            "seller_user_id": USER_ID,
            "seller_email": "seller@example.com",
            "buyer_user_id": receipt["buyer_user_id"],
            "buyer_email": receipt["buyer_email"],
            "name": receipt["name"],
            "first_line": "1 Main Street",
            "second_line": None,
            "city": "Nashville",
            "state": "TN",
            "zip": "37203",
            "status": receipt["status"],
            "formatted_address": f"{receipt['name']}\n1 Main Street\nNashville, TN 37203\nUnited States",
            "country_iso": "US",
            "payment_method": "cc",
            "payment_email": None,
            "message_from_seller": None,
            "message_from_buyer": None,
            "message_from_payment": None,
            "is_paid": receipt["status"] in ("paid", "completed", "partially refunded", "fully refunded"),
            "is_shipped": bool(receipt["shipments"]),
            "create_timestamp": receipt["created"],
            "created_timestamp": receipt["created"],
            "update_timestamp": receipt["updated"],
            "updated_timestamp": receipt["updated"],
            "is_gift": False,
            "gift_message": "",
            "gift_sender": "",
            "grandtotal": money(subtotal + shipping),
            "subtotal": money(subtotal),
            "total_price": money(subtotal),
            "total_shipping_cost": money(shipping),
            "total_tax_cost": money(Decimal("0")),
            "total_vat_cost": money(Decimal("0")),
            "discount_amt": money(Decimal("0")),
            "gift_wrap_price": money(Decimal("0")),
            "shipments": [dict(s) for s in receipt["shipments"]],
            "transactions": [self._render_transaction(receipt, t) for t in receipt["transactions"]],
            "refunds": [],
        }

    def _render_transaction(self, receipt: dict, t: dict) -> dict:
        return {
            "transaction_id": t["transaction_id"],
            "title": t["title"],
            "description": None,
            "seller_user_id": USER_ID,
            "buyer_user_id": receipt["buyer_user_id"],
            "create_timestamp": receipt["created"],
            "created_timestamp": receipt["created"],
            "paid_timestamp": receipt["created"],
            "shipped_timestamp": None,
            "quantity": t["quantity"],
            "listing_image_id": None,
            "receipt_id": receipt["receipt_id"],
            "is_digital": False,
            "file_data": "",
            "listing_id": t["listing_id"],
            "transaction_type": "listing",
            "product_id": t["listing_id"] + 7,
            "sku": t["sku"],
            "price": money(t["price"]),
            "shipping_cost": money(Decimal("0")),
            "variations": [],
            "product_data": [],
            "shipping_profile_id": SHIPPING_PROFILE_ID,
            "min_processing_days": 1,
            "max_processing_days": 3,
            "shipping_method": None,
            "shipping_upgrade": None,
            "expected_ship_date": receipt["created"] + 3 * 86400,
            "buyer_coupon": 0.0,
            "shop_coupon": 0.0,
        }

    # --- shop ---------------------------------------------------------------------------

    def me(self) -> Answer:
        return 200, {"user_id": USER_ID, "shop_id": SHOP_ID}

    def shop(self, shop_id: int) -> Answer:
        if shop_id != SHOP_ID:
            return error(404, f"Shop {shop_id} not found")
        now = self.now()
        return 200, {
            "shop_id": SHOP_ID,
            "user_id": USER_ID,
            "shop_name": "SandboxVintageGear",
            "create_date": now,
            "created_timestamp": now,
            "title": "Vintage guitars and amps",
            "announcement": None,
            "currency_code": "USD",
            "is_vacation": False,
            "vacation_message": None,
            "sale_message": None,
            "digital_sale_message": None,
            "update_date": now,
            "updated_timestamp": now,
            "listing_active_count": sum(1 for item in self.listings.values() if item["state"] == "active"),
            "digital_listing_count": 0,
            "login_name": "sandboxseller",
            "accepts_custom_requests": False,
            "policy_welcome": None,
            "policy_payment": None,
            "policy_shipping": None,
            "policy_refunds": None,
            "policy_additional": None,
            "policy_seller_info": None,
            "policy_update_date": now,
            "policy_has_private_receipt_info": False,
            "has_unstructured_policies": False,
            "policy_privacy": None,
            "vacation_autoreply": None,
            "url": "https://www.etsy.com/shop/SandboxVintageGear",
            "image_url_760x100": None,
            "num_favorers": 0,
            "languages": ["en-US"],
            "icon_url_fullxfull": None,
            "is_using_structured_policies": True,
            "has_onboarded_structured_policies": True,
            "include_dispute_form_link": False,
            "is_direct_checkout_onboarded": True,
            "is_etsy_payments_onboarded": True,
            "is_calculated_eligible": True,
            "is_opted_in_to_buyer_promise": False,
            "is_shop_us_based": True,
            "transaction_sold_count": len(self.receipts),
            "shipping_from_country_iso": "US",
            "shop_location_country_iso": "US",
            "review_count": 0,
            "review_average": None,
        }

    def shipping_profile(self, shop_id: int, profile_id: int) -> Answer:
        if shop_id != SHOP_ID or profile_id != SHIPPING_PROFILE_ID:
            return error(404, f"Shipping profile {profile_id} not found")
        return 200, {
            "shipping_profile_id": SHIPPING_PROFILE_ID,
            "title": "Guitar, insured",
            "user_id": USER_ID,
            "origin_country_iso": "US",
            "is_deleted": False,
            "shipping_profile_destinations": [],
            "shipping_profile_upgrades": [],
            "origin_postal_code": "37203",
            "profile_type": "manual",
            "domestic_handling_fee": 0.0,
            "international_handling_fee": 0.0,
        }

    def return_policy(self, shop_id: int, policy_id: int) -> Answer:
        if shop_id != SHOP_ID or policy_id != RETURN_POLICY_ID:
            return error(404, f"Return policy {policy_id} not found")
        return 200, {
            "return_policy_id": RETURN_POLICY_ID,
            "shop_id": SHOP_ID,
            "accepts_returns": True,
            "accepts_exchanges": False,
            "return_deadline": 14,
        }

    # --- listings -------------------------------------------------------------------------

    def _listing(self, listing_id: int) -> dict | None:
        return self.listings.get(int(listing_id))

    def create_draft(self, shop_id: int, form: dict) -> Answer:
        if shop_id != SHOP_ID:
            return error(403, "This token cannot write to that shop")
        if form["quantity"] < 1 or form["price"] <= 0:
            return error(400, "quantity and price must be positive")
        if len(form["title"]) > 140:
            return error(400, "title is longer than 140 characters")
        problems = self._text_problems(form)
        if problems:
            return error(400, problems)
        if form.get("shipping_profile_id") not in (None, SHIPPING_PROFILE_ID):
            return error(400, f"shipping_profile_id {form.get('shipping_profile_id')} is not a profile of this shop")
        with self.lock:
            now = self.now()
            listing_id = self._id("listing")
            self.listings[listing_id] = {
                "listing_id": listing_id,
                "state": "draft",
                "title": form["title"],
                "description": form["description"],
                "price": Decimal(str(form["price"])).quantize(Decimal("0.01")),
                "quantity": form["quantity"],
                "offering_enabled": True,
                "who_made": form["who_made"],
                "when_made": form["when_made"],
                "taxonomy_id": form["taxonomy_id"],
                "tags": form.get("tags") or [],
                "materials": form.get("materials") or [],
                "shipping_profile_id": form.get("shipping_profile_id"),
                "return_policy_id": form.get("return_policy_id"),
                "readiness_state_id": READINESS_STATE_ID,
                "is_supply": form.get("is_supply", False),
                "type": form.get("type", "physical"),
                "should_auto_renew": form.get("should_auto_renew", False),
                "sku": "",
                "created": now,
                "updated": now,
                "renewals": 0,
            }
            return 201, self.render_listing(self.listings[listing_id])

    @staticmethod
    def _text_problems(form: Mapping[str, Any]) -> str:
        title = form.get("title")
        if isinstance(title, str):
            for char in "%:&+":
                if title.count(char) > 1:
                    return f"title may use {char} only once"
        tags = form.get("tags") or []
        if len(tags) > 13:
            return "at most 13 tags"
        for tag in tags:
            if len(tag) > 20:
                return f"tag {tag!r} is longer than 20 characters"
        return ""

    def update_listing(self, shop_id: int, listing_id: int, form: dict) -> Answer:
        with self.lock:
            listing = self._listing(listing_id)
            if listing is None or shop_id != SHOP_ID:
                return error(404, f"Listing {listing_id} not found")
            if "title" in form and len(form["title"]) > 140:
                return error(400, "title is longer than 140 characters")
            problems = self._text_problems(form)
            if problems:
                return error(400, problems)
            state = form.pop("state", None)
            for name in (
                "title",
                "description",
                "who_made",
                "when_made",
                "taxonomy_id",
                "tags",
                "materials",
                "shipping_profile_id",
                "return_policy_id",
                "is_supply",
                "should_auto_renew",
                "type",
            ):
                if name in form:
                    listing[name] = form[name] if form[name] is not None else listing[name]
            if state == "active":
                if not self._images(listing_id):
                    return error(400, "A listing needs at least one image to be active")
                if listing["state"] in ("sold_out", "expired"):
                    listing["renewals"] += 1
                    if listing["state"] == "sold_out":
                        listing["quantity"] = 1
                        listing["offering_enabled"] = True
                listing["state"] = "active"
            elif state == "inactive":
                if listing["state"] != "active":
                    return error(409, f"Only an active listing can be made inactive (this one is {listing['state']})")
                listing["state"] = "inactive"
            listing["updated"] = self.now()
            return 200, self.render_listing(listing)

    def get_listing(self, listing_id: int, includes: list[str]) -> Answer:
        listing = self._listing(listing_id)
        if listing is None:
            return error(404, f"Listing {listing_id} not found")
        return 200, self.render_listing(listing, images="Images" in includes)

    def delete_listing(self, listing_id: int) -> Answer:
        with self.lock:
            if self.listings.pop(int(listing_id), None) is None:
                return error(404, f"Listing {listing_id} not found")
            self.images.pop(int(listing_id), None)
            return 204, None

    def get_inventory(self, listing_id: int) -> Answer:
        listing = self._listing(listing_id)
        if listing is None:
            return error(404, f"Listing {listing_id} not found")
        return 200, self.render_inventory(listing)

    def update_inventory(self, listing_id: int, body: dict) -> Answer:
        with self.lock:
            listing = self._listing(listing_id)
            if listing is None:
                return error(404, f"Listing {listing_id} not found")
            products = body["products"]
            if len(products) != 1 or len(products[0]["offerings"]) != 1:
                return error(400, "The sandbox keeps one product with one offering per listing")
            offering = products[0]["offerings"][0]
            if offering["price"] <= 0 or offering["quantity"] < 0:
                return error(400, "price must be positive and quantity not negative")
            if offering["readiness_state_id"] not in (None, READINESS_STATE_ID):
                return error(400, f"readiness_state_id {offering['readiness_state_id']} is not a processing profile")
            listing["sku"] = products[0].get("sku") or ""
            listing["price"] = Decimal(str(offering["price"])).quantize(Decimal("0.01"))
            listing["quantity"] = offering["quantity"]
            listing["offering_enabled"] = offering["is_enabled"] and offering["quantity"] > 0
            if listing["state"] == "active" and not listing["offering_enabled"]:
                listing["state"] = "sold_out"
            listing["updated"] = self.now()
            return 200, self.render_inventory(listing)

    def listing_images(self, listing_id: int) -> Answer:
        if self._listing(listing_id) is None:
            return error(404, f"Listing {listing_id} not found")
        images = [self.render_image(listing_id, i) for i in self._images(listing_id)]
        return 200, {"count": len(images), "results": images}

    def upload_image(self, shop_id: int, listing_id: int, form: dict, files: Mapping[str, bytes]) -> Answer:
        with self.lock:
            listing = self._listing(listing_id)
            if listing is None or shop_id != SHOP_ID:
                return error(404, f"Listing {listing_id} not found")
            data = files.get("image")
            if not data:
                return error(400, "image is required (a file)")
            images = self.images.setdefault(listing_id, [])
            if len(images) >= 20:
                return error(400, "A listing has at most 20 images")
            rank = form.get("rank") or len(images) + 1
            if any(i["rank"] == rank for i in images):
                if not form.get("overwrite"):
                    return error(409, f"An image already has rank {rank}")
                images[:] = [i for i in images if i["rank"] != rank]
            image = {
                "listing_image_id": self._id("image"),
                "rank": rank,
                "alt_text": form.get("alt_text", ""),
                "size": len(data),
                "created": self.now(),
            }
            images.append(image)
            listing["updated"] = self.now()
            return 201, self.render_image(listing_id, image)

    def delete_image(self, shop_id: int, listing_id: int, image_id: int) -> Answer:
        with self.lock:
            images = self.images.get(int(listing_id), [])
            kept = [i for i in images if i["listing_image_id"] != int(image_id)]
            if len(kept) == len(images):
                return error(404, f"Image {image_id} not found")
            self.images[int(listing_id)] = kept
            return 204, None

    def shop_listings(self, shop_id: int, query: Mapping[str, Any]) -> Answer:
        if shop_id != SHOP_ID:
            return error(404, f"Shop {shop_id} not found")
        state = query.get("state", "active")
        rows = sorted((i for i in self.listings.values() if i["state"] == state), key=lambda i: -i["created"])
        rows.sort(key=lambda i: -i["listing_id"])
        offset, limit = query.get("offset", 0), query.get("limit", 25)
        images = "Images" in (query.get("includes") or [])
        page = [self.render_listing(i, images=images) for i in rows[offset : offset + limit]]
        return 200, {"count": len(rows), "results": page}

    # --- receipts -------------------------------------------------------------------------

    def receipts_page(self, shop_id: int, query: Mapping[str, Any]) -> Answer:
        if shop_id != SHOP_ID:
            return error(404, f"Shop {shop_id} not found")
        rows = list(self.receipts.values())
        if query.get("min_last_modified"):
            rows = [r for r in rows if r["updated"] >= query["min_last_modified"]]
        if query.get("max_last_modified"):
            rows = [r for r in rows if r["updated"] <= query["max_last_modified"]]
        if query.get("min_created"):
            rows = [r for r in rows if r["created"] >= query["min_created"]]
        if query.get("was_paid") is not None:
            rows = [r for r in rows if self.render_receipt(r)["is_paid"] == query["was_paid"]]
        key = {"created": "created", "updated": "updated", "receipt_id": "receipt_id"}[query.get("sort_on", "created")]
        descending = query.get("sort_order", "desc") in ("desc", "descending", "down")
        rows.sort(key=lambda r: (r[key], r["receipt_id"]), reverse=descending)
        offset, limit = query.get("offset", 0), query.get("limit", 25)
        return 200, {"count": len(rows), "results": [self.render_receipt(r) for r in rows[offset : offset + limit]]}

    def receipt(self, shop_id: int, receipt_id: int) -> Answer:
        receipt = self.receipts.get(int(receipt_id))
        if receipt is None or shop_id != SHOP_ID:
            return error(404, f"Receipt {receipt_id} not found")
        return 200, self.render_receipt(receipt)

    def create_shipment(self, shop_id: int, receipt_id: int, body: Mapping[str, Any]) -> Answer:
        with self.lock:
            receipt = self.receipts.get(int(receipt_id))
            if receipt is None or shop_id != SHOP_ID:
                return error(404, f"Receipt {receipt_id} not found")
            if not body.get("tracking_code") or not body.get("carrier_name"):
                return error(400, "tracking_code and carrier_name are required")
            receipt["shipments"].append(
                {
                    "receipt_shipping_id": len(receipt["shipments"]) + 1,
                    "shipment_notification_timestamp": self.now(),
                    "carrier_name": body["carrier_name"],
                    "tracking_code": body["tracking_code"],
                }
            )
            receipt["updated"] = self.now()
            return 200, self.render_receipt(receipt)

    # --- the buyer's and the seller's side ---------------------------------------------------

    def add_listing(self, sku: str, *, title: str, price: str, quantity: int = 1, state: str = "active") -> dict:
        with self.lock:
            now = self.now()
            listing_id = self._id("listing")
            self.listings[listing_id] = {
                "listing_id": listing_id, "state": state, "title": title, "description": title,
                "price": Decimal(price), "quantity": quantity, "offering_enabled": True, "who_made": "someone_else",
                "when_made": "1970s", "taxonomy_id": 1, "tags": [], "materials": [], "shipping_profile_id": SHIPPING_PROFILE_ID,
                "return_policy_id": None, "readiness_state_id": READINESS_STATE_ID, "is_supply": False, "type": "physical",
                "should_auto_renew": False, "sku": sku, "created": now, "updated": now, "renewals": 0,
            }  # fmt: skip
            self.images[listing_id] = [
                {"listing_image_id": self._id("image"), "rank": 1, "alt_text": title, "size": 1, "created": now}
            ]
            return self.render_listing(self.listings[listing_id], images=True)

    def sell(self, ref: str, quantity: int = 1) -> dict:
        with self.lock:
            listing = self._listing(int(ref)) if str(ref).isdigit() and int(ref) in self.listings else None
            if listing is None:
                found = [i for i in self.listings.values() if i["sku"] == ref and i["state"] == "active"]
                listing = found[0] if found else None
            if listing is None or listing["state"] != "active":
                raise SandboxError(f"No active Etsy listing for {ref!r}.")
            if listing["quantity"] < quantity:
                raise SandboxError(f"Listing {listing['listing_id']} has only {listing['quantity']} left.")
            listing["quantity"] -= quantity
            if listing["quantity"] == 0:
                listing["state"] = "sold_out"
                listing["offering_enabled"] = False
            now = self.now()
            listing["updated"] = now
            receipt_id = self._id("receipt")
            self.receipts[receipt_id] = {
                "receipt_id": receipt_id,
                "status": "paid",
                "buyer_user_id": 88800000 + len(self.receipts),
                "buyer_email": f"buyer{len(self.receipts)}@example.com",
                "name": "Vintage Buyer",
                "created": now,
                "updated": now,
                "shipping": Decimal("45.00"),
                "shipments": [],
                "transactions": [
                    {
                        "transaction_id": self._id("txn"),
                        "listing_id": listing["listing_id"],
                        "sku": listing["sku"],
                        "title": listing["title"],
                        "quantity": quantity,
                        "price": listing["price"],
                    }
                ],
            }
            return self.render_receipt(self.receipts[receipt_id])

    def set_receipt_status(self, receipt_id: int, status: str) -> dict:
        with self.lock:
            receipt = self.receipts[int(receipt_id)]
            receipt["status"] = status
            receipt["updated"] = self.now()
            if status in ("canceled", "fully refunded"):
                for t in receipt["transactions"]:
                    listing = self._listing(t["listing_id"])
                    if listing is not None and listing["state"] in ("active", "sold_out"):
                        listing["quantity"] += t["quantity"]
                        listing["offering_enabled"] = True
            return self.render_receipt(receipt)
