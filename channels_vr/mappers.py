"""Pure translations between the channel contract and V&R's dealer pages (form fields, export rows).

No browser, no database: tested on their own (tests/test_vr_mappers.py). Field and column
names are the ones the dealer site uses (../shared/CHANNELS.md section 4).
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from inventory.channels import (
    ListingPayload,
    ListingSeen,
    OrderLineSeen,
    OrderSeen,
    SeoField,
    cut_at_word,
    not_sent,
    squash,
)

# The inventory export's columns, in V&R's order.
EXPORT_COLUMNS = (
    "brand name",
    "category name",
    "product id",
    "external id",
    "product model name",
    "product price",
    "product price notax",
    "product description",
    "product year",
    "product sold",
    "product finish",
    "product in collective",
    "product in inventory",
    "product in reseller",
    "collective discount",
    "free shipping",
    "buy now",
    "show vat",
    "decade",
    "product order",
    "local pickup",
    "available for shipment",
    "processing time",
    "offer discount",
    "image url",
    "video url",
    "external link",
)
# The columns the sync cannot work without: a V&R export lacking one has changed its layout.
REQUIRED_COLUMNS = ("product id", "external id", "product sold", "product price", "brand name", "product model name")

# The add/edit item form's field names.
FIELD_BRAND = "recipient_name"
FIELD_MODEL = "model_name"
FIELD_YEAR = "year"
FIELD_DECADE = "decade"
FIELD_FINISH = "finish_color"
FIELD_DESCRIPTION = "item_desc"
FIELD_PRICE = "price"
FIELD_EXTERNAL_ID = "external_id"
FIELD_PROCESSING_TIME = "processing_time"
FIELD_PROCESSING_UNIT = "hours_days_sel"
FIELD_SHIPMENT = "available_for_shipment"
FIELD_YOUTUBE = "youtube_upload"
CATEGORY_FIELDS = ("categ_level_0", "categ_level_1", "categ_level_2", "categ_level_3")
MAX_PHOTOS = 20
PHOTO_FIELDS = tuple(f"image_{n}" for n in range(1, MAX_PHOTOS + 1))

_YEAR = re.compile(r"(1[89]\d\d|20\d\d)")
_YOUTUBE = re.compile(r"^https?://(www\.|m\.)?(youtube\.com/(watch\?|embed/|shorts/)|youtu\.be/)", re.IGNORECASE)
_TAG = re.compile(r"<(p|br|ul|ol|li|div|h[1-6]|strong|em|b|i|span|a)\b", re.IGNORECASE)


# --- our item -> the form ----------------------------------------------------------------


def listing_problems(payload: ListingPayload) -> list[str]:
    """What V&R's form requires that the item lacks, in staff's words (empty: it can be listed)."""
    problems = []
    if not payload.brand.strip():
        problems.append("the item has no brand (V&R requires one of its known brands)")
    if not (payload.model or payload.title).strip():
        problems.append("the item has no model")
    if payload.price is None or payload.price <= 0:
        problems.append("the item has no price")
    if not payload.sku.strip():
        problems.append("the item has no SKU (V&R's external id)")
    return problems


def year_of(year: str) -> str:
    """The four-digit year in what staff typed ("c. 1965" -> "1965"), or blank."""
    match = _YEAR.search(year or "")
    return match.group(1) if match else ""


def decade_of(year: str) -> str:
    """V&R's decade choice for a year: "1963" -> "1960"; blank when the year is unknown."""
    four = year_of(year)
    return f"{four[:3]}0" if four else ""


def description_html(text: str) -> str:
    """The description as the HTML V&R shows: kept as is when it already is HTML, else paragraphs."""
    text = (text or "").strip()
    if not text or _TAG.search(text):
        return text
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join("<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs)


def youtube_link(url: str) -> str:
    """V&R embeds YouTube only: other video links are left out rather than refused."""
    url = (url or "").strip()
    return url if _YOUTUBE.match(url) else ""


def price_text(price: Decimal) -> str:
    return f"{price:.2f}"


MODEL_NAME_MAX = 200


def _model_name_wanted(payload: ListingPayload) -> str:
    """V&R shows the brand (its own field), then the model name. The SEO title names the item
    best; a leading brand is left out of it, since V&R puts the brand in front by itself."""
    seo_title = squash(payload.seo_title)
    brand = squash(payload.brand)
    if seo_title:
        if brand and seo_title.casefold().startswith(brand.casefold() + " "):
            seo_title = seo_title[len(brand) + 1 :]
        return seo_title
    return squash(payload.model) or squash(payload.title)


def model_name(payload: ListingPayload) -> str:
    """V&R has no title: brand + model name the item. The SEO title (without the brand) when the
    item has one, else the model; without a model, the title stands in. At most 200 characters."""
    return cut_at_word(_model_name_wanted(payload), MODEL_NAME_MAX)[0]


def seo_fields(payload: ListingPayload) -> tuple[SeoField, ...]:
    """The model name is V&R's only name for an item: the SEO title feeds it; V&R has no meta
    description or keywords."""
    wanted = _model_name_wanted(payload)
    sent, cut = cut_at_word(wanted, MODEL_NAME_MAX)
    return (
        SeoField(
            FIELD_MODEL,
            "Model name",
            "SEO title without the brand, else model, else title",
            wanted,
            sent,
            MODEL_NAME_MAX,
            cut,
            note=f"shown after the brand: {squash(payload.brand)} {sent}".strip() if payload.brand.strip() else "",
        ),
        not_sent(
            "seo_description",
            "SEO description",
            "SEO description",
            squash(payload.seo_description),
            "V&R has no meta description; the item page shows the description",
        ),
        not_sent("keywords", "Keywords", "SEO keywords", squash(payload.seo_keywords), "V&R has no keywords field"),
    )


def category_fields(levels: Sequence[str]) -> dict[str, str]:
    """categ_level_0..3 from the mapped V&R category ids (unused levels blank)."""
    padded = [*list(levels)[: len(CATEGORY_FIELDS)], *[""] * len(CATEGORY_FIELDS)]
    return dict(zip(CATEGORY_FIELDS, padded, strict=False))


def item_form(
    payload: ListingPayload,
    *,
    brand: str,
    category_levels: Sequence[str],
    processing_time: int,
    processing_unit: str,
    available_for_shipment: bool,
) -> dict[str, str]:
    """Every field of the add-item form we fill, by V&R's names (photos go separately as files)."""
    return {
        FIELD_BRAND: brand,
        FIELD_MODEL: model_name(payload),
        FIELD_YEAR: year_of(payload.year),
        FIELD_DECADE: decade_of(payload.year),
        FIELD_FINISH: payload.finish[:100],
        FIELD_DESCRIPTION: description_html(payload.description),
        FIELD_PRICE: price_text(payload.price),
        FIELD_EXTERNAL_ID: payload.sku,
        FIELD_PROCESSING_TIME: str(processing_time),
        FIELD_PROCESSING_UNIT: processing_unit,
        FIELD_SHIPMENT: "1" if available_for_shipment else "",
        FIELD_YOUTUBE: youtube_link(payload.video_url),
        **category_fields(category_levels),
    }


def revise_form(
    payload: ListingPayload, fields: Iterable[str], *, brand: str, category_levels: Sequence[str]
) -> dict[str, str]:
    """Only the form fields that the changed contract fields touch, with their new values.

    The edit form is posted back whole: every other field keeps what V&R has. Quantity has no
    field (V&R items are one of a kind; the engine ends a listing with nothing to sell) and
    the SEO description and keywords have none either (the SEO title names the item: model name).
    """
    fields = set(fields)
    changed: dict[str, str] = {}
    if "brand" in fields:
        changed[FIELD_BRAND] = brand
    seo_named = bool(squash(payload.seo_title))
    if (
        "seo_title" in fields
        or ("brand" in fields and seo_named)
        or (not seo_named and ("model" in fields or ("title" in fields and not payload.model.strip())))
    ):
        changed[FIELD_MODEL] = model_name(payload)
    if "year" in fields:
        changed[FIELD_YEAR] = year_of(payload.year)
        changed[FIELD_DECADE] = decade_of(payload.year)
    if "finish" in fields:
        changed[FIELD_FINISH] = payload.finish[:100]
    if "description" in fields:
        changed[FIELD_DESCRIPTION] = description_html(payload.description)
    if "price" in fields:
        changed[FIELD_PRICE] = price_text(payload.price)
    if "sku" in fields:
        changed[FIELD_EXTERNAL_ID] = payload.sku
    if "video_url" in fields:
        changed[FIELD_YOUTUBE] = youtube_link(payload.video_url)
    if "category" in fields and category_levels:
        changed.update(category_fields(category_levels))
    return changed


# --- the export -> the contract ----------------------------------------------------------


class ExportLayoutChanged(ValueError):
    """The export lacks a column the sync relies on."""

    def __init__(self, missing: Sequence[str]):
        super().__init__(", ".join(missing))
        self.missing = tuple(missing)


def parse_export(text: str) -> list[dict[str, str]]:
    """The export's rows as dicts keyed by V&R's column names (lower case), blank rows left out.

    Columns are read by name, not position: V&R's own files have shipped them in more than
    one order.
    """
    text = text.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ExportLayoutChanged(missing)
    rows = []
    for raw in reader:
        row = {
            (key or "").strip().lower(): (value or "").strip()
            for key, value in raw.items()
            if key is not None and not isinstance(value, list)
        }
        if row.get("product id"):
            rows.append(row)
    return rows


def is_sold(row: Mapping[str, str]) -> bool:
    return row.get("product sold", "").strip().lower() in ("yes", "1", "true", "y")


def row_price(row: Mapping[str, str]) -> Decimal | None:
    raw = row.get("product price", "").replace(",", "").strip()
    if not raw:
        return None
    try:
        return Decimal(raw).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def row_photos(row: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(url.strip() for url in row.get("image url", "").split("|") if url.strip())


def listing_seen(row: Mapping[str, str], *, currency: str = "") -> ListingSeen:
    """An export row as the contract's ListingSeen.

    V&R has no title: `title` stays blank so the read-back audit does not see drift in a
    field V&R does not have (brand and model carry the name). Items are one of a kind, so
    the quantity is not reported either.
    """
    return ListingSeen(
        external_id=row["product id"],
        sku=row.get("external id", ""),
        state="sold" if is_sold(row) else "live",
        quantity=None,
        title="",
        description=row.get("product description", ""),
        price=row_price(row),
        currency=currency,
        brand=row.get("brand name", ""),
        model=row.get("product model name", ""),
        year=row.get("product year", ""),
        finish=row.get("product finish", ""),
        photos=row_photos(row),
        url="",
    )


def sale_seen(row: Mapping[str, str], *, seen_at: datetime, currency: str) -> OrderSeen:
    """An item V&R shows sold, as an order. V&R tells neither buyer nor time: the time is when
    this system first saw the item sold; buyer and shipping are settled on V&R by the dealer."""
    price = row_price(row)
    name = " ".join(part for part in (row.get("brand name", ""), row.get("product model name", "")) if part)
    return OrderSeen(
        external_id=f"vr-{row['product id']}",
        status="paid",
        placed_at=seen_at,
        updated_at=seen_at,
        lines=(
            OrderLineSeen(
                sku=row.get("external id", ""),
                external_listing_id=row["product id"],
                quantity=1,
                unit_price=price,
                title=name[:200],
            ),
        ),
        currency=currency,
        subtotal=price,
        total=price,
    )


def export_csv(rows: Iterable[Mapping[str, object]], columns: Sequence[str] = EXPORT_COLUMNS) -> str:
    """Rows written as V&R writes its export (used by the sandbox)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue()
