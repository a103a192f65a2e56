"""Packing slips, storage labels and pick lists as PDFs, made with WeasyPrint from templates.

Each `*_pdf` function takes the items or orders to print (a list or a queryset, already
scoped to the user's account by the caller), checks them, and returns a `Pdf`. They
refuse with a `DocumentError` that says what to fix: nothing selected, more than a
document may hold, an order without a shipping address, an item without a storage
location, a cancelled order. Nothing is silently dropped or truncated.

The only write here is creating an account's `DocumentSettings` on first use.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.db.models import Model, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator, slugify
from weasyprint import HTML, URLFetcher

from accounts.models import Account
from billing.gates import Feature, require
from billing.services.usage import usage_record
from inventory.models import Item, Order

from .barcodes import BarcodeValueError, Code, code128, qr_code
from .errors import (
    DocumentError,
    MissingShippingAddress,
    MissingStorageLocation,
    MixedAccounts,
    NothingSelected,
    SiteUrlMissing,
    TooManyForOneDocument,
)
from .models import LOGO_MAX_BYTES, DocumentSettings, LabelFormat, PaperSize
from .selectors import cancelled_refusal, channel_name, order_reference, pick_list_build, with_lines

logger = logging.getLogger(__name__)

# Most a single document holds. Each costs at most about 8 s of CPU (bench/README.md), so a
# request stays inside the web server's 30 s timeout even on a busy 2-core machine; a
# refusal says how to split. A pick list of a thousand items is one document.
MAX_LABELS = 300
MAX_PACKING_SLIPS = 60
MAX_PICK_LIST_ORDERS = 500
MAX_PICK_LIST_LINES = 1000

# How many problem rows an error message names before it says "and N more".
NAMED_IN_ERRORS = 20

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Pdf:
    """A printed document: the PDF bytes, a file name for downloads, and what is in it."""

    content: bytes
    filename: str
    pages: int
    count: int

    content_type = "application/pdf"


def _allowed(account: Account) -> None:
    """PDF documents are a plan feature (billing.gates); raises FeatureNotInPlan (402) without it."""
    require(account, Feature.PDF_DOCUMENTS)


def _counted(account_id: int, pdf: Pdf) -> Pdf:
    usage_record(account_id, "pdfs_generated")
    return pdf


def document_settings_for(account: Account) -> DocumentSettings:
    """The account's document settings, created with defaults the first time it prints."""
    document_settings, _created = DocumentSettings.objects.get_or_create(account=account)
    return document_settings


# --- Storage labels ----------------------------------------------------------------------

LABELS_PER_A4_SHEET = (3, 8)  # columns, rows of 70 x 37 mm
# Longest storage-location text per size step of the big location type (see labels.html).
_LOCATION_SIZES = ((7, "xl"), (10, "l"), (13, "m"), (17, "s"))
_TITLE_CHARS = {LabelFormat.SMALL: 64, LabelFormat.A4_SHEET: 64, LabelFormat.LARGE: 160}
_LOCATION_CHARS = 40


@dataclass(frozen=True)
class LabelView:
    sku: str
    title: str
    location: str
    location_size: str
    barcode: Code
    qr: Code
    left_mm: float = 0
    top_mm: float = 0


def labels_pdf(
    items: Iterable[Item] | QuerySet[Item],
    *,
    document_settings: DocumentSettings | None = None,
    label_format: str = "",
    fallback_site_url: str = "",
) -> Pdf:
    """Storage labels, one per item, in the order given.

    Each label has the storage location in large type, the short title, the SKU as a
    Code 128 barcode and as text, and a QR code that opens the item's admin page.
    `label_format` overrides the account's setting; `fallback_site_url` (the address of
    the current request) is used for the QR links when neither the account's settings
    nor SITE_URL name the public address.
    """
    items = _selection(items, maximum=MAX_LABELS, noun="labels", split="Select fewer items, e.g. one shelf at a time")
    if not items:
        raise NothingSelected("Select at least one item to print labels for.")
    document_settings = document_settings or document_settings_for(_account_of(items, "items"))
    _allowed(document_settings.account)
    label_format = label_format or document_settings.label_format
    if label_format not in LabelFormat.values:
        raise DocumentError(
            f"Unknown label format {label_format!r}; use one of {', '.join(LabelFormat.values)}.",
            field="label_format",
        )
    unlocated = [item.sku for item in items if not item.storage_location.strip()]
    if unlocated:
        raise MissingStorageLocation(
            f"{_count(len(unlocated), 'item')} {_has(unlocated)} no storage location: {_names(unlocated)}. "
            "Set the shelf or bin on each item (it is the big text on the label), then print again.",
            skus=unlocated,
        )
    site_url = site_url_for(document_settings, fallback=fallback_site_url)
    views = [_label_view(item, label_format, site_url) for item in items]
    if label_format == LabelFormat.A4_SHEET:
        columns, rows = LABELS_PER_A4_SHEET
        pages = [views[i : i + columns * rows] for i in range(0, len(views), columns * rows)]
        pages = [[_placed(view, n % columns, n // columns) for n, view in enumerate(page)] for page in pages]
    else:
        pages = [[view] for view in views]
    content, page_count = _render(
        "documents/labels.html",
        {"pages": pages, "format": label_format, "format_class": _format_class(label_format), "count": len(views)},
    )
    filename = f"label-{_file_part(items[0].sku)}.pdf" if len(items) == 1 else _dated("labels")
    return _counted(
        document_settings.account_id, Pdf(content=content, filename=filename, pages=page_count, count=len(views))
    )


def _label_view(item: Item, label_format: str, site_url: str) -> LabelView:
    location = item.storage_location.strip()
    try:
        barcode = code128(item.sku)
    except BarcodeValueError as error:
        raise DocumentError(f"{error} Change the item's SKU to letters, digits, dots or dashes.") from error
    return LabelView(
        sku=item.sku,
        title=Truncator(item.title).chars(_TITLE_CHARS[label_format]),
        location=Truncator(location).chars(_LOCATION_CHARS),
        location_size=next((size for longest, size in _LOCATION_SIZES if len(location) <= longest), "xs"),
        barcode=barcode,
        qr=qr_code(site_url + reverse("admin:inventory_item_change", args=[item.pk])),
    )


def _placed(view: LabelView, column: int, row: int) -> LabelView:
    return LabelView(**{**view.__dict__, "left_mm": column * 70, "top_mm": 0.5 + row * 37})


def _format_class(label_format: str) -> str:
    return {LabelFormat.SMALL: "small", LabelFormat.LARGE: "large", LabelFormat.A4_SHEET: "sheet"}[label_format]


def site_url_for(document_settings: DocumentSettings, *, fallback: str = "") -> str:
    """The public address QR links point at: the account's setting, else SITE_URL, else `fallback`."""
    url = (document_settings.site_url or settings.SITE_URL or fallback).rstrip("/")
    if not url:
        raise SiteUrlMissing(
            "The QR code on a label links to the item's page, but the public address of this back office "
            "is not set. Set it under Documents > Document settings (or SITE_URL on the server), then print again."
        )
    return url


# --- Packing slips -----------------------------------------------------------------------


@dataclass(frozen=True)
class SlipLine:
    quantity: int
    sku: str
    title: str
    brand_model: str
    serial_number: str
    condition: str
    location: str


@dataclass(frozen=True)
class SlipView:
    reference: str
    channel: str
    number: str
    placed_at: datetime
    buyer_name: str
    buyer_email: str
    ship_to: list[str]
    lines: list[SlipLine]
    units: int
    totals: list[tuple[str, str]]
    total: str
    note: str
    qr: Code


def packing_slips_pdf(
    orders: Iterable[Order] | QuerySet[Order], *, document_settings: DocumentSettings | None = None
) -> Pdf:
    """Packing slips, one or more pages per order, in the order given.

    Each slip has the shop's letterhead, the order number, channel and date, the ship-to
    address, every line (SKU, title, brand and model, serial number, condition, storage
    location, quantity), the totals as the channel reported them, the order's note (or
    room to write one) and a QR code of the order number.
    """
    orders = _selection(
        orders,
        maximum=MAX_PACKING_SLIPS,
        noun="packing slips",
        split="Select fewer orders, e.g. filter by date or channel",
        prepare=with_lines,
    )
    if not orders:
        raise NothingSelected("Select at least one order to print packing slips for.")
    document_settings = document_settings or document_settings_for(_account_of(orders, "orders"))
    _allowed(document_settings.account)
    refusal = cancelled_refusal(orders, "pack")
    if refusal:
        raise refusal
    no_address = [order_reference(order) for order in orders if not order.has_shipping_address]
    if no_address:
        raise MissingShippingAddress(
            f"{_names(no_address)} {_has(no_address)} no shipping address (a slip needs the name, street, city "
            "and country). Add it on the order's page, or leave the order out, then print again.",
            orders=no_address,
        )
    slips = [_slip_view(order) for order in orders]
    content, page_count = _render(
        "documents/packing_slips.html",
        {
            "slips": slips,
            "shop": _letterhead(document_settings),
            "page_size": _page_size(document_settings),
            "message": document_settings.packing_slip_message,
        },
    )
    if len(orders) == 1:
        filename = f"packing-slip-{_file_part(orders[0].channel)}-{_file_part(orders[0].external_id)}.pdf"
    else:
        filename = _dated("packing-slips")
    return _counted(
        document_settings.account_id, Pdf(content=content, filename=filename, pages=page_count, count=len(slips))
    )


def _slip_view(order: Order) -> SlipView:
    lines = [
        SlipLine(
            quantity=line.quantity,
            sku=line.sku,
            title=line.title,
            brand_model=" ".join(part for part in (line.item.brand, line.item.model) if part),
            serial_number=line.item.serial_number,
            condition=line.item.get_condition_display(),
            location=line.item.storage_location.strip(),
        )
        for line in order.lines.all()
    ]
    currency = order.currency
    totals = [
        ("Subtotal", money(order.subtotal, currency)),
        ("Shipping", money(order.shipping, currency)),
        ("Tax", money(order.tax, currency)),
    ]
    return SlipView(
        reference=order_reference(order),
        channel=channel_name(order.channel),
        number=order.external_id,
        placed_at=timezone.localtime(order.placed_at),
        buyer_name=order.buyer_name,
        buyer_email=order.buyer_email,
        ship_to=ship_to_lines(order),
        lines=lines,
        units=sum(line.quantity for line in lines),
        totals=totals,
        total=money(order.total, currency),
        note=order.note.strip(),
        qr=qr_code(order.external_id),
    )


# Countries that write "City, Region Postcode" on one line; the rest get "Postcode City".
_CITY_FIRST = {"US", "CA", "AU"}


def ship_to_lines(order: Order) -> list[str]:
    """The ship-to address as printed, one line per row, empty parts left out."""
    country = order.ship_country.upper()
    if country in _CITY_FIRST:
        region_postal = " ".join(part for part in (order.ship_region, order.ship_postal_code) if part)
        locality = [", ".join(part for part in (order.ship_city, region_postal) if part)]
    else:
        locality = [" ".join(part for part in (order.ship_postal_code, order.ship_city) if part), order.ship_region]
    lines = [order.ship_name, order.ship_line1, order.ship_line2, *locality, country]
    return [line.strip() for line in lines if line and line.strip()]


_CURRENCY_SIGNS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


def money(amount: Decimal, currency: str) -> str:
    """An amount as shop staff write it: "€1,234.50", or "1,234.50 CHF" for other currencies."""
    sign = "-" if amount < 0 else ""
    number = f"{abs(amount):,.2f}"
    symbol = _CURRENCY_SIGNS.get(currency.upper())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency.upper()}"


# --- Pick lists --------------------------------------------------------------------------


def pick_list_pdf(
    *,
    orders: Iterable[Order] | QuerySet[Order] = (),
    items: Iterable[Item] | QuerySet[Item] = (),
    document_settings: DocumentSettings | None = None,
) -> Pdf:
    """One pick list for these orders and items, in walking order through the stock room.

    Grouped and sorted by storage location, with a check box, quantity, SKU, title and
    the order references on every line, and a summary of lines, units and shelves.
    """
    split = "Select fewer, e.g. the oldest orders first"
    orders = _selection(orders, maximum=MAX_PICK_LIST_ORDERS, noun="orders", split=split, prepare=with_lines)
    items = _selection(items, maximum=MAX_PICK_LIST_LINES, noun="lines", split=split)
    if not orders and not items:
        raise NothingSelected("Select at least one order or item to make a pick list.")
    document_settings = document_settings or document_settings_for(_account_of([*orders, *items], "orders or items"))
    _allowed(document_settings.account)
    refusal = cancelled_refusal(orders, "pick")
    if refusal:
        raise refusal
    pick_list = pick_list_build(orders=orders, items=items)
    if pick_list.line_count > MAX_PICK_LIST_LINES:
        raise TooManyForOneDocument(
            f"These orders need {pick_list.line_count:,} lines; a pick list holds at most "
            f"{MAX_PICK_LIST_LINES:,}. {split}, and print several lists.",
            maximum=MAX_PICK_LIST_LINES,
            selected=pick_list.line_count,
        )
    content, page_count = _render(
        "documents/pick_list.html",
        {
            "pick_list": pick_list,
            "shop": _letterhead(document_settings, with_logo=False),
            "page_size": _page_size(document_settings),
            "printed_at": timezone.localtime(),
        },
    )
    return _counted(
        document_settings.account_id,
        Pdf(content=content, filename=_dated("pick-list"), pages=page_count, count=pick_list.line_count),
    )


# --- Shared ------------------------------------------------------------------------------


def _selection(
    objects: Iterable[M] | QuerySet[M],
    *,
    maximum: int,
    noun: str,
    split: str,
    prepare: Callable[[QuerySet[M]], QuerySet[M]] | None = None,
) -> list[M]:
    """The objects as a list, refused before loading them when there are more than `maximum`."""
    if isinstance(objects, QuerySet):
        selected = objects.count()
        _check_maximum(selected, maximum, noun, split)
        return list(prepare(objects) if prepare else objects)
    objects = list(objects)
    _check_maximum(len(objects), maximum, noun, split)
    return objects


def _check_maximum(selected: int, maximum: int, noun: str, split: str) -> None:
    if selected > maximum:
        raise TooManyForOneDocument(
            f"You selected {selected:,}; one document holds at most {maximum:,} {noun}. "
            f"{split}, and print in batches of {maximum:,} or fewer.",
            maximum=maximum,
            selected=selected,
        )


def _account_of(objects: Sequence[M], noun: str) -> Account:
    account_ids = {obj.account_id for obj in objects}
    if len(account_ids) > 1:
        raise MixedAccounts(
            f"The selection holds {noun} of {len(account_ids)} seller accounts; each document is for one shop. "
            "Filter by account and print each one's separately."
        )
    return objects[0].account


def _letterhead(document_settings: DocumentSettings, *, with_logo: bool = True) -> dict:
    return {
        "name": document_settings.printed_shop_name,
        "address": document_settings.address_lines,
        "contact": document_settings.contact,
        "logo": _logo_data_uri(document_settings) if with_logo else "",
    }


def _logo_data_uri(document_settings: DocumentSettings) -> str:
    """The logo embedded in the PDF; a missing or unreadable file prints no logo rather than failing."""
    logo = document_settings.logo
    if not logo:
        return ""
    try:
        with logo.open("rb") as file:
            data = file.read(LOGO_MAX_BYTES + 1)
    except OSError as error:
        logger.warning(
            "Logo %s of account %s cannot be read, printing without it: %s",
            logo.name,
            document_settings.account_id,
            error,
        )
        return ""
    if len(data) > LOGO_MAX_BYTES:
        logger.warning(
            "Logo %s of account %s is over 1 MB, printing without it", logo.name, document_settings.account_id
        )
        return ""
    mime = mimetypes.guess_type(logo.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _page_size(document_settings: DocumentSettings) -> str:
    return "letter" if document_settings.paper_size == PaperSize.LETTER else "A4"


def _render(template_name: str, context: dict) -> tuple[bytes, int]:
    """HTML from a template, laid out and written as PDF. Returns the bytes and the page count."""
    html = render_to_string(template_name, context)
    # Only data: URIs are fetched: every image is embedded, and nothing in an order or item
    # (which channels fill in) can make the server fetch a URL or read a local file.
    document = HTML(string=html, url_fetcher=URLFetcher(allowed_protocols={"data"})).render()
    return document.write_pdf(), len(document.pages)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _has(names: Sequence[str]) -> str:
    return "has" if len(names) == 1 else "have"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMED_IN_ERRORS])
    more = len(names) - NAMED_IN_ERRORS
    return f"{shown} and {more:,} more" if more > 0 else shown


def _file_part(text: str) -> str:
    return slugify(text) or "document"


def _dated(stem: str) -> str:
    return f"{stem}-{timezone.localdate():%Y-%m-%d}.pdf"
