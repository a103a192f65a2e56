"""Pure functions between our data and Etsy's Open API v3 shapes. No HTTP, no database.

Outbound: eligibility (Etsy takes used goods only as vintage: at least 20 years old), the
createDraftListing form, the updateListing form for changed fields, the inventory body of
updateListingInventory. Inbound: ShopListing and ShopReceipt JSON as the contract's
ListingSeen and OrderSeen. Field names and values follow contracts/etsy/etsy-openapi-v3.json.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
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
    tag_list,
)

VINTAGE_YEARS = 20  # Etsy: vintage items are at least 20 years old
TITLE_MAX = 140
TAGS_MAX = 13
TAG_LENGTH_MAX = 20
MATERIALS_MAX = 13
ALT_TEXT_MAX = 500
ONCE_ONLY_IN_TITLE = "%:&+"  # Etsy: "You can only use the %, :, & and + characters once each."
WHO_MADE = "someone_else"

# Etsy listing state -> the contract's live / ended / sold / draft. `inactive` and `expired`
# only come back on sale when the seller (or we) activate or renew them.
LISTING_STATES = {"active": "live", "draft": "draft", "inactive": "ended", "expired": "ended", "sold_out": "sold"}
UNKNOWN_LISTING_STATE = "live"
ALL_LISTING_STATES = ("active", "draft", "inactive", "sold_out", "expired")

# ShopReceipt.status -> pending / paid / cancelled (the spec's enum).
RECEIPT_STATUSES = {
    "open": ORDER_PENDING,
    "payment processing": ORDER_PENDING,
    "paid": ORDER_PAID,
    "completed": ORDER_PAID,
    "partially refunded": ORDER_PAID,  # the sale stands; part of the money went back
    "canceled": ORDER_CANCELLED,
    "fully refunded": ORDER_CANCELLED,
}

# ListingPayload field -> how Etsy takes it. Fields Etsy has no place for are IGNORED_FIELDS.
LISTING_FORM_FIELDS = {"title", "seo_title", "description", "year", "category", "seo_keywords", "brand", "model"}
INVENTORY_FIELDS = {"price", "currency", "quantity", "sku"}
IMAGE_FIELDS = {"photos"}
IGNORED_FIELDS = frozenset(
    {"finish", "condition", "serial_number", "video_url", "seo_description"}
)  # Etsy shows no condition, serial or meta description; a video is an upload (not done)


# --- eligibility and when_made ----------------------------------------------------------


def year_range(text: str) -> tuple[int, int] | None:
    """The earliest and latest year a catalogue year can mean: "1962" -> (1962, 1962), "1960s" -> (1960, 1969).

    None when it names no year (empty, "unknown", "n/a").
    """
    match = re.search(r"(?<!\d)(1[5-9]\d\d|20\d\d)(s|'s)?(?!\d)", text or "")
    if not match:
        return None
    year = int(match.group(1))
    if match.group(2):
        decade = year - year % 10
        return decade, decade + 9
    return year, year


def when_made(year: int) -> str:
    """Etsy's when_made value for a year (the spec's buckets)."""
    if year < 1700:
        return "before_1700"
    if year < 1900:
        return f"{year // 100}00s"  # 1700s, 1800s
    if year < 2000:
        return f"{year - year % 10}s"
    if year <= 2006:
        return "2000_2006"
    if year <= 2009:
        return "2007_2009"
    if year <= 2019:
        return "2010_2019"
    return "2020_2026"


def eligibility_problems(payload: ListingPayload, today: date | None = None) -> list[str]:
    """Why Etsy would refuse this item, in staff's words (empty when it can be listed)."""
    today = today or date.today()
    problems = []
    years = year_range(payload.year)
    if years is None:
        problems.append(
            "Etsy lists used gear only as vintage (at least 20 years old) and this item has no year: "
            "set its year to list it on Etsy"
        )
    elif today.year - years[1] < VINTAGE_YEARS:
        problems.append(
            f"Etsy lists used gear only as vintage (at least {VINTAGE_YEARS} years old, made in "
            f"{today.year - VINTAGE_YEARS} or earlier); this item is from {payload.year.strip()}"
        )
    if not payload.sku.strip():
        problems.append("it has no SKU (listings are matched by SKU)")
    if payload.price <= 0:
        problems.append("Etsy needs a price above zero")
    if not clean_title(payload.title):
        problems.append("Etsy needs a title")
    if not payload.photos:
        problems.append("Etsy activates a listing only with at least one photo")
    return problems


def item_when_made(payload: ListingPayload) -> str:
    years = year_range(payload.year)
    if years is None:
        raise ValueError(f"No year in {payload.year!r}.")
    return when_made(years[0])


# --- texts --------------------------------------------------------------------------------


def _title_char_ok(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LP" or category in ("Nd", "Sm", "Zs") or char in "™©®"


def clean_title(title: str) -> str:
    """A title Etsy takes: allowed characters only, %, :, & and + once each, at most 140 characters
    (cut at a word boundary)."""
    text = _clean_chars(title)
    if len(text) <= TITLE_MAX:
        return text
    cut = text[: TITLE_MAX + 1].rsplit(" ", 1)[0]
    return (cut if len(cut) >= TITLE_MAX // 2 else text[:TITLE_MAX]).rstrip(" -,;:")


def _clean_chars(title: str) -> str:
    """The title with only the characters Etsy takes (and %, :, & and + once each), on one line."""
    seen: set[str] = set()
    kept = []
    for char in " ".join((title or "").split()):
        if not _title_char_ok(char):
            continue
        if char in ONCE_ONLY_IN_TITLE:
            if char in seen:
                continue
            seen.add(char)
        kept.append(char)
    return " ".join("".join(kept).split())


def _tag_char_ok(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] == "L" or category in ("Nd", "Zs") or char in "-'™©®"


def clean_tag(text: str) -> str:
    tag = " ".join("".join(c if _tag_char_ok(c) else " " for c in text or "").split())
    if len(tag) > TAG_LENGTH_MAX:
        tag = tag[:TAG_LENGTH_MAX].rsplit(" ", 1)[0] if " " in tag[:TAG_LENGTH_MAX] else tag[:TAG_LENGTH_MAX]
    return tag.strip()


def tags(payload: ListingPayload) -> list[str]:
    """Up to 13 tags of at most 20 characters: the shop's keywords first, then brand, model,
    category, the decade and "vintage"; duplicates (any case) once."""
    candidates = [k for k in re.split(r"[,;\n]", payload.seo_keywords or "")]
    candidates += [payload.brand, payload.model, f"{payload.brand} {payload.model}", payload.category]
    years = year_range(payload.year)
    if years:
        candidates.append(f"{years[0] - years[0] % 10}s")
    candidates.append("vintage")
    found: list[str] = []
    seen: set[str] = set()
    for candidate in candidates:
        tag = clean_tag(candidate)
        if tag and tag.casefold() not in seen:
            seen.add(tag.casefold())
            found.append(tag)
        if len(found) == TAGS_MAX:
            break
    return found


def listing_title(payload: ListingPayload) -> str:
    """The listing's title: the SEO title when the item has one, else its title, by Etsy's rules."""
    return clean_title(payload.seo_title if squash(payload.seo_title) else payload.title)


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """Etsy's title (140 characters, allowed characters only, %, :, & and + once) and its 13 tags of
    at most 20 characters (the keywords first, then brand, model, category, decade, "vintage")."""
    wanted = squash(payload.seo_title) or squash(payload.title)
    sent = listing_title(payload)
    cleaned = _clean_chars(wanted)
    cut = cleaned[len(sent) :].strip() if cleaned.startswith(sent) else ""
    note = "characters Etsy does not take were left out (a second %, :, & or +, symbols)" if cleaned != wanted else ""
    keywords = tag_list(payload.seo_keywords)
    sent_tags = tags(payload)
    sent_folded = {t.casefold() for t in sent_tags}
    dropped = tuple(k for k in keywords if clean_tag(k).casefold() not in sent_folded)
    shortened = [f"{k} -> {clean_tag(k)}" for k in keywords if k not in dropped and clean_tag(k) != k]
    return (
        SeoField("title", "Title", "SEO title, else title", wanted, sent, TITLE_MAX, cut, note=note),
        SeoField(
            "tags",
            "Tags",
            "SEO keywords, then brand, model, category, decade",
            ", ".join(keywords),
            ", ".join(sent_tags),
            TAGS_MAX,
            dropped=dropped,
            tags=tuple(sent_tags),
            item_limit=TAG_LENGTH_MAX,
            note=("shortened to Etsy's tag rules: " + "; ".join(shortened)) if shortened else "",
        ),
        not_sent(
            "seo_description",
            "SEO description",
            "SEO description",
            squash(payload.seo_description),
            "Etsy has no meta description; search engines read the listing's description",
        ),
    )


def description(payload: ListingPayload) -> str:
    return (payload.description or "").strip() or clean_title(payload.title)


def price_text(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def alt_text(payload: ListingPayload, index: int) -> str:
    base = clean_title(payload.title)
    return (base if index == 0 else f"{base} (photo {index + 1})")[:ALT_TEXT_MAX]


# --- outbound ------------------------------------------------------------------------------


def draft_form(
    payload: ListingPayload,
    *,
    taxonomy_id: int,
    shipping_profile_id: int | None = None,
    return_policy_id: int | None = None,
    auto_renew: bool = False,
) -> list[tuple[str, str]]:
    """createDraftListing's form fields (application/x-www-form-urlencoded; arrays as repeated keys,
    OpenAPI's default form style)."""
    form: list[tuple[str, str]] = [
        ("quantity", str(max(1, payload.quantity))),
        ("title", listing_title(payload)),
        ("description", description(payload)),
        ("price", price_text(payload.price)),
        ("who_made", WHO_MADE),
        ("when_made", item_when_made(payload)),
        ("taxonomy_id", str(taxonomy_id)),
        ("is_supply", "false"),
        ("type", "physical"),
        ("should_auto_renew", "true" if auto_renew else "false"),  # a renewal costs a fee: the shop decides
    ]
    if shipping_profile_id:
        form.append(("shipping_profile_id", str(shipping_profile_id)))
    if return_policy_id:
        form.append(("return_policy_id", str(return_policy_id)))
    form += [("tags", tag) for tag in tags(payload)]
    return form


def update_form(
    payload: ListingPayload, fields: Iterable[str], *, taxonomy_id: int | None = None
) -> list[tuple[str, str]]:
    """updateListing's form fields for the changed fields that live on the listing itself."""
    fields = set(fields)
    form: list[tuple[str, str]] = []
    if "seo_title" in fields or ("title" in fields and not squash(payload.seo_title)):
        form.append(("title", listing_title(payload)))
    if "description" in fields:
        form.append(("description", description(payload)))
    if "year" in fields:
        form.append(("when_made", item_when_made(payload)))
    if "category" in fields and taxonomy_id:
        form.append(("taxonomy_id", str(taxonomy_id)))
    if fields & {"seo_keywords", "brand", "model", "year", "category"}:
        form += [("tags", tag) for tag in tags(payload)]
    return form


def check_fields(fields: Iterable[str]) -> None:
    unknown = set(fields) - LISTING_FORM_FIELDS - INVENTORY_FIELDS - IMAGE_FIELDS - IGNORED_FIELDS
    if unknown:
        raise ValueError(f"Not ListingPayload fields: {sorted(unknown)}")


def inventory_body(
    payload: ListingPayload, *, readiness_state_id: int | None, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """updateListingInventory's JSON: one product with our SKU and one offering (price, quantity).

    The readiness state (processing profile) is kept from Etsy's current offering when it has
    one, else the connection's. A quantity of 0 disables the offering (Etsy marks it sold out).
    """
    readiness = readiness_state_id
    for product in (current or {}).get("products") or []:
        for offering in product.get("offerings") or []:
            if offering.get("readiness_state_id"):
                readiness = offering["readiness_state_id"]
                break
    quantity = max(0, payload.quantity)
    return {
        "products": [
            {
                "sku": payload.sku,
                "property_values": [],
                "offerings": [
                    {
                        "price": float(price_text(payload.price)),
                        "quantity": quantity,
                        "is_enabled": quantity > 0,
                        "readiness_state_id": readiness,
                    }
                ],
            }
        ],
        "price_on_property": [],
        "quantity_on_property": [],
        "sku_on_property": [],
    }


# --- inbound --------------------------------------------------------------------------------


def money(value: Any) -> tuple[Decimal | None, str]:
    """Etsy's Money ({amount, divisor, currency_code}) as (amount, currency)."""
    if not isinstance(value, Mapping):
        return None, ""
    try:
        amount = Decimal(int(value["amount"])) / Decimal(int(value.get("divisor") or 100))
    except (KeyError, TypeError, ValueError, InvalidOperation, ZeroDivisionError):
        return None, str(value.get("currency_code") or "")
    return amount.quantize(Decimal("0.01")), str(value.get("currency_code") or "")


def from_timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def to_timestamp(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


def listing_sku(listing: Mapping[str, Any], inventory: Mapping[str, Any] | None = None) -> str:
    """Our SKU on an Etsy listing: from its inventory's product when read, else the listing's `skus`."""
    for product in (inventory or listing.get("inventory") or {}).get("products") or []:
        if not product.get("is_deleted") and product.get("sku"):
            return str(product["sku"])
    skus = [s for s in listing.get("skus") or [] if s]
    return str(skus[0]) if skus else ""


def listing_state(listing: Mapping[str, Any]) -> str:
    return LISTING_STATES.get(str(listing.get("state") or ""), UNKNOWN_LISTING_STATE)


def image_urls(images: Any) -> tuple[str, ...]:
    ranked = sorted((i for i in images or () if isinstance(i, Mapping)), key=lambda i: i.get("rank") or 0)
    return tuple(str(i.get("url_fullxfull") or i.get("url_570xN") or "") for i in ranked if i.get("url_fullxfull"))


def listing_seen(listing: Mapping[str, Any], inventory: Mapping[str, Any] | None = None) -> ListingSeen:
    """An Etsy ShopListing as the contract's ListingSeen."""
    if not listing.get("listing_id"):
        raise ValueError("An Etsy listing without a listing_id.")
    price, currency = money(listing.get("price"))
    state = listing_state(listing)
    quantity = listing.get("quantity")
    if state != "live" and state != "draft":
        quantity = 0
    return ListingSeen(
        external_id=str(listing["listing_id"]),
        sku=listing_sku(listing, inventory),
        state=state,
        quantity=int(quantity) if isinstance(quantity, int) else None,
        title=str(listing.get("title") or ""),
        description=str(listing.get("description") or ""),
        price=price,
        currency=currency,
        photos=image_urls(listing.get("images")),
        url=str(listing.get("url") or ""),
        updated_at=from_timestamp(listing.get("updated_timestamp") or listing.get("last_modified_timestamp")),
    )


def receipt_status(receipt: Mapping[str, Any]) -> str:
    status = RECEIPT_STATUSES.get(str(receipt.get("status") or "").lower())
    if status is None:  # an unknown status: what is_paid says, never a release
        return ORDER_PAID if receipt.get("is_paid") else ORDER_PENDING
    return status


def order_seen(receipt: Mapping[str, Any]) -> OrderSeen:
    """An Etsy ShopReceipt (one checkout, one or more transactions) as the contract's OrderSeen."""
    receipt_id = receipt.get("receipt_id")
    if not receipt_id:
        raise ValueError("An Etsy receipt without a receipt_id.")
    placed_at = from_timestamp(receipt.get("created_timestamp") or receipt.get("create_timestamp"))
    if placed_at is None:
        raise ValueError(f"Etsy receipt {receipt_id} has no created_timestamp.")
    lines = []
    for transaction in receipt.get("transactions") or []:
        unit_price, _ = money(transaction.get("price"))
        lines.append(
            OrderLineSeen(
                sku=str(transaction.get("sku") or ""),
                external_listing_id=str(transaction.get("listing_id") or ""),
                quantity=max(1, int(transaction.get("quantity") or 1)),
                unit_price=unit_price,
                title=str(transaction.get("title") or ""),
            )
        )
    subtotal, currency = money(receipt.get("subtotal"))
    shipping, _ = money(receipt.get("total_shipping_cost"))
    tax, _ = money(receipt.get("total_tax_cost"))
    total, total_currency = money(receipt.get("grandtotal"))
    return OrderSeen(
        external_id=str(receipt_id),
        status=receipt_status(receipt),
        placed_at=placed_at,
        updated_at=from_timestamp(receipt.get("updated_timestamp") or receipt.get("update_timestamp")),
        lines=tuple(lines),
        currency=currency or total_currency or "USD",
        subtotal=subtotal,
        shipping=shipping,
        tax=tax,
        total=total,
        buyer_name=str(receipt.get("name") or ""),
        buyer_email=str(receipt.get("buyer_email") or ""),
        ship_name=str(receipt.get("name") or ""),
        ship_line1=str(receipt.get("first_line") or ""),
        ship_line2=str(receipt.get("second_line") or ""),
        ship_city=str(receipt.get("city") or ""),
        ship_region=str(receipt.get("state") or ""),
        ship_postal_code=str(receipt.get("zip") or ""),
        ship_country=str(receipt.get("country_iso") or ""),
    )
