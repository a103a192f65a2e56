"""Pure functions between the channel contract's data and eBay's Inventory / Fulfillment JSON.

No HTTP, no ORM: tested without a network.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from inventory.channels import (
    ORDER_CANCELLED,
    ORDER_PAID,
    ORDER_PENDING,
    ListingPayload,
    ListingSeen,
    OrderLineSeen,
    OrderSeen,
    SeoField,
    cut_at_word,
    not_sent,
    squash,
)

TITLE_MAX = 80
DESCRIPTION_MAX = 4000  # product.description
LISTING_DESCRIPTION_MAX = 500_000
ASPECT_VALUE_MAX = 50
IMAGES_MAX = 24
SKU_MAX = 50

# Our condition grades -> eBay's ConditionEnum (most music-gear categories accept these).
CONDITIONS = {
    "brand_new": "NEW",
    "b_stock": "NEW_OTHER",
    "mint": "LIKE_NEW",
    "excellent": "USED_EXCELLENT",
    "very_good": "USED_VERY_GOOD",
    "good": "USED_GOOD",
    "fair": "USED_ACCEPTABLE",
    "poor": "USED_ACCEPTABLE",
    "non_functioning": "FOR_PARTS_OR_NOT_WORKING",
}
CONDITIONS_BACK = {
    "NEW": "brand_new",
    "NEW_OTHER": "b_stock",
    "NEW_WITH_DEFECTS": "b_stock",
    "LIKE_NEW": "mint",
    "USED_EXCELLENT": "excellent",
    "USED_VERY_GOOD": "very_good",
    "USED_GOOD": "good",
    "USED_ACCEPTABLE": "fair",
    "FOR_PARTS_OR_NOT_WORKING": "non_functioning",
}
# Aspect names eBay's musical-instrument categories use for our fields.
ASPECTS = (("Brand", "brand"), ("Model", "model"), ("Model Year", "year"), ("Body Color", "finish"))
TYPE_ASPECT = "Type"


def ebay_title(payload: ListingPayload) -> str:
    """At most 80 characters: the SEO title when set, else the title; cut cleanly at a word."""
    return cut_at_word(_title_wanted(payload), TITLE_MAX)[0]


def _title_wanted(payload: ListingPayload) -> str:
    return squash(payload.seo_title) or squash(payload.title)


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """eBay shows one title (80 characters, the SEO title when set); it has no meta description or
    keywords: item specifics (brand, model, year, finish, type) are what its search reads."""
    wanted = _title_wanted(payload)
    sent, cut = cut_at_word(wanted, TITLE_MAX)
    return (
        SeoField("product.title", "Title", "SEO title, else title", wanted, sent, TITLE_MAX, cut),
        not_sent(
            "seo_description",
            "SEO description",
            "SEO description",
            squash(payload.seo_description),
            "eBay has no meta description; the listing shows the item's description",
        ),
        not_sent(
            "keywords",
            "Keywords",
            "SEO keywords",
            squash(payload.seo_keywords),
            "eBay has no keywords field; its search reads the title and item specifics",
        ),
    )


def clean_cut(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    cut = text[:limit]
    if text[limit].isalnum() and cut[-1].isalnum():  # the limit falls inside a word: back to the last space
        space = cut.rfind(" ")
        if space > limit // 2:
            cut = cut[:space]
    return cut.rstrip(" ,;:-/(&").rstrip()


def aspects(payload: ListingPayload) -> dict[str, list[str]]:
    """Item specifics: Brand / Model / Model Year / Body Color / Type, each one value (<= 50 chars)."""
    found: dict[str, list[str]] = {}
    for name, attr in ASPECTS:
        value = str(getattr(payload, attr) or "").strip()
        if value:
            found[name] = [value[:ASPECT_VALUE_MAX]]
    if payload.category.strip():
        found[TYPE_ASPECT] = [payload.category.strip()[:ASPECT_VALUE_MAX]]
    return found


def ebay_condition(condition: str, overrides: Mapping[str, str] | None = None) -> str:
    overrides = overrides or {}
    return str(overrides.get(condition) or CONDITIONS.get(condition) or "USED_GOOD")


def listing_problems(payload: ListingPayload) -> list[str]:
    """What eBay will refuse before we ask it (so staff see it in our words)."""
    problems = []
    if not payload.sku or len(payload.sku) > SKU_MAX:
        problems.append(f"the SKU must be 1 to {SKU_MAX} characters")
    elif not re.fullmatch(r"[A-Za-z0-9._-]+", payload.sku):
        problems.append("the SKU may hold letters, digits, '.', '_' and '-' only (eBay 25707)")
    if not payload.photos:
        problems.append("eBay needs at least one photo")
    if payload.price is None or payload.price <= 0:
        problems.append("the price must be above zero")
    return problems


def inventory_item_body(payload: ListingPayload, *, condition_overrides: Mapping[str, str] | None = None) -> dict:
    """What we own of an inventory item: title, description, aspects, images, condition, quantity."""
    product: dict[str, Any] = {
        "title": ebay_title(payload),
        "description": clean_cut(payload.description or payload.title, DESCRIPTION_MAX),
        "aspects": aspects(payload),
        "imageUrls": list(payload.photos[:IMAGES_MAX]),
    }
    if payload.brand.strip():
        product["brand"] = payload.brand.strip()[:65]
    body: dict[str, Any] = {
        "availability": {"shipToLocationAvailability": {"quantity": max(int(payload.quantity), 0)}},
        "condition": ebay_condition(payload.condition, condition_overrides),
        "product": product,
    }
    return body


def same_content(a: Any, b: Any) -> bool:
    """Equal as eBay means it: amounts compared as numbers ("5000.0" is "5000.00"), the rest exactly."""
    return _normalised(a) == _normalised(b)


def _normalised(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) >= {"value", "currency"} and _decimal(value.get("value")) is not None:
            return {**{k: _normalised(v) for k, v in value.items()}, "value": _decimal(value["value"])}
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def merge_inventory_item(current: Mapping | None, ours: Mapping) -> dict:
    """createOrReplace replaces everything: keep what eBay holds that we do not own (package size,
    other aspects, a condition description, upc/mpn), overwrite what we do. Read-only parts of
    eBay's answer (allocationByFormat, sku, locale, group keys) are never sent back."""
    if not current:
        return copy.deepcopy(dict(ours))
    merged = {k: copy.deepcopy(v) for k, v in current.items() if k in WRITABLE_ITEM_FIELDS}
    if "availability" in merged:
        availability = {k: v for k, v in merged["availability"].items() if k in WRITABLE_AVAILABILITY_FIELDS}
        ship = dict(availability.get("shipToLocationAvailability") or {})
        ship.pop("allocationByFormat", None)
        if ship or "shipToLocationAvailability" in availability:
            availability["shipToLocationAvailability"] = ship
        merged["availability"] = availability
    if "product" in merged:
        merged["product"] = {k: v for k, v in merged["product"].items() if k in WRITABLE_PRODUCT_FIELDS}
    for key, value in ours.items():
        if key == "product":
            product = dict(merged.get("product") or {})
            for name, part in value.items():
                if name == "aspects":
                    kept = {k: v for k, v in (product.get("aspects") or {}).items() if k not in OWNED_ASPECTS}
                    product["aspects"] = {**kept, **part}
                else:
                    product[name] = part
            merged["product"] = product
        elif key == "availability":
            availability = dict(merged.get("availability") or {})
            ship = dict(availability.get("shipToLocationAvailability") or {})
            ship.update(value["shipToLocationAvailability"])
            availability["shipToLocationAvailability"] = ship
            merged["availability"] = availability
        else:
            merged[key] = value
    return merged


WRITABLE_ITEM_FIELDS = frozenset(
    {"availability", "condition", "conditionDescription", "packageWeightAndSize", "product"}
)
WRITABLE_PRODUCT_FIELDS = frozenset(
    {
        "aspects",
        "brand",
        "description",
        "ean",
        "epid",
        "imageUrls",
        "isbn",
        "mpn",
        "subtitle",
        "title",
        "upc",
        "videoIds",
    }
)
WRITABLE_AVAILABILITY_FIELDS = frozenset({"pickupAtLocationAvailability", "shipToLocationAvailability"})
OWNED_ASPECTS = frozenset({name for name, _ in ASPECTS} | {TYPE_ASPECT})


def money(value: Decimal, currency: str) -> dict:
    return {"value": f"{Decimal(value):.2f}", "currency": currency}


def offer_body(
    payload: ListingPayload,
    *,
    marketplace_id: str,
    category_id: str,
    merchant_location_key: str,
    fulfillment_policy_id: str,
    payment_policy_id: str,
    return_policy_id: str,
) -> dict:
    """createOffer's body (EbayOfferDetailsWithKeys): everything publishOffer needs."""
    body: dict[str, Any] = {
        "sku": payload.sku,
        "marketplaceId": marketplace_id,
        "format": "FIXED_PRICE",
        "availableQuantity": max(int(payload.quantity), 0),
        "pricingSummary": {"price": money(payload.price, payload.currency)},
        "listingDescription": (payload.description or payload.title)[:LISTING_DESCRIPTION_MAX],
        "listingPolicies": {
            k: v
            for k, v in {
                "fulfillmentPolicyId": fulfillment_policy_id,
                "paymentPolicyId": payment_policy_id,
                "returnPolicyId": return_policy_id,
            }.items()
            if v
        },
    }
    if category_id:
        body["categoryId"] = category_id
    if merchant_location_key:
        body["merchantLocationKey"] = merchant_location_key
    return body


OFFER_UPDATE_FIELDS = frozenset(
    {
        "availableQuantity",
        "categoryId",
        "charity",
        "extendedProducerResponsibility",
        "hideBuyerDetails",
        "includeCatalogProductDetails",
        "listingDescription",
        "listingDuration",
        "listingPolicies",
        "listingStartDate",
        "lotSize",
        "merchantLocationKey",
        "pricingSummary",
        "quantityLimitPerBuyer",
        "secondaryCategoryId",
        "storeCategoryNames",
        "tax",
    }
)


def offer_update_body(current: Mapping, ours: Mapping) -> dict:
    """updateOffer's body (EbayOfferDetailsWithId, a full replace): eBay's offer, our fields over it."""
    merged = {k: copy.deepcopy(v) for k, v in current.items() if k in OFFER_UPDATE_FIELDS}
    for key, value in ours.items():
        if key not in OFFER_UPDATE_FIELDS:
            continue
        if key == "pricingSummary":
            merged["pricingSummary"] = {**(merged.get("pricingSummary") or {}), **value}
        elif key == "listingPolicies":
            merged["listingPolicies"] = {**(merged.get("listingPolicies") or {}), **value}
        else:
            merged[key] = value
    return merged


def price_quantity_entry(
    sku: str, offer_id: str, *, price: Decimal | None, currency: str, quantity: int | None
) -> dict:
    """One entry of bulkUpdatePriceQuantity: the item's ship-to-home quantity and the offer's."""
    entry: dict[str, Any] = {"sku": sku}
    offer: dict[str, Any] = {"offerId": offer_id}
    if quantity is not None:
        entry["shipToLocationAvailability"] = {"quantity": max(int(quantity), 0)}
        offer["availableQuantity"] = max(int(quantity), 0)
    if price is not None:
        offer["price"] = money(price, currency)
    entry["offers"] = [offer]
    return entry


# --- reading back ---------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def offer_state(offer: Mapping | None) -> str:
    """live / ended / sold / draft, from an offer's status and its listing's status."""
    if not offer:
        return "ended"
    listing = offer.get("listing") or {}
    listing_status = str(listing.get("listingStatus") or "").upper()
    sold = int(listing.get("soldQuantity") or 0)
    if offer.get("status") == "PUBLISHED":
        if listing_status in ("", "ACTIVE"):
            return "live"
        if listing_status == "OUT_OF_STOCK":
            return "sold" if sold else "ended"
        return (
            "sold" if sold and listing_status == "ENDED" and int(offer.get("availableQuantity") or 0) == 0 else "ended"
        )
    if listing.get("listingId"):
        return "sold" if sold and int(offer.get("availableQuantity") or 0) == 0 else "ended"
    return "draft"


def listing_seen(offer: Mapping, item: Mapping | None = None) -> ListingSeen:
    item = item or {}
    product = item.get("product") or {}
    specifics = product.get("aspects") or {}

    def aspect(name: str) -> str:
        values = specifics.get(name) or []
        return str(values[0]) if values else ""

    price = (offer.get("pricingSummary") or {}).get("price") or {}
    listing = offer.get("listing") or {}
    quantity = offer.get("availableQuantity")
    if quantity is None:
        quantity = ((item.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity")
    listing_id = str(listing.get("listingId") or "")
    return ListingSeen(
        external_id=str(offer.get("offerId") or ""),
        sku=str(offer.get("sku") or item.get("sku") or ""),
        state=offer_state(offer),
        quantity=int(quantity) if quantity is not None else None,
        title=str(product.get("title") or ""),
        description=str(offer.get("listingDescription") or product.get("description") or ""),
        price=_decimal(price.get("value")),
        currency=str(price.get("currency") or ""),
        brand=str(product.get("brand") or aspect("Brand")),
        model=aspect("Model"),
        year=aspect("Model Year"),
        finish=aspect("Body Color"),
        condition=CONDITIONS_BACK.get(str(item.get("condition") or ""), ""),
        photos=tuple(str(u) for u in product.get("imageUrls") or []),
        url=f"https://www.ebay.com/itm/{listing_id}" if listing_id else "",
    )


def order_status(order: Mapping) -> str:
    """pending / paid / cancelled from eBay's payment and cancel states."""
    cancel = str((order.get("cancelStatus") or {}).get("cancelState") or "")
    if cancel == "CANCELED":
        return ORDER_CANCELLED
    payment = str(order.get("orderPaymentStatus") or "")
    if payment in ("PAID", "PARTIALLY_REFUNDED"):
        return ORDER_PAID
    if payment == "FULLY_REFUNDED":
        return ORDER_CANCELLED
    return ORDER_PENDING


def order_seen(order: Mapping) -> OrderSeen:
    """An eBay order in the contract's words. Raises ValueError for one without id or date."""
    order_id = str(order.get("orderId") or "")
    placed = parse_time(order.get("creationDate"))
    if not order_id or placed is None:
        raise ValueError("an eBay order without orderId or creationDate")
    summary = order.get("pricingSummary") or {}

    def amount(name: str) -> Decimal | None:
        return _decimal((summary.get(name) or {}).get("value"))

    lines = tuple(
        OrderLineSeen(
            sku=str(line.get("sku") or ""),
            external_listing_id=str(line.get("legacyItemId") or ""),
            quantity=int(line.get("quantity") or 1),
            unit_price=_unit_price(line),
            title=str(line.get("title") or ""),
        )
        for line in order.get("lineItems") or []
    )
    ship_to: Mapping = {}
    for instruction in order.get("fulfillmentStartInstructions") or []:
        ship_to = (instruction.get("shippingStep") or {}).get("shipTo") or {}
        if ship_to:
            break
    address = ship_to.get("contactAddress") or {}
    return OrderSeen(
        external_id=order_id,
        status=order_status(order),
        placed_at=placed,
        updated_at=parse_time(order.get("lastModifiedDate")),
        lines=lines,
        currency=str((summary.get("total") or {}).get("currency") or "USD"),
        subtotal=amount("priceSubtotal"),
        shipping=amount("deliveryCost"),
        tax=amount("tax"),
        total=amount("total"),
        buyer_name=str(ship_to.get("fullName") or (order.get("buyer") or {}).get("username") or "")[:200],
        buyer_email=str(ship_to.get("email") or "")[:254],
        ship_name=str(ship_to.get("fullName") or "")[:200],
        ship_line1=str(address.get("addressLine1") or "")[:200],
        ship_line2=str(address.get("addressLine2") or "")[:200],
        ship_city=str(address.get("city") or "")[:100],
        ship_region=str(address.get("stateOrProvince") or "")[:100],
        ship_postal_code=str(address.get("postalCode") or "")[:20],
        ship_country=str(address.get("countryCode") or address.get("country") or "")[:2],
    )


def _unit_price(line: Mapping) -> Decimal | None:
    cost = _decimal((line.get("lineItemCost") or {}).get("value"))
    quantity = int(line.get("quantity") or 1)
    if cost is None:
        return None
    return (cost / quantity).quantize(Decimal("0.01")) if quantity > 1 else cost
