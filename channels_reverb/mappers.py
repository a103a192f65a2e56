"""Pure functions between our data and Reverb's JSON. No HTTP, no database.

Outbound: a ListingPayload becomes a Reverb listing body (create) or the changed fields
only (revise). Inbound: Reverb listing and order JSON become the contract's ListingSeen
and OrderSeen. Field names and values follow Reverb's OpenAPI document (request side)
and what Reverb returns (see CHANNELS.md §2).
"""

from __future__ import annotations

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

# Our condition values (inventory.models.Condition) -> Reverb's condition UUIDs.
CONDITION_UUIDS: dict[str, str] = {
    "non_functioning": "fbf35668-96a0-4baa-bcde-ab18d6b1b329",
    "poor": "6a9dfcad-600b-46c8-9e08-ce6e5057921e",
    "fair": "98777886-76d0-44c8-865e-bb40e669e934",
    "good": "f7a3f48c-972a-44c6-b01a-0cd27488d3f6",
    "very_good": "ae4d9114-1bd7-4ec5-a4ba-6653af5ac84d",
    "excellent": "df268ad1-c462-4ba6-b6db-e007e23922ea",
    "mint": "ac5b9c1e-dc78-466d-b0b3-7cf712967a48",
    "b_stock": "9225283f-60c2-4413-ad18-1f5eba7a856f",
    "brand_new": "7c3f45de-2ae0-4c81-8400-fdb6b1d74890",
}
MINT_WITH_INVENTORY_UUID = "6db7df88-293b-4017-a1c1-cdb5e599fa1a"
CONDITION_BY_UUID: dict[str, str] = {uuid: name for name, uuid in CONDITION_UUIDS.items()}
CONDITION_BY_UUID[MINT_WITH_INVENTORY_UUID] = "mint"

# Only these may hold more than one unit on Reverb; every other condition is one of a kind.
MULTI_UNIT_CONDITIONS = frozenset({"brand_new", "b_stock"})
CURRENCIES = frozenset({"USD", "CAD", "EUR", "GBP", "AUD", "JPY", "NZD", "MXN"})

# Reverb listing state slug -> the contract's live / ended / sold / draft.
#
# Only a state the listing cannot leave by itself is reported as off sale. A listing that
# may become buyable again without us (a shop on vacation, an order the buyer may not pay,
# a suspension Reverb may lift) stays "live", so that the engine still ends it when the
# item sells elsewhere instead of believing it is already gone.
LISTING_STATES: dict[str, str] = {
    "live": "live",
    "seller_unavailable": "live",
    "ordered": "live",
    "suspended": "live",
    "draft": "draft",
    "ended": "ended",
    "sold": "sold",
    "sold_out": "sold",
}
UNKNOWN_LISTING_STATE = "live"

# Reverb order status -> the contract's pending / paid / cancelled.
ORDER_STATUSES: dict[str, str] = {
    "unpaid": ORDER_PENDING,
    "payment_pending": ORDER_PENDING,
    "pending_review": ORDER_PENDING,
    "blocked": ORDER_PENDING,
    "partially_paid": ORDER_PENDING,
    "paid": ORDER_PAID,
    "awaiting_shipment": ORDER_PAID,
    "shipped": ORDER_PAID,
    "picked_up": ORDER_PAID,
    "received": ORDER_PAID,
    "refunded": ORDER_CANCELLED,
    "cancelled": ORDER_CANCELLED,
    "canceled": ORDER_CANCELLED,
}

# ListingPayload field -> what Reverb calls it. Fields Reverb has no place for are listed
# in IGNORED_FIELDS so that a new payload field is a decision, not an accident.
REVISE_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "seo_title": ("title",),
    "description": ("description",),
    "price": ("price",),
    "currency": ("price",),
    "quantity": ("has_inventory", "inventory", "condition"),
    "brand": ("make",),
    "model": ("model",),
    "year": ("year",),
    "finish": ("finish",),
    "category": ("categories",),
    "condition": ("condition", "has_inventory", "inventory"),
    "photos": ("photos",),
    "video_url": ("videos",),
    "sku": ("sku",),
}
IGNORED_FIELDS = frozenset({"serial_number", "seo_description", "seo_keywords"})


# --- small values ---------------------------------------------------------------------


def format_time(value: datetime) -> str:
    """A time as Reverb's date filters take it: UTC, ISO 8601, offset written `-00:00`
    (a `+` in a query string is read as a space)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S-00:00")


def parse_time(value: Any) -> datetime | None:
    """Reverb's ISO 8601 times (any offset, or Z) as aware UTC datetimes; None when absent or unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def money_body(amount: Decimal, currency: str) -> dict[str, str]:
    """Reverb's money for requests: the amount as a decimal string, e.g. {"amount": "5000.00", "currency": "USD"}."""
    return {"amount": str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)), "currency": currency.upper()}


def parse_money(value: Any) -> tuple[Decimal | None, str]:
    """Reverb's money object ({amount, amount_cents, currency, display}) as (amount, currency)."""
    if not isinstance(value, Mapping):
        return None, ""
    currency = str(value.get("currency") or "")
    amount = value.get("amount")
    if amount not in (None, ""):
        try:
            return Decimal(str(amount)), currency
        except InvalidOperation:
            pass
    cents = value.get("amount_cents")
    if isinstance(cents, int):
        return (Decimal(cents) / 100).quantize(Decimal("0.01")), currency
    return None, currency


def public_photo_urls(photos: Iterable[str]) -> list[str]:
    """The photos Reverb can fetch: absolute http(s) URLs. A path on this site ("/media/...")
    means nothing to Reverb, so it is left out rather than sent to fail there."""
    return [url for url in photos if url.startswith(("https://", "http://"))]


def condition_body(condition: str, quantity: int) -> dict[str, str]:
    """Reverb's condition for ours. Mint with more than one unit is Reverb's "Mint (with inventory)"."""
    if condition == "mint" and quantity > 1:
        return {"uuid": MINT_WITH_INVENTORY_UUID}
    return {"uuid": CONDITION_UUIDS[condition]}


def stock_fields(condition: str, quantity: int, *, revising: bool = False) -> dict[str, Any]:
    """has_inventory / inventory (and Mint's condition) for a quantity.

    Only Brand New, B-Stock and Mint (with inventory) may hold more than one unit. Any other
    condition is one of a kind: one unit is offered, and 0 takes the listing off sale.
    A Mint listing becomes "Mint (with inventory)" when it has more than one unit; when
    revising it back down to one it is left as it is, since Reverb may refuse the switch.
    """
    quantity = max(0, quantity)
    if condition in MULTI_UNIT_CONDITIONS:
        return {"has_inventory": True, "inventory": quantity}
    if condition == "mint" and quantity > 1:
        return {"has_inventory": True, "inventory": quantity, "condition": {"uuid": MINT_WITH_INVENTORY_UUID}}
    if condition == "mint" and revising:
        return {"inventory": min(quantity, 1)}
    return {"has_inventory": False, "inventory": min(quantity, 1)}


def listing_problems(payload: ListingPayload) -> list[str]:
    """Why Reverb would refuse this listing, in staff's words (empty when it can be sent)."""
    problems = []
    if not payload.sku.strip():
        problems.append("it has no SKU (Reverb matches listings by SKU)")
    if not payload.brand.strip():
        problems.append("Reverb needs a brand (make)")
    if not payload.model.strip():
        problems.append("Reverb needs a model")
    if payload.currency.upper() not in CURRENCIES:
        problems.append(
            f"Reverb does not take {payload.currency or 'an empty currency'} ({', '.join(sorted(CURRENCIES))})"
        )
    if payload.condition not in CONDITION_UUIDS:
        problems.append(f"Reverb has no condition {payload.condition!r}")
    if payload.price <= 0:
        problems.append("Reverb needs a price above zero")
    return problems


# --- outbound -------------------------------------------------------------------------


def listing_title(payload: ListingPayload) -> str:
    """Reverb shows one title: the SEO title when the item has one, else its title."""
    return squash(payload.seo_title) or payload.title


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """The title is all Reverb takes of the SEO fields. Its API states no length limit (the
    listing's `title` is a plain string in contracts/reverb), so nothing is cut here."""
    title = listing_title(payload)
    return (
        SeoField("title", "Title", "SEO title, else title", title, title, None),
        not_sent(
            "seo_description",
            "SEO description",
            "SEO description",
            squash(payload.seo_description),
            "Reverb has no meta description; the listing shows the item's description",
        ),
        not_sent(
            "keywords",
            "Keywords",
            "SEO keywords",
            squash(payload.seo_keywords),
            "Reverb has no keywords field; its search reads make, model, year, finish and the title",
        ),
    )


def listing_body(
    payload: ListingPayload,
    *,
    category_uuid: str = "",
    shipping_profile_id: str = "",
    publish: bool = True,
) -> dict[str, Any]:
    """The full Reverb listing body for a create (or an adopting update) of this payload.

    Empty optional texts are left out rather than sent blank. Reverb keeps a Brand New item
    without a UPC as a draft, silently; the catalogue has no UPC, so such items are sent
    with `upc_does_not_apply`.
    """
    body: dict[str, Any] = {
        "sku": payload.sku,
        "make": payload.brand,
        "model": payload.model,
        "title": listing_title(payload),
        "description": payload.description,
        "price": money_body(payload.price, payload.currency),
        "condition": condition_body(payload.condition, payload.quantity),
    }
    for ours, theirs in (("finish", "finish"), ("year", "year")):
        value = getattr(payload, ours).strip()
        if value:
            body[theirs] = value
    body.update(stock_fields(payload.condition, payload.quantity))
    photos = public_photo_urls(payload.photos)
    if photos:
        body["photos"] = photos
    if payload.video_url:
        body["videos"] = [{"link": payload.video_url}]  # Reverb takes one video
    if category_uuid:
        body["categories"] = [{"uuid": category_uuid}]
    if shipping_profile_id:
        body["shipping_profile_id"] = shipping_profile_id
    if payload.condition == "brand_new":
        body["upc_does_not_apply"] = True
    body["publish"] = publish
    return body


def revise_body(payload: ListingPayload, fields: Iterable[str], *, category_uuid: str = "") -> dict[str, Any]:
    """Only the changed fields, under Reverb's names. Empty when nothing Reverb shows changed."""
    fields = set(fields)
    unknown = fields - set(REVISE_FIELDS) - IGNORED_FIELDS
    if unknown:
        raise ValueError(f"Not ListingPayload fields: {sorted(unknown)}")
    body: dict[str, Any] = {}
    if "seo_title" in fields or ("title" in fields and not squash(payload.seo_title)):
        body["title"] = listing_title(payload)
    if "description" in fields:
        body["description"] = payload.description
    if fields & {"price", "currency"}:
        body["price"] = money_body(payload.price, payload.currency)
    if "brand" in fields:
        body["make"] = payload.brand
    if "model" in fields:
        body["model"] = payload.model
    if "year" in fields:
        body["year"] = payload.year
    if "finish" in fields:
        body["finish"] = payload.finish
    if "sku" in fields:
        body["sku"] = payload.sku
    if "photos" in fields:
        body["photos"] = public_photo_urls(payload.photos)
    if "video_url" in fields:
        body["videos"] = [{"link": payload.video_url}] if payload.video_url else []
    if "category" in fields and category_uuid:
        body["categories"] = [{"uuid": category_uuid}]
    if "condition" in fields:
        body["condition"] = condition_body(payload.condition, payload.quantity)
        body.update(stock_fields(payload.condition, payload.quantity))
    elif "quantity" in fields:
        body.update(stock_fields(payload.condition, payload.quantity, revising=True))
    return body


# --- inbound --------------------------------------------------------------------------


def unwrap(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The object itself, whether sent bare or nested under its name ({"listing": {...}})."""
    inner = payload.get(key)
    return inner if isinstance(inner, Mapping) else payload


def listing_state_slug(listing: Mapping[str, Any]) -> str:
    """Reverb's state slug; the API sends {"slug": "live", "description": "Live"}, older answers a bare string."""
    state = listing.get("state")
    if isinstance(state, Mapping):
        state = state.get("slug")
    return str(state or "")


def listing_state(listing: Mapping[str, Any]) -> str:
    return LISTING_STATES.get(listing_state_slug(listing), UNKNOWN_LISTING_STATE)


def link(obj: Mapping[str, Any], name: str) -> str:
    links = obj.get("_links")
    if not isinstance(links, Mapping):
        return ""
    target = links.get(name)
    return str(target.get("href") or "") if isinstance(target, Mapping) else ""


def photo_urls(photos: Any) -> tuple[str, ...]:
    """Photo URLs as Reverb serves them (its own copies, not the URLs we sent)."""
    urls = []
    for photo in photos or ():
        if isinstance(photo, str):
            urls.append(photo)
        elif isinstance(photo, Mapping):
            url = next(
                (link(photo, size) for size in ("full", "large_crop", "small_crop", "thumbnail") if link(photo, size)),
                "",
            )
            url = url or str(photo.get("url") or "")
            if url:
                urls.append(url)
    return tuple(urls)


def condition_from_reverb(condition: Any) -> str:
    if not isinstance(condition, Mapping):
        return ""
    by_uuid = CONDITION_BY_UUID.get(str(condition.get("uuid") or ""))
    if by_uuid:
        return by_uuid
    slug = str(condition.get("slug") or condition.get("display_name") or "").lower()
    slug = slug.replace("-", "_").replace(" ", "_")
    return slug if slug in CONDITION_UUIDS else ""


def listing_seen(listing: Mapping[str, Any]) -> ListingSeen:
    """A Reverb listing as the contract's ListingSeen."""
    listing = unwrap(listing, "listing")
    if listing.get("id") in (None, ""):
        raise ValueError("A Reverb listing without an id.")
    state = listing_state(listing)
    inventory = listing.get("inventory")
    if listing.get("has_inventory") and isinstance(inventory, int):
        quantity = max(0, inventory)
    else:  # one of a kind: one unit while it is for sale
        quantity = 1 if state == "live" else 0
    price, currency = parse_money(listing.get("price"))
    return ListingSeen(
        external_id=str(listing["id"]),
        sku=str(listing.get("sku") or ""),
        state=state,
        quantity=quantity,
        title=str(listing.get("title") or ""),
        description=str(listing.get("description") or ""),
        price=price,
        currency=currency or str(listing.get("listing_currency") or ""),
        brand=str(listing.get("make") or ""),
        model=str(listing.get("model") or ""),
        year=str(listing.get("year") or ""),
        finish=str(listing.get("finish") or ""),
        condition=condition_from_reverb(listing.get("condition")),
        photos=photo_urls(listing.get("photos")),
        url=link(listing, "web"),
        updated_at=parse_time(listing.get("updated_at")) or parse_time(listing.get("published_at")),
    )


def order_status(status: Any) -> str:
    """Reverb's order status as pending / paid / cancelled. An unknown one is pending: it neither
    commits a sale nor releases one."""
    return ORDER_STATUSES.get(str(status or "").lower(), ORDER_PENDING)


def order_listing_id(order: Mapping[str, Any]) -> str:
    product_id = order.get("product_id")
    if product_id not in (None, ""):
        return str(product_id)
    href = link(order, "listing")
    return href.rstrip("/").rsplit("/", 1)[-1] if href else ""


def order_seen(order: Mapping[str, Any]) -> OrderSeen:
    """A Reverb order (one order = one listing) as the contract's OrderSeen."""
    order = unwrap(order, "order")
    number = order.get("order_number")
    if number in (None, ""):
        raise ValueError("A Reverb order without an order_number.")
    placed_at = parse_time(order.get("created_at")) or parse_time(order.get("paid_at"))
    if placed_at is None:
        raise ValueError(f"Reverb order {number} has no created_at.")
    try:
        quantity = max(1, int(order.get("quantity") or 1))
    except (TypeError, ValueError):
        quantity = 1
    unit_price, currency = parse_money(order.get("amount_product"))
    subtotal, subtotal_currency = parse_money(order.get("amount_product_subtotal"))
    if subtotal is None and unit_price is not None:
        subtotal = unit_price * quantity
    shipping, shipping_currency = parse_money(order.get("shipping") or order.get("amount_shipping"))
    tax, tax_currency = parse_money(order.get("amount_tax"))
    total, total_currency = parse_money(order.get("total") or order.get("amount_total"))
    currency = currency or subtotal_currency or total_currency or shipping_currency or tax_currency or "USD"
    buyer_name = str(order.get("buyer_name") or "").strip() or " ".join(
        str(order.get(k) or "").strip() for k in ("buyer_first_name", "buyer_last_name") if order.get(k)
    )
    address = order.get("shipping_address") if isinstance(order.get("shipping_address"), Mapping) else {}
    line = OrderLineSeen(
        sku=str(order.get("sku") or ""),
        external_listing_id=order_listing_id(order),
        quantity=quantity,
        unit_price=unit_price,
        title=str(order.get("title") or ""),
    )
    return OrderSeen(
        external_id=str(number),
        status=order_status(order.get("status")),
        placed_at=placed_at,
        updated_at=parse_time(order.get("updated_at")),
        lines=(line,),
        currency=currency,
        subtotal=subtotal,
        shipping=shipping,
        tax=tax,
        total=total,
        buyer_name=buyer_name,
        buyer_email=str(order.get("buyer_email") or ""),
        ship_name=str(address.get("name") or ""),
        ship_line1=str(address.get("street_address") or ""),
        ship_line2=str(address.get("extended_address") or ""),
        ship_city=str(address.get("locality") or ""),
        ship_region=str(address.get("region") or ""),
        ship_postal_code=str(address.get("postal_code") or ""),
        ship_country=str(address.get("country_code") or ""),
    )


# The providers Reverb's ship endpoint takes (contracts/reverb/openapi.yaml).
SHIPPING_PROVIDERS = (
    "UPS",
    "USPS",
    "FedEx",
    "DHL Deutschland",
    "DHLExpress",
    "DHLGlobalMail",
    "DHL",
    "Canada Post",
    "CanPar",
    "Royal Mail",
    "PostNL",
    "Australia Post",
    "EMS",
    "La Poste - Colissimo",
    "China Post",
    "GLS",
    "Parcelforce",
    "Purolator",
    "Interlogistica",
    "Correos España",
    "Ukraine Post",
    "DPD Germany",
    "DPD UK",
    "DPD France",
    "Hermes",
    "TNT",
    "Other",
)


def shipping_provider(carrier: str) -> str:
    """Reverb's name for a carrier (case and spaces aside), else "Other"."""
    wanted = carrier.replace(" ", "").casefold()
    return next((p for p in SHIPPING_PROVIDERS if p.replace(" ", "").casefold() == wanted), "Other")
