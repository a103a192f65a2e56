"""Pure translations between the contract's dataclasses and the Selling Partner API's JSON.

An Amazon listing here is an offer on an existing catalogue page (`LISTING_OFFER_ONLY`): the
attributes carry the ASIN, the condition, the price and the quantity, never the product facts
(title, description, photos belong to Amazon's catalogue page). No network, no ORM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    not_sent,
    squash,
)

OFFER_ONLY = "LISTING_OFFER_ONLY"

# Our condition (inventory.models.Condition) -> Amazon's condition_type. Musical instruments on
# Amazon take new / used / collectible grades; staff override per connection (condition_types).
CONDITION_TYPES = {
    "brand_new": "new_new",
    "b_stock": "new_open_box",
    "mint": "used_like_new",
    "excellent": "used_very_good",
    "very_good": "used_good",
    "good": "used_good",
    "fair": "used_acceptable",
    "poor": "used_acceptable",
}
AMAZON_CONDITION_TYPES = frozenset(
    {
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
    }
)
# Back from Amazon's grade to ours, for listings made on Amazon (first match of the mapping above).
OUR_CONDITIONS = {amazon: ours for ours, amazon in reversed(CONDITION_TYPES.items())}

# The payload fields an offer-only listing carries, and the attribute each one is written to.
OFFER_FIELDS = {"price": "purchasable_offer", "currency": "purchasable_offer", "quantity": "fulfillment_availability"}
CONDITION_FIELD = "condition_type"

MARKETPLACE_DOMAINS = {
    "ATVPDKIKX0DER": "www.amazon.com",
    "A2EUQ1WTGCTBG2": "www.amazon.ca",
    "A1AM78C64UM0Y8": "www.amazon.com.mx",
    "A1F83G8C2ARO7P": "www.amazon.co.uk",
    "A1PA6795UKMFR9": "www.amazon.de",
    "A13V1IB3VIYZZH": "www.amazon.fr",
    "APJ6JRA9NG5V4": "www.amazon.it",
    "A1RKKUPIHCS9HS": "www.amazon.es",
    "A1VC38T7YXB528": "www.amazon.co.jp",
    "A39IBJ37TRP1C6": "www.amazon.com.au",
}

# searchOrders' fulfillment statuses -> the contract's order statuses: a pending order reserves
# stock, an unshipped or shipped one commits it, a cancelled one releases it.
ORDER_STATUSES = {
    "PENDING_AVAILABILITY": ORDER_PENDING,
    "PENDING": ORDER_PENDING,
    "UNSHIPPED": ORDER_PAID,
    "PARTIALLY_SHIPPED": ORDER_PAID,
    "SHIPPED": ORDER_PAID,
    "CANCELLED": ORDER_CANCELLED,
    "UNFULFILLABLE": ORDER_CANCELLED,
}

HOW_TO_FIND_AN_ASIN = (
    "Amazon lists used gear as an offer on an existing product page, so the item needs that page's ASIN: "
    "open the product on Amazon and copy the ASIN from 'Product information' (or the 10 characters after "
    "/dp/ in its address), or search Seller Central > Catalog > Add Products; then enter it, with the "
    "product type, in the item's Amazon attributes"
)


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """Nothing: the listing is an offer on an existing catalogue page, whose item_name, bullet points
    and keywords belong to that page (Amazon's, or its brand owner's), not to the offer."""
    why = "not sent: an offer on an existing Amazon product page takes its name from that page"
    return (
        not_sent("item_name", "item_name", "SEO title, else title", squash(payload.seo_title or payload.title), why),
        not_sent(
            "generic_keyword",
            "Search terms",
            "SEO keywords",
            squash(payload.seo_keywords),
            "not sent: search terms belong to the product page, not the offer",
        ),
    )


def condition_type(condition: str, overrides: Mapping[str, str] | None = None) -> str:
    """Amazon's condition_type for our condition ("" when there is none)."""
    mapping = {**CONDITION_TYPES, **{str(k): str(v) for k, v in (overrides or {}).items()}}
    return mapping.get(condition, "")


def listing_problems(payload: ListingPayload, *, asin: str, product_type: str, condition: str) -> list[str]:
    """What stops this item from being offered on Amazon, in staff's words (empty when nothing)."""
    problems = []
    if not asin:
        problems.append(f"{payload.sku} has no ASIN. {HOW_TO_FIND_AN_ASIN}")
    if not product_type:
        problems.append(
            f"{payload.sku} has no Amazon product type (e.g. GUITARS, shown on the product page in Seller Central): "
            "set it in the item's Amazon attributes or as the connection's default product type"
        )
    if not condition:
        problems.append(
            f"Amazon has no condition for {payload.condition or 'an empty condition'}: "
            "map it in the connection's condition types (e.g. used_good)"
        )
    elif condition not in AMAZON_CONDITION_TYPES:
        problems.append(f"{condition!r} is not one of Amazon's condition types")
    if payload.price <= 0:
        problems.append("the price must be above zero")
    return problems


def _money(value: Decimal) -> float | str:
    # Amazon's attributes take a number; two decimals keep cents exact.
    return float(Decimal(value).quantize(Decimal("0.01")))


def purchasable_offer(payload: ListingPayload, marketplace_id: str) -> list[dict]:
    return [
        {
            "marketplace_id": marketplace_id,
            "currency": payload.currency,
            "our_price": [{"schedule": [{"value_with_tax": _money(payload.price)}]}],
        }
    ]


def fulfillment_availability(quantity: int, channel_code: str) -> list[dict]:
    return [{"fulfillment_channel_code": channel_code, "quantity": max(int(quantity), 0)}]


def offer_attributes(
    payload: ListingPayload,
    *,
    asin: str,
    condition: str,
    marketplace_id: str,
    channel_code: str = "DEFAULT",
    condition_note: str = "",
) -> dict[str, list[dict]]:
    """The attributes of an offer-only listing: the ASIN, condition, price and quantity (already buffered)."""
    attributes: dict[str, list[dict]] = {
        "merchant_suggested_asin": [{"value": asin, "marketplace_id": marketplace_id}],
        "condition_type": [{"value": condition, "marketplace_id": marketplace_id}],
        "purchasable_offer": purchasable_offer(payload, marketplace_id),
        "fulfillment_availability": fulfillment_availability(payload.quantity, channel_code),
    }
    if condition_note:
        attributes["condition_note"] = [
            {"value": condition_note[:1000], "language_tag": "en_US", "marketplace_id": marketplace_id}
        ]
    return attributes


def put_body(product_type: str, attributes: Mapping[str, Any]) -> dict:
    """The putListingsItem body (ListingsItemPutRequest)."""
    return {"productType": product_type, "requirements": OFFER_ONLY, "attributes": dict(attributes)}


def patch_body(product_type: str, attributes: Mapping[str, Any]) -> dict:
    """The patchListingsItem body (ListingsItemPatchRequest): one replace per top-level attribute."""
    return {
        "productType": product_type,
        "patches": [
            {"op": "replace", "path": f"/attributes/{name}", "value": value} for name, value in attributes.items()
        ],
    }


def changed_attributes(
    payload: ListingPayload,
    fields: Iterable[str],
    *,
    condition: str,
    marketplace_id: str,
    channel_code: str,
) -> dict[str, list[dict]]:
    """Only the attributes the changed fields touch. Title, description, photos... are Amazon's
    catalogue page's, not the offer's: they are not sent."""
    fields = set(fields)
    attributes: dict[str, list[dict]] = {}
    if fields & {"price", "currency"}:
        attributes["purchasable_offer"] = purchasable_offer(payload, marketplace_id)
    if "quantity" in fields:
        attributes["fulfillment_availability"] = fulfillment_availability(payload.quantity, channel_code)
    if "condition" in fields and condition:
        attributes["condition_type"] = [{"value": condition, "marketplace_id": marketplace_id}]
    return attributes


# --- issues -----------------------------------------------------------------------------


def issue_line(issue: Mapping[str, Any]) -> str:
    """One of Amazon's issues, in its words: code, message and the attributes it names."""
    names = ", ".join(str(n) for n in issue.get("attributeNames") or [])
    line = f"{issue.get('code', '')}: {issue.get('message', '')}".strip(": ")
    return f"{line} [{names}]" if names else line


def errors_of(issues: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [issue for issue in issues or [] if issue.get("severity") == "ERROR"]


def issues_text(issues: Iterable[Mapping[str, Any]]) -> str:
    return "; ".join(issue_line(issue) for issue in issues)


# --- reading listings ----------------------------------------------------------------


def _by_marketplace(rows: Iterable[Mapping[str, Any]] | None, marketplace_id: str) -> Mapping[str, Any]:
    rows = list(rows or [])
    for row in rows:
        if row.get("marketplaceId", row.get("marketplace_id")) == marketplace_id:
            return row
    return rows[0] if rows else {}


def summary(item: Mapping[str, Any], marketplace_id: str) -> Mapping[str, Any]:
    return _by_marketplace(item.get("summaries"), marketplace_id)


def listing_quantity(item: Mapping[str, Any], channel_code: str = "DEFAULT") -> int | None:
    """The merchant-fulfilled quantity Amazon shows (fulfillmentAvailability), else the attribute."""
    for row in item.get("fulfillmentAvailability") or []:
        if row.get("fulfillmentChannelCode") == channel_code and row.get("quantity") is not None:
            return int(row["quantity"])
    for row in (item.get("attributes") or {}).get("fulfillment_availability") or []:
        if row.get("fulfillment_channel_code") == channel_code and row.get("quantity") is not None:
            return int(row["quantity"])
    return None


def listing_price(item: Mapping[str, Any], marketplace_id: str) -> tuple[Decimal | None, str]:
    offer = _by_marketplace(item.get("offers"), marketplace_id)
    price = offer.get("price") or {}
    if price.get("amount") not in (None, ""):
        return _decimal(price["amount"]), str(price.get("currencyCode") or price.get("currency") or "")
    for row in (item.get("attributes") or {}).get("purchasable_offer") or []:
        try:
            value = row["our_price"][0]["schedule"][0]["value_with_tax"]
        except (KeyError, IndexError, TypeError):
            continue
        return _decimal(value), str(row.get("currency") or "")
    return None, ""


def is_buyable(item: Mapping[str, Any], marketplace_id: str) -> bool:
    return "BUYABLE" in (summary(item, marketplace_id).get("status") or [])


def listing_state(item: Mapping[str, Any], marketplace_id: str, channel_code: str = "DEFAULT") -> str:
    """live (buyable with stock), ended (quantity 0: Amazon's way to take an offer off sale), or
    draft (accepted but not buyable yet, or held back by an issue)."""
    quantity = listing_quantity(item, channel_code)
    if quantity == 0:
        return "ended"
    if is_buyable(item, marketplace_id):
        return "live"
    return "draft"


def listing_url(asin: str, marketplace_id: str) -> str:
    if not asin:
        return ""
    return f"https://{MARKETPLACE_DOMAINS.get(marketplace_id, 'www.amazon.com')}/dp/{asin}"


def listing_seen(item: Mapping[str, Any], marketplace_id: str, channel_code: str = "DEFAULT") -> ListingSeen:
    head = summary(item, marketplace_id)
    price, currency = listing_price(item, marketplace_id)
    asin = str(head.get("asin") or "")
    return ListingSeen(
        external_id=str(item.get("sku") or ""),
        sku=str(item.get("sku") or ""),
        state=listing_state(item, marketplace_id, channel_code),
        quantity=listing_quantity(item, channel_code),
        title=str(head.get("itemName") or ""),
        price=price,
        currency=currency,
        condition=OUR_CONDITIONS.get(str(head.get("conditionType") or ""), ""),
        url=listing_url(asin, marketplace_id),
        updated_at=parse_time(head.get("lastUpdatedDate")),
    )


def offer_matches(
    item: Mapping[str, Any], attributes: Mapping[str, list[dict]], marketplace_id: str, code: str
) -> dict:
    """Of the attributes we want, those the listing on Amazon does not show yet."""
    differ = {}
    want_price = _decimal(attributes["purchasable_offer"][0]["our_price"][0]["schedule"][0]["value_with_tax"])
    price, _ = listing_price(item, marketplace_id)
    if price != want_price:
        differ["purchasable_offer"] = attributes["purchasable_offer"]
    if listing_quantity(item, code) != attributes["fulfillment_availability"][0]["quantity"]:
        differ["fulfillment_availability"] = attributes["fulfillment_availability"]
    want_condition = attributes["condition_type"][0]["value"]
    if str(summary(item, marketplace_id).get("conditionType") or "") != want_condition:
        differ["condition_type"] = attributes["condition_type"]
    return differ


# --- orders ---------------------------------------------------------------------------


def order_seen(order: Mapping[str, Any]) -> OrderSeen:
    """An order of searchOrders / getOrder (orders 2026-01-01) in the contract's words.

    Buyer name and address are restricted data (a Restricted Data Token); without one they are
    left empty and the packing slip says the address is on Amazon.
    """
    order_id = str(order.get("orderId") or "")
    placed = parse_time(order.get("createdTime"))
    if not order_id or placed is None:
        raise ValueError("an order without orderId or createdTime")
    status_code = str((order.get("fulfillment") or {}).get("fulfillmentStatus") or "PENDING")
    lines = []
    currency = ""
    subtotal = Decimal("0")
    for line in order.get("orderItems") or []:
        product = line.get("product") or {}
        unit = ((product.get("price") or {}).get("unitPrice")) or {}
        unit_price = _decimal(unit.get("amount")) if unit.get("amount") not in (None, "") else None
        currency = currency or str(unit.get("currencyCode") or "")
        quantity = int(line.get("quantityOrdered") or 0)
        if quantity <= 0:
            continue
        if unit_price is not None:
            subtotal += unit_price * quantity
        sku = str(product.get("sellerSku") or "")
        lines.append(
            OrderLineSeen(
                sku=sku,
                external_listing_id=sku,
                quantity=quantity,
                unit_price=unit_price,
                title=str(product.get("title") or "")[:200],
            )
        )
    grand = ((order.get("proceeds") or {}).get("grandTotal")) or {}
    total = _decimal(grand.get("amount")) if grand.get("amount") not in (None, "") else None
    buyer = order.get("buyer") or {}
    address = (order.get("recipient") or {}).get("deliveryAddress") or {}
    return OrderSeen(
        external_id=order_id,
        status=ORDER_STATUSES.get(status_code, ORDER_PENDING),
        placed_at=placed,
        updated_at=parse_time(order.get("lastUpdatedTime")),
        lines=tuple(lines),
        currency=currency or str(grand.get("currencyCode") or "USD"),
        subtotal=subtotal if lines else None,
        total=total,
        buyer_name=str(buyer.get("buyerName") or ""),
        buyer_email=str(buyer.get("buyerEmail") or ""),
        ship_name=str(address.get("name") or ""),
        ship_line1=str(address.get("addressLine1") or ""),
        ship_line2=str(address.get("addressLine2") or ""),
        ship_city=str(address.get("city") or ""),
        ship_region=str(address.get("stateOrRegion") or ""),
        ship_postal_code=str(address.get("postalCode") or ""),
        ship_country=str(address.get("countryCode") or "")[:2],
    )


# --- time and numbers -----------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """ISO 8601 in UTC with a Z, as Amazon writes it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError, TypeError):
        return None
