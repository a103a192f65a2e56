"""Pure functions between our data and WooCommerce's JSON (REST API wc/v3). No HTTP, no database.

Outbound: a ListingPayload becomes a simple product body (create, adopt) or the changed
fields only (revise); ending is stock 0 and status draft. Inbound: product and order JSON
become the contract's ListingSeen and OrderSeen. Request field names and types follow the
route index (contracts/woocommerce/wc-v3-route-index.json); a store returns more fields than
the docs list, so every reader here takes only what it knows and ignores the rest.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
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

# WooCommerce order status -> the contract's pending / paid / cancelled (CHANNELS.md §9).
# pending (awaiting payment) and on-hold (awaiting a bank transfer) hold the item; processing
# (paid) and completed commit it; cancelled, refunded and failed release it.
ORDER_STATUSES: dict[str, str] = {
    "pending": ORDER_PENDING,
    "on-hold": ORDER_PENDING,
    "processing": ORDER_PAID,
    "completed": ORDER_PAID,
    "cancelled": ORDER_CANCELLED,
    "refunded": ORDER_CANCELLED,
    "failed": ORDER_CANCELLED,
}
ORDER_STATUS_ENUM = tuple(ORDER_STATUSES)
# Not orders yet: the block checkout saves a cart as a `checkout-draft` order while the buyer types.
# Reserving stock for it would hold items for carts that are never bought.
NOT_YET_ORDERS = frozenset({"checkout-draft"})
# A trashed order was deleted by the shop: whatever it held is released.
TRASHED = "trash"
PRODUCT_STATUSES = ("draft", "pending", "private", "publish")

# Attributes shown on the product page, in this order: (our field, the label on the shop).
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("brand", "Brand"),
    ("model", "Model"),
    ("year", "Year"),
    ("finish", "Finish"),
    ("condition", "Condition"),
)
ATTRIBUTE_FIELDS = frozenset(name for name, _label in ATTRIBUTES)
CONDITION_LABELS = {
    "non_functioning": "Non functioning",
    "poor": "Poor",
    "fair": "Fair",
    "good": "Good",
    "very_good": "Very good",
    "excellent": "Excellent",
    "mint": "Mint",
    "b_stock": "B-Stock",
    "brand_new": "Brand new",
}
CONDITION_BY_LABEL = {label.casefold(): name for name, label in CONDITION_LABELS.items()}

# ListingPayload fields the shop has a place for, and those it has not (a new payload field
# must be a decision here, not an accident).
REVISE_FIELDS = frozenset(
    {"sku", "title", "description", "price", "currency", "quantity", "category", "photos", "seo_description"}
    | ATTRIBUTE_FIELDS
)
IGNORED_FIELDS = frozenset({"serial_number", "video_url", "seo_title", "seo_keywords"})

# Currencies whose prices have no decimals (WooCommerce keeps what it is sent, so send it right).
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX", "XAF", "XOF", "PYG"})


# --- small values ---------------------------------------------------------------------


def price_text(amount: Decimal, currency: str) -> str:
    """A price as WooCommerce takes it: a decimal string ("4200.00"), never a number."""
    places = Decimal("1") if currency.upper() in ZERO_DECIMAL else Decimal("0.01")
    return str(amount.quantize(places, rounding=ROUND_HALF_UP))


def parse_decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def parse_gmt(value: Any) -> datetime | None:
    """WooCommerce's `*_gmt` times ("2026-12-04T17:31:05", no offset, GMT) as aware UTC datetimes."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_gmt(value: datetime) -> str:
    """A time for `modified_after` with `dates_are_gmt=true`: ISO 8601 in UTC, no offset (a `+` in a query
    string is read as a space)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def public_photo_urls(photos: Iterable[str]) -> list[str]:
    """The photos the shop can fetch (absolute http(s) URLs): WordPress downloads each one into its
    media library, and a path on this site means nothing there."""
    return [url for url in photos if url.startswith(("https://", "http://"))]


def description_html(text: str) -> str:
    """Our plain-text description as the HTML a WordPress product page shows: escaped, one paragraph per
    blank-line block, single newlines kept as line breaks."""
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if block.strip()]
    return "".join(f"<p>{html.escape(block).replace(chr(10), '<br />')}</p>" for block in blocks)


def html_text(value: Any) -> str:
    """The reverse, for products made on the shop: tags dropped, entities decoded, paragraphs kept."""
    text = str(value or "")
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = re.sub(r"(?i)</p\s*>", "\n\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\n{3,}", "\n\n", html.unescape(text)).strip()


def listing_problems(payload: ListingPayload, store_currency: str = "") -> list[str]:
    """Why the shop would refuse (or mislabel) this product, in staff's words (empty when it can be sent)."""
    problems = []
    if not payload.sku.strip():
        problems.append("it has no SKU (the shop's products are matched by SKU)")
    if not payload.title.strip():
        problems.append("it has no title")
    if payload.price <= 0:
        problems.append("the shop needs a price above zero")
    if store_currency and payload.currency.upper() != store_currency.upper():
        problems.append(
            f"its price is in {payload.currency or 'no currency'} but the shop sells in {store_currency.upper()} "
            "(prices are not converted: set a price override for this channel in the shop's currency, or change "
            "the item's currency)"
        )
    return problems


# --- outbound -------------------------------------------------------------------------


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """WooCommerce itself has a product name and a short description (shown beside the photos and
    in search results of the shop); an SEO title and keywords need a plugin (Yoast, Rank Math),
    whose fields the wc/v3 API does not carry. The route index states no length limits."""
    short = squash(payload.seo_description)
    return (
        SeoField("name", "Product name", "title", squash(payload.title), squash(payload.title), None),
        SeoField("short_description", "Short description", "SEO description", short, short, None),
        not_sent(
            "seo_title",
            "SEO title",
            "SEO title",
            squash(payload.seo_title),
            "WooCommerce has no SEO title without a plugin; the product name is the page title",
        ),
        not_sent(
            "tags",
            "Keywords",
            "SEO keywords",
            squash(payload.seo_keywords),
            "not sent: product tags are taken by id (made under Products > Tags first)",
        ),
    )


def images_body(payload: ListingPayload) -> list[dict[str, Any]]:
    """Images by URL with alt text; the first is the featured image (position 0)."""
    return [
        {"src": url, "alt": payload.title if i == 0 else f"{payload.title} ({i + 1})", "position": i}
        for i, url in enumerate(public_photo_urls(payload.photos))
    ]


def attributes_body(payload: ListingPayload) -> list[dict[str, Any]]:
    """Brand, model, year, finish and condition as visible custom attributes (the whole list: the shop
    replaces attributes as a list, so one changed value sends them all)."""
    attributes = []
    for name, label in ATTRIBUTES:
        value = getattr(payload, name).strip()
        if name == "condition":
            value = CONDITION_LABELS.get(value, value.replace("_", " ").capitalize())
        if value:
            attributes.append(
                {"name": label, "position": len(attributes), "visible": True, "variation": False, "options": [value]}
            )
    return attributes


def categories_body(category_ids: Iterable[int]) -> list[dict[str, int]]:
    return [{"id": int(category_id)} for category_id in category_ids]


def product_body(payload: ListingPayload, *, category_ids: Iterable[int] = (), status: str = "publish") -> dict:
    """The full simple-product body for a create (or an adopting update) of this payload."""
    body: dict[str, Any] = {
        "name": payload.title,
        "type": "simple",
        "status": status,
        "sku": payload.sku,
        "regular_price": price_text(payload.price, payload.currency),
        "description": description_html(payload.description),
        "manage_stock": True,
        "stock_quantity": max(0, payload.quantity),
        "backorders": "no",
        "images": images_body(payload),
        "attributes": attributes_body(payload),
    }
    if payload.seo_description.strip():
        body["short_description"] = html.escape(payload.seo_description.strip())
    categories = categories_body(category_ids)
    if categories:
        body["categories"] = categories
    return body


def revise_body(payload: ListingPayload, fields: Iterable[str], *, category_ids: Iterable[int] = ()) -> dict:
    """Only the changed fields, under the shop's names. Empty when nothing the shop shows changed."""
    fields = set(fields)
    unknown = fields - REVISE_FIELDS - IGNORED_FIELDS
    if unknown:
        raise ValueError(f"Not ListingPayload fields: {sorted(unknown)}")
    body: dict[str, Any] = {}
    if "title" in fields:
        body["name"] = payload.title
    if "description" in fields:
        body["description"] = description_html(payload.description)
    if fields & {"price", "currency"}:
        body["regular_price"] = price_text(payload.price, payload.currency)
    if "quantity" in fields:
        body["manage_stock"] = True
        body["stock_quantity"] = max(0, payload.quantity)
    if "sku" in fields:
        body["sku"] = payload.sku
    if "photos" in fields or ("title" in fields and payload.photos):
        body["images"] = images_body(payload)  # alt texts carry the title
    if fields & ATTRIBUTE_FIELDS:
        body["attributes"] = attributes_body(payload)
    if "category" in fields:
        categories = categories_body(category_ids)
        if categories:
            body["categories"] = categories
    if "seo_description" in fields:
        body["short_description"] = html.escape(payload.seo_description.strip())
    return body


def end_body() -> dict[str, Any]:
    """Off sale: no stock, and a draft (not in the catalogue, not buyable, kept for a relist)."""
    return {"manage_stock": True, "stock_quantity": 0, "status": "draft"}


# --- inbound --------------------------------------------------------------------------


def _stock(product: Mapping[str, Any]) -> int | None:
    quantity = product.get("stock_quantity")
    if product.get("manage_stock") and isinstance(quantity, int | float):
        return max(0, int(quantity))
    return None


def product_state(product: Mapping[str, Any]) -> str:
    """The contract's live / draft / ended / sold for a product.

    Buyable (published, in stock) is live. Published with nothing left sold out on the shop:
    sold. Not published (draft, pending review, private) with stock 0 is how we end a product:
    ended; with stock it is a draft someone may still publish. In the trash: ended.
    """
    status = str(product.get("status") or "")
    quantity = _stock(product)
    out_of_stock = quantity == 0 or (quantity is None and product.get("stock_status") == "outofstock")
    if status == "trash":
        return "ended"
    if status == "publish":
        return "sold" if out_of_stock else "live"
    return "ended" if out_of_stock else "draft"


def _attribute(product: Mapping[str, Any], label: str) -> str:
    for attribute in product.get("attributes") or ():
        if isinstance(attribute, Mapping) and str(attribute.get("name") or "").casefold() == label.casefold():
            options = attribute.get("options") or []
            if isinstance(options, list) and options:
                return str(options[0])
            return str(attribute.get("option") or "")
    return ""


def photo_urls(images: Any) -> tuple[str, ...]:
    urls = []
    for image in images or ():
        if isinstance(image, Mapping) and image.get("src"):
            urls.append(str(image["src"]))
    return tuple(urls)


def listing_seen(product: Mapping[str, Any]) -> ListingSeen:
    """A WooCommerce product as the contract's ListingSeen."""
    if product.get("id") in (None, ""):
        raise ValueError("A WooCommerce product without an id.")
    state = product_state(product)
    quantity = _stock(product)
    if quantity is None:  # stock not managed: in stock counts as one unit
        quantity = 1 if state == "live" else 0
    condition = CONDITION_BY_LABEL.get(_attribute(product, "Condition").casefold(), "")
    return ListingSeen(
        external_id=str(product["id"]),
        sku=str(product.get("sku") or ""),
        state=state,
        quantity=quantity,
        title=html.unescape(str(product.get("name") or "")),
        description=html_text(product.get("description")),
        price=parse_decimal(product.get("regular_price")) or parse_decimal(product.get("price")),
        brand=_attribute(product, "Brand"),
        model=_attribute(product, "Model"),
        year=_attribute(product, "Year"),
        finish=_attribute(product, "Finish"),
        condition=condition,
        photos=photo_urls(product.get("images")),
        url=str(product.get("permalink") or ""),
        updated_at=parse_gmt(product.get("date_modified_gmt")),
    )


def order_status(status: Any) -> str:
    """pending / paid / cancelled. An unknown status (a plugin's own) is pending: it neither commits a sale nor
    releases one. A trashed order is cancelled."""
    status = str(status or "").lower()
    if status == TRASHED:
        return ORDER_CANCELLED
    return ORDER_STATUSES.get(status, ORDER_PENDING)


def is_order(order: Mapping[str, Any]) -> bool:
    """False for a cart the checkout is still filling (checkout-draft): not a sale, not to be recorded."""
    return str(order.get("status") or "").lower() not in NOT_YET_ORDERS


def _name(address: Mapping[str, Any]) -> str:
    return " ".join(str(address.get(k) or "").strip() for k in ("first_name", "last_name")).strip()


def order_seen(order: Mapping[str, Any]) -> OrderSeen:
    """A WooCommerce order as the contract's OrderSeen. Raises ValueError when it has no id or date."""
    if order.get("id") in (None, ""):
        raise ValueError("A WooCommerce order without an id.")
    placed_at = parse_gmt(order.get("date_created_gmt"))
    if placed_at is None:
        raise ValueError(f"WooCommerce order {order.get('id')} has no date_created_gmt.")
    currency = str(order.get("currency") or "USD").upper()
    lines = []
    for line in order.get("line_items") or ():
        if not isinstance(line, Mapping):
            continue
        quantity = line.get("quantity")
        product_id = line.get("product_id")
        lines.append(
            OrderLineSeen(
                sku=str(line.get("sku") or ""),
                external_listing_id=str(product_id) if product_id not in (None, "", 0) else "",
                quantity=int(quantity) if isinstance(quantity, int | float) and quantity > 0 else 1,
                unit_price=parse_decimal(line.get("price")),
                title=str(line.get("name") or ""),
            )
        )
    billing = order.get("billing") if isinstance(order.get("billing"), Mapping) else {}
    shipping = order.get("shipping") if isinstance(order.get("shipping"), Mapping) else {}
    total = parse_decimal(order.get("total"))
    shipping_total = parse_decimal(order.get("shipping_total"))
    tax = parse_decimal(order.get("total_tax"))
    subtotal = None
    if total is not None:
        subtotal = total - (shipping_total or 0) - (tax or 0)
    return OrderSeen(
        external_id=str(order["id"]),
        status=order_status(order.get("status")),
        placed_at=placed_at,
        updated_at=parse_gmt(order.get("date_modified_gmt")) or placed_at,
        lines=tuple(lines),
        currency=currency,
        subtotal=subtotal,
        shipping=shipping_total,
        tax=tax,
        total=total,
        buyer_name=_name(billing) or _name(shipping),
        buyer_email=str(billing.get("email") or ""),
        ship_name=_name(shipping) or _name(billing),
        ship_line1=str(shipping.get("address_1") or ""),
        ship_line2=str(shipping.get("address_2") or ""),
        ship_city=str(shipping.get("city") or ""),
        ship_region=str(shipping.get("state") or ""),
        ship_postal_code=str(shipping.get("postcode") or ""),
        ship_country=str(shipping.get("country") or "")[:2].upper(),
    )
