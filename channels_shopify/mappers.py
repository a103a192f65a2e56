"""Pure functions between our data and Shopify's GraphQL shapes. No HTTP, no database.

Outbound: a ListingPayload becomes a `ProductSetInput` (publish), a `ProductUpdateInput`
and variant / inventory inputs (revise, only the changed fields). Inbound: Shopify's
Product and Order objects become the contract's ListingSeen and OrderSeen. Field names
follow the 2025-01 Admin schema (contracts/shopify).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    cut_at_word,
    squash,
    tag_list,
)

# Shopify's limits (the admin's own counters): what is longer is cut, and staff are told.
TITLE_MAX = 255
SEO_TITLE_MAX = 70
SEO_DESCRIPTION_MAX = 320
TAG_MAX = 255
TAGS_MAX = 250
IMAGES_MAX = 250

OPTION_NAME = "Title"
OPTION_VALUE = "Default Title"  # Shopify's one variant of a product without options
INVENTORY_NAME = "available"

# ListingPayload field -> where it goes on Shopify. Fields Shopify has no place for are in
# IGNORED_FIELDS, so a new payload field is a decision, not an accident.
PRODUCT_FIELDS = {
    "title": ("title",),
    "description": ("descriptionHtml",),
    "brand": ("vendor",),
    "category": ("productType",),
    "seo_title": ("seo",),
    "seo_description": ("seo",),
    "seo_keywords": ("tags",),
    "condition": ("tags",),
}
VARIANT_FIELDS = {"price": ("price",), "currency": ("price",), "sku": ("sku",)}
INVENTORY_FIELDS = {"quantity"}
MEDIA_FIELDS = {"photos"}
IGNORED_FIELDS = frozenset({"model", "year", "finish", "serial_number", "video_url"})

# Shopify's financial status -> the contract's pending / paid / cancelled (a cancelled order is
# cancelled whatever its payment says).
FINANCIAL_STATUSES = {
    "PENDING": ORDER_PENDING,
    "AUTHORIZED": ORDER_PENDING,
    "PARTIALLY_PAID": ORDER_PENDING,
    "PAID": ORDER_PAID,
    "PARTIALLY_REFUNDED": ORDER_PAID,
    "REFUNDED": ORDER_CANCELLED,
    "VOIDED": ORDER_CANCELLED,
    "EXPIRED": ORDER_CANCELLED,
}


@dataclass
class ProductInput:
    """A ProductSetInput and what was cut to fit Shopify's limits."""

    input: dict[str, Any]
    notes: list[str] = field(default_factory=list)


# --- small values ---------------------------------------------------------------------


def money(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    """A time as Shopify's search syntax takes it: UTC, ISO 8601, seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def search_value(value: str) -> str:
    """A value quoted for Shopify's search syntax (sku:"..."), quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sku_query(sku: str) -> str:
    return f"sku:{search_value(sku.strip())}"


def updated_since_query(since: datetime) -> str:
    return f"updated_at:>'{format_time(since)}'"


def numeric_id(gid: str) -> str:
    """123 of gid://shopify/Product/123 (a bare id is returned as it is)."""
    return str(gid).rsplit("/", 1)[-1].split("?", 1)[0]


def product_gid(value: str | int) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/Product/{text}"


def order_gid(value: str | int) -> str:
    text = str(value)
    return text if text.startswith("gid://") else f"gid://shopify/Order/{text}"


def parse_money(value: Any) -> tuple[Decimal | None, str]:
    """A MoneyBag ({shopMoney: {amount, currencyCode}}) or a MoneyV2 as (amount, currency)."""
    if not isinstance(value, Mapping):
        return None, ""
    if isinstance(value.get("shopMoney"), Mapping):
        value = value["shopMoney"]
    amount, currency = value.get("amount"), str(value.get("currencyCode") or "")
    try:
        return (Decimal(str(amount)) if amount not in (None, "") else None), currency
    except InvalidOperation:
        return None, currency


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None


def _cut(text: str, limit: int, label: str, notes: list[str]) -> str:
    """Cut at a word to fit (the SEO title and meta description are one line on a search page)."""
    text = squash(text)
    kept, cut = cut_at_word(text, limit)
    if cut:
        notes.append(f"{label} shortened to Shopify's {limit} characters (was {len(text)}).")
    return kept


# --- outbound -------------------------------------------------------------------------


def description_html(text: str) -> str:
    """Our plain-text description as Shopify's HTML: escaped, paragraphs on blank lines, breaks on newlines.
    Text that already is HTML (it starts with a tag) is sent as it is."""
    text = (text or "").strip()
    if not text:
        return ""
    if re.match(r"^<[a-zA-Z][^>]*>", text):
        return text
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def tags(payload: ListingPayload) -> list[str]:
    """Tags: the SEO keywords (comma separated) and the condition, deduplicated, within Shopify's limits."""
    found: list[str] = []
    for raw in [*payload.seo_keywords.split(","), payload.condition.replace("_", " ")]:
        tag = raw.strip()[:TAG_MAX]
        if tag and tag.casefold() not in {t.casefold() for t in found}:
            found.append(tag)
    return found[:TAGS_MAX]


def seo(payload: ListingPayload, notes: list[str]) -> dict[str, str]:
    """The product's `seo` input (SEOInput: title, description): what a search page shows."""
    return {
        "title": _cut(payload.seo_title or payload.title, SEO_TITLE_MAX, "SEO title", notes),
        "description": _cut(payload.seo_description, SEO_DESCRIPTION_MAX, "SEO description", notes),
    }


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """Shopify takes all three: the product title (255), the `seo` input's title (70, the SEO
    title else the title) and description (320), and the keywords as tags (with the condition)."""

    def text(name, label, source, wanted, limit):
        wanted = squash(wanted)
        kept, cut = cut_at_word(wanted, limit)
        return SeoField(name, label, source, wanted, kept, limit, cut)

    wanted_tags = [tag[:TAG_MAX] for tag in tag_list(payload.seo_keywords)]
    sent_tags = tags(payload)
    return (
        text("title", "Title", "title", payload.title, TITLE_MAX),
        text("seo.title", "SEO title", "SEO title, else title", payload.seo_title or payload.title, SEO_TITLE_MAX),
        text("seo.description", "Meta description", "SEO description", payload.seo_description, SEO_DESCRIPTION_MAX),
        SeoField(
            "tags",
            "Tags",
            "SEO keywords, and the condition",
            ", ".join(wanted_tags),
            ", ".join(sent_tags),
            TAGS_MAX,
            dropped=tuple(t for t in wanted_tags if t.casefold() not in {s.casefold() for s in sent_tags}),
            tags=tuple(sent_tags),
            item_limit=TAG_MAX,
        ),
    )


def public_photo_urls(photos: Iterable[str]) -> list[str]:
    """Photos Shopify can fetch: absolute http(s) URLs (a /media/ path means nothing to Shopify)."""
    return [url for url in photos if url.startswith(("https://", "http://"))][:IMAGES_MAX]


def files(payload: ListingPayload) -> list[dict[str, str]]:
    """Images by URL with alt text (the title, numbered from the second photo on)."""
    alt = payload.title.strip()[:500]
    return [
        {"originalSource": url, "alt": alt if n == 0 else f"{alt} ({n + 1})", "contentType": "IMAGE"}
        for n, url in enumerate(public_photo_urls(payload.photos))
    ]


def listing_problems(payload: ListingPayload) -> list[str]:
    """Why Shopify would refuse this product, in staff's words (empty when it can be sent)."""
    problems = []
    if not payload.sku.strip():
        problems.append("it has no SKU (the back office finds its Shopify product by SKU)")
    if not payload.title.strip():
        problems.append("Shopify needs a title")
    if payload.price < 0:
        problems.append("Shopify cannot take a negative price")
    return problems


def variant_input(
    payload: ListingPayload, *, variant_id: str = "", location_id: str = "", with_quantity: bool = False
) -> dict[str, Any]:
    """Our one variant: SKU, price, tracked inventory (the quantity only when creating)."""
    variant: dict[str, Any] = {
        "optionValues": [{"optionName": OPTION_NAME, "name": OPTION_VALUE}],
        "price": money(payload.price),
        "sku": payload.sku,
        "inventoryItem": {"sku": payload.sku, "tracked": True},
        "inventoryPolicy": "DENY",
    }
    if variant_id:
        variant["id"] = variant_id
    if with_quantity and location_id:
        variant["inventoryQuantities"] = [
            {"locationId": location_id, "name": INVENTORY_NAME, "quantity": max(0, payload.quantity)}
        ]
    return variant


def product_set_input(
    payload: ListingPayload,
    *,
    location_id: str,
    product_id: str = "",
    variant_id: str = "",
    status: str = "ACTIVE",
) -> ProductInput:
    """The whole product for productSet: a create (no id) or an adoption (id and our variant's id).

    productSet replaces list fields: the variants and files given are all the product keeps.
    A create carries the quantity at the connection's location; an adoption does not (it
    would overwrite Shopify's figure blindly), the quantity is then set with a compare check.
    """
    notes: list[str] = []
    product: dict[str, Any] = {
        "title": _cut(payload.title, TITLE_MAX, "Title", notes),
        "descriptionHtml": description_html(payload.description),
        "vendor": payload.brand.strip(),
        "productType": payload.category.strip(),
        "tags": tags(payload),
        "seo": seo(payload, notes),
        "status": status,
        "productOptions": [{"name": OPTION_NAME, "values": [{"name": OPTION_VALUE}]}],
        "variants": [
            variant_input(payload, variant_id=variant_id, location_id=location_id, with_quantity=not product_id)
        ],
        "files": files(payload),
    }
    if len(public_photo_urls(payload.photos)) < len(payload.photos):
        notes.append("Photos without a public http(s) address were left out (set SITE_URL).")
    if product_id:
        product["id"] = product_id
    return ProductInput(product, notes)


def revise_parts(
    payload: ListingPayload, fields: Iterable[str], *, product_id: str, variant_id: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, bool, bool, list[str]]:
    """Only the changed fields, split by the mutation that carries them:

    (ProductUpdateInput or None, ProductVariantsBulkInput or None, quantity changed, photos changed, notes).
    """
    fields = set(fields)
    unknown = fields - set(PRODUCT_FIELDS) - set(VARIANT_FIELDS) - INVENTORY_FIELDS - MEDIA_FIELDS - IGNORED_FIELDS
    if unknown:
        raise ValueError(f"Not ListingPayload fields: {sorted(unknown)}")
    notes: list[str] = []
    product: dict[str, Any] = {}
    if "title" in fields:
        product["title"] = _cut(payload.title, TITLE_MAX, "Title", notes)
    if "description" in fields:
        product["descriptionHtml"] = description_html(payload.description)
    if "brand" in fields:
        product["vendor"] = payload.brand.strip()
    if "category" in fields:
        product["productType"] = payload.category.strip()
    if fields & {"seo_title", "seo_description"} or ("title" in fields and not payload.seo_title):
        product["seo"] = seo(payload, notes)
    if fields & {"seo_keywords", "condition"}:
        product["tags"] = tags(payload)
    variant: dict[str, Any] = {}
    if fields & {"price", "currency"}:
        variant["price"] = money(payload.price)
    if "sku" in fields:
        variant["inventoryItem"] = {"sku": payload.sku}
    return (
        {"id": product_id, **product} if product else None,
        {"id": variant_id, **variant} if variant else None,
        "quantity" in fields,
        "photos" in fields,
        notes,
    )


def photos_input(payload: ListingPayload, *, product_id: str, variant_id: str) -> dict[str, Any]:
    """productSet for new photos: the files, and our variant by id so that it is kept (lists are replaced)."""
    return {
        "id": product_id,
        "files": files(payload),
        "productOptions": [{"name": OPTION_NAME, "values": [{"name": OPTION_VALUE}]}],
        "variants": [{"id": variant_id, "optionValues": [{"optionName": OPTION_NAME, "name": OPTION_VALUE}]}],
    }


def inventory_input(
    inventory_item_id: str, location_id: str, quantity: int, compare: int | None, reference: str
) -> dict[str, Any]:
    """inventorySetQuantities with the compare quantity: Shopify refuses it if the figure moved meanwhile."""
    entry: dict[str, Any] = {
        "inventoryItemId": inventory_item_id,
        "locationId": location_id,
        "quantity": max(0, quantity),
    }
    if compare is not None:
        entry["compareQuantity"] = compare
    return {
        "name": INVENTORY_NAME,
        "reason": "correction",
        "referenceDocumentUri": reference,
        "ignoreCompareQuantity": compare is None,
        "quantities": [entry],
    }


# --- inbound --------------------------------------------------------------------------


def nodes(connection: Any) -> list[Mapping[str, Any]]:
    """The objects of a GraphQL connection, whether read as `nodes` or `edges { node }`."""
    if not isinstance(connection, Mapping):
        return []
    if isinstance(connection.get("nodes"), list):
        return [n for n in connection["nodes"] if isinstance(n, Mapping)]
    return [
        e["node"]
        for e in connection.get("edges") or []
        if isinstance(e, Mapping) and isinstance(e.get("node"), Mapping)
    ]


def our_variant(product: Mapping[str, Any], sku: str = "") -> Mapping[str, Any] | None:
    """The variant carrying our SKU (or the only one)."""
    variants = nodes(product.get("variants"))
    if sku:
        wanted = sku.strip().casefold()
        for variant in variants:
            if str(variant.get("sku") or "").strip().casefold() == wanted:
                return variant
        return None
    return variants[0] if variants else None


def variant_quantity(variant: Mapping[str, Any] | None) -> int | None:
    """Available units at the connection's location (None when the item is not stocked there)."""
    if not variant:
        return None
    level = (variant.get("inventoryItem") or {}).get("inventoryLevel")
    if isinstance(level, Mapping):
        for quantity in level.get("quantities") or ():
            if quantity.get("name") == INVENTORY_NAME:
                return int(quantity.get("quantity") or 0)
    return None


def product_state(product: Mapping[str, Any], quantity: int | None) -> str:
    """Shopify status and stock as the contract's live / ended / sold / draft.

    ACTIVE with stock is live; ACTIVE with none is sold out (a sale took the last unit);
    DRAFT with none is how the back office ends a product; a DRAFT with stock is a draft
    (not for sale, not ended); ARCHIVED is ended.
    """
    status = str(product.get("status") or "").upper()
    if status == "ACTIVE":
        return "live" if quantity is None or quantity > 0 else "sold"
    if status == "DRAFT":
        return "draft" if quantity and quantity > 0 else "ended"
    return "ended"


def photo_urls(product: Mapping[str, Any]) -> tuple[str, ...]:
    urls = []
    for media in nodes(product.get("media")):
        image = media.get("image")
        if isinstance(image, Mapping) and image.get("url"):
            urls.append(str(image["url"]))
    return tuple(urls)


def admin_url(admin_root: str, product_id: str) -> str:
    """The product's page in the store's admin (https://{shop}/admin/products/123)."""
    return f"{admin_root.rstrip('/')}/products/{numeric_id(product_id)}" if admin_root and product_id else ""


def listing_seen(product: Mapping[str, Any], sku: str = "", *, admin_root: str = "") -> ListingSeen:
    """A Shopify product (our variant of it) as the contract's ListingSeen; external id = the product's gid.

    Its url is the product in the store's admin when `admin_root` is given (what staff open from an
    item's listing), else the storefront page (which exists only while the product is ACTIVE)."""
    if not product.get("id"):
        raise ValueError("A Shopify product without an id.")
    variant = our_variant(product, sku) or our_variant(product)
    quantity = variant_quantity(variant)
    if quantity is None and variant is not None and variant.get("inventoryQuantity") is not None:
        quantity = int(variant["inventoryQuantity"])
    condition = ""
    for tag in product.get("tags") or ():
        slug = str(tag).strip().lower().replace(" ", "_")
        if slug in {
            "mint",
            "excellent",
            "very_good",
            "good",
            "fair",
            "poor",
            "non_functioning",
            "b_stock",
            "brand_new",
        }:
            condition = slug
    return ListingSeen(
        external_id=str(product["id"]),
        sku=str((variant or {}).get("sku") or ""),
        state=product_state(product, quantity),
        quantity=quantity,
        title=str(product.get("title") or ""),
        description=str(product.get("descriptionHtml") or ""),
        price=_decimal((variant or {}).get("price")),
        brand=str(product.get("vendor") or ""),
        condition=condition,
        photos=photo_urls(product),
        url=admin_url(admin_root, str(product["id"])) or str(product.get("onlineStoreUrl") or ""),
        updated_at=parse_time(product.get("updatedAt")),
    )


def order_status(order: Mapping[str, Any]) -> str:
    if order.get("cancelledAt"):
        return ORDER_CANCELLED
    return FINANCIAL_STATUSES.get(str(order.get("displayFinancialStatus") or "").upper(), ORDER_PENDING)


def order_seen(order: Mapping[str, Any]) -> OrderSeen:
    """A Shopify order as the contract's OrderSeen; external id = the order's numeric id (as in webhooks)."""
    if not order.get("id"):
        raise ValueError("A Shopify order without an id.")
    placed_at = parse_time(order.get("processedAt")) or parse_time(order.get("createdAt"))
    if placed_at is None:
        raise ValueError(f"Shopify order {order.get('name') or order['id']} has no createdAt.")
    lines = []
    for line in nodes(order.get("lineItems")):
        unit_price, _ = parse_money(line.get("originalUnitPriceSet"))
        lines.append(
            OrderLineSeen(
                sku=str(line.get("sku") or ""),
                external_listing_id=str((line.get("product") or {}).get("id") or ""),
                quantity=max(1, int(line.get("quantity") or 1)),
                unit_price=unit_price,
                title=str(line.get("title") or ""),
            )
        )
    subtotal, currency = parse_money(order.get("subtotalPriceSet"))
    shipping, _ = parse_money(order.get("totalShippingPriceSet"))
    tax, _ = parse_money(order.get("totalTaxSet"))
    total, total_currency = parse_money(order.get("totalPriceSet"))
    customer = order.get("customer") if isinstance(order.get("customer"), Mapping) else {}
    address = order.get("shippingAddress") if isinstance(order.get("shippingAddress"), Mapping) else {}
    return OrderSeen(
        external_id=str(order.get("legacyResourceId") or numeric_id(order["id"])),
        status=order_status(order),
        placed_at=placed_at,
        updated_at=parse_time(order.get("updatedAt")),
        lines=tuple(lines),
        currency=str(order.get("currencyCode") or currency or total_currency or "USD"),
        subtotal=subtotal,
        shipping=shipping,
        tax=tax,
        total=total,
        buyer_name=str(customer.get("displayName") or address.get("name") or ""),
        buyer_email=str(order.get("email") or customer.get("email") or ""),
        ship_name=str(address.get("name") or ""),
        ship_line1=str(address.get("address1") or ""),
        ship_line2=str(address.get("address2") or ""),
        ship_city=str(address.get("city") or ""),
        ship_region=str(address.get("provinceCode") or ""),
        ship_postal_code=str(address.get("zip") or ""),
        ship_country=str(address.get("countryCodeV2") or ""),
    )
