"""Packing slips, storage labels and pick lists: what the PDFs say, their size, and their codes.

The PDFs are read back with pypdf (text, page size, page count); barcodes and QR codes are
checked by rendering the page with pdftoppm and decoding the picture with zxing-cpp.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import zxingcpp
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from PIL import Image
from pypdf import PdfReader

from documents import services
from documents.barcodes import BarcodeValueError, code128, code128_modules, qr_code
from documents.errors import (
    MissingShippingAddress,
    MissingStorageLocation,
    MixedAccounts,
    NothingSelected,
    OrderNotPrintable,
    SiteUrlMissing,
    TooManyForOneDocument,
)
from documents.models import DocumentSettings
from documents.selectors import location_sort_key, pick_list_build
from documents.services import document_settings_for, labels_pdf, money, packing_slips_pdf, pick_list_pdf
from inventory.models import Item, Order
from inventory.services import Actor, LineSpec, order_cancel, order_create
from tests.factories import make_item

MM = 72 / 25.4  # PDF points per millimetre
SITE = "https://backoffice.bluenote.example"
PDFTOPPM = shutil.which("pdftoppm")
needs_pdftoppm = pytest.mark.skipif(not PDFTOPPM, reason="needs pdftoppm: apt-get install poppler-utils")


# --- Reading PDFs back -------------------------------------------------------------------


def pdf_pages(content: bytes) -> list[str]:
    """The text of each page."""
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def pdf_text(content: bytes) -> str:
    return "\n".join(pdf_pages(content))


def flat(text: str) -> str:
    """Text with line breaks and runs of spaces folded, to find phrases that wrap
    (a line broken after a hyphen is joined back without a space)."""
    return " ".join(re.sub(r"-[ \t]*\n", "-", text).split())


def page_sizes_mm(content: bytes) -> list[tuple[float, float]]:
    return [
        (round(float(page.mediabox.width) / MM, 1), round(float(page.mediabox.height) / MM, 1))
        for page in PdfReader(io.BytesIO(content)).pages
    ]


def decoded_codes(content: bytes, page: int = 1, dpi: int = 300) -> list[tuple[str, str]]:
    """(format, text) of every barcode and QR code on a page, as a scanner would read them."""
    with tempfile.TemporaryDirectory() as folder:
        pdf_path = Path(folder) / "doc.pdf"
        pdf_path.write_bytes(content)
        subprocess.run(
            [
                PDFTOPPM,
                "-r",
                str(dpi),
                "-f",
                str(page),
                "-l",
                str(page),
                "-png",
                "-singlefile",
                pdf_path,
                f"{folder}/p",
            ],
            check=True,
            timeout=60,
        )
        image = Image.open(f"{folder}/p.png")
        image.load()
    return sorted((str(code.format), code.text) for code in zxingcpp.read_barcodes(image))


# --- Test data ---------------------------------------------------------------------------

ACTOR = Actor(source="test")


def make_order(account, items, *, number="12-34567-89012", channel="ebay", quantities=None, **details):
    """An order for `items`, recorded the way a channel records one (stock is reserved)."""
    address = {
        "buyer_name": "Jürgen Weiß",
        "buyer_email": "juergen@example.de",
        "ship_name": "Jürgen Weiß",
        "ship_line1": "Kärntner Straße 5",
        "ship_city": "München",
        "ship_postal_code": "80331",
        "ship_country": "DE",
        "currency": "EUR",
        "subtotal": Decimal("1234.50"),
        "shipping": Decimal("45.00"),
        "tax": Decimal("0.00"),
        "total": Decimal("1279.50"),
    }
    address.update(details)
    quantities = quantities or [1] * len(items)
    order, _created = order_create(
        account=account,
        actor=ACTOR,
        channel=channel,
        external_id=number,
        placed_at=datetime(2026, 11, 20, 14, 30, tzinfo=UTC),
        lines=[LineSpec(item_id=item.pk, quantity=n) for item, n in zip(items, quantities, strict=True)],
        details=address,
    )
    return order


@pytest.fixture
def shop(account):
    document_settings = document_settings_for(account)
    document_settings.shop_name = "Blue Note Gitarren"
    document_settings.address = "Müllerstraße 12\n80469 München\nDeutschland"
    document_settings.contact = "hallo@bluenote.example"
    document_settings.site_url = SITE
    document_settings.packing_slip_message = "Rückgabe innerhalb von 14 Tagen. Danke für Ihren Einkauf!"
    document_settings.save()
    return document_settings


@pytest.fixture
def strat(account):
    return make_item(
        account,
        n=1,
        sku="GTR-0001",
        title="Fender Stratocaster 1964 Sunburst „Pre-CBS“",
        brand="Fender",
        model="Stratocaster",
        serial_number="L12345",
        storage_location="A-10",
        condition="very_good",
    )


@pytest.fixture
def amp(account):
    return make_item(
        account,
        n=2,
        sku="AMP-0007",
        title="Vox AC30 Top Boost (Röhren neu)",
        brand="Vox",
        model="AC30",
        storage_location="A-2",
    )


# --- Storage labels ----------------------------------------------------------------------


@needs_pdftoppm
def test_a_label_shows_location_title_and_sku_and_its_codes_scan_back(shop, strat):
    pdf = labels_pdf([strat])

    assert pdf.pages == 1 and pdf.count == 1
    assert page_sizes_mm(pdf.content) == [(62.0, 29.0)]
    text = flat(pdf_text(pdf.content))
    assert "A-10" in text and "GTR-0001" in text
    assert "Fender Stratocaster 1964 Sunburst „Pre-CBS“" in text
    assert pdf.filename == "label-gtr-0001.pdf"
    assert decoded_codes(pdf.content) == [
        ("Code 128", "GTR-0001"),
        ("QR Code", f"{SITE}/admin/inventory/item/{strat.pk}/change/"),
    ]


@needs_pdftoppm
def test_many_labels_are_one_pdf_one_label_per_page_in_the_order_given(shop, account, strat, amp):
    third = make_item(account, n=3, sku="PED-000123456", storage_location="Keller Regal 17 Fach 3")

    pdf = labels_pdf([amp, third, strat])

    pages = pdf_pages(pdf.content)
    assert len(pages) == 3 and pdf.filename.startswith("labels-") and pdf.filename.endswith(".pdf")
    assert ["AMP-0007" in pages[0], "PED-000123456" in pages[1], "GTR-0001" in pages[2]] == [True, True, True]
    assert "Keller Regal 17 Fach 3" in flat(pages[1])
    # A long numeric SKU switches to Code 128's compact digit set and still reads back exactly.
    assert ("Code 128", "PED-000123456") in decoded_codes(pdf.content, page=2)


@needs_pdftoppm
def test_four_by_six_labels_are_4x6_inches(shop, strat):
    pdf = labels_pdf([strat], label_format="4x6in")

    assert page_sizes_mm(pdf.content) == [(101.6, 152.4)]
    assert "GTR-0001" in pdf_text(pdf.content)
    assert ("Code 128", "GTR-0001") in decoded_codes(pdf.content, dpi=200)


def test_the_a4_sheet_holds_24_labels_a_page(shop, account):
    items = [make_item(account, n=n, sku=f"SHEET-{n:03d}") for n in range(30)]

    pdf = labels_pdf(items, label_format="a4-sheet")

    assert pdf.pages == 2 and pdf.count == 30
    assert page_sizes_mm(pdf.content) == [(210.0, 297.0)] * 2
    first, second = pdf_pages(pdf.content)
    assert all(f"SHEET-{n:03d}" in first for n in range(24))
    assert all(f"SHEET-{n:03d}" in second for n in range(24, 30))
    assert "SHEET-024" not in first


def test_the_label_format_comes_from_the_account_settings(shop, strat):
    shop.label_format = "a4-sheet"
    shop.save()

    assert page_sizes_mm(labels_pdf([strat]).content) == [(210.0, 297.0)]


def test_an_item_without_a_storage_location_is_refused_by_name(shop, account, strat):
    lost = make_item(account, n=5, sku="LOST-1", storage_location="  ")

    with pytest.raises(MissingStorageLocation) as refusal:
        labels_pdf([strat, lost])

    assert "LOST-1" in refusal.value.message and "GTR-0001" not in refusal.value.message
    assert "storage location" in refusal.value.message and "print again" in refusal.value.message
    assert refusal.value.details == {"skus": ["LOST-1"]}


def test_more_labels_than_one_document_holds_are_refused_before_rendering(shop, account, monkeypatch):
    monkeypatch.setattr(services, "MAX_LABELS", 3)
    for n in range(4):
        make_item(account, n=n)
    monkeypatch.setattr(services, "_render", lambda *a: pytest.fail("rendered although over the limit"))

    with pytest.raises(TooManyForOneDocument) as refusal:
        labels_pdf(Item.objects.filter(account=account))

    assert "You selected 4" in refusal.value.message and "batches of 3" in refusal.value.message
    assert refusal.value.details == {"maximum": 3, "selected": 4}


def test_no_items_is_a_clear_refusal(shop):
    with pytest.raises(NothingSelected, match="at least one item"):
        labels_pdf([])


def test_the_qr_link_needs_a_public_address(account, strat, settings):
    settings.SITE_URL = ""

    with pytest.raises(SiteUrlMissing, match="public address"):
        labels_pdf([strat])
    # The address of the request the admin or API prints from is the last resort.
    assert labels_pdf([strat], fallback_site_url="https://shop.example.org/").pages == 1


def test_items_of_two_accounts_never_share_a_document(shop, strat, other_account):
    theirs = make_item(other_account, n=9, sku="THEIRS-1")

    with pytest.raises(MixedAccounts, match="one shop"):
        labels_pdf([strat, theirs])


def test_code128_encodes_exactly_the_sku():
    drawn = code128("GTR-0001")

    # Start B, "GTR-", switch to the digit-pair set C, "00" "01", check symbol (11 modules
    # each) and the 13-module stop: the generator chose the compact encoding for the digits.
    assert len(code128_modules("GTR-0001")) == 11 * 9 + 13
    assert drawn.width_modules == 11 * 9 + 13 + 2 * 10
    image = Image.open(io.BytesIO(base64.b64decode(drawn.data_uri.split(",", 1)[1])))
    # One pixel per module: stretch it the way the label does and let a scanner read it.
    scanned = image.convert("L").resize((image.width * 4, 120), Image.NEAREST)
    assert [code.text for code in zxingcpp.read_barcodes(scanned)] == ["GTR-0001"]


def test_a_value_code128_cannot_carry_is_refused():
    with pytest.raises(BarcodeValueError, match="not a printable ASCII"):
        code128("GITARRE-Ä1")
    assert qr_code("Ä € ü").value == "Ä € ü"


# --- Packing slips -----------------------------------------------------------------------


@needs_pdftoppm
def test_a_packing_slip_has_letterhead_order_ship_to_lines_totals_note_and_qr(shop, account, strat, amp):
    order = make_order(account, [strat, amp], quantities=[1, 1], note="Bitte gut polstern – Geschenk!")  # noqa: RUF001

    pdf = packing_slips_pdf([order])

    assert pdf.pages == 1 and pdf.filename == "packing-slip-ebay-12-34567-89012.pdf"
    assert page_sizes_mm(pdf.content) == [(210.0, 297.0)]
    text = flat(pdf_text(pdf.content))
    for expected in [
        "Blue Note Gitarren",
        "Müllerstraße 12",
        "80469 München",
        "hallo@bluenote.example",
        "eBay #12-34567-89012",
        "20 November 2026",
        "Jürgen Weiß",
        "Kärntner Straße 5",
        "80331 München",
        "GTR-0001",
        "Fender Stratocaster 1964 Sunburst „Pre-CBS“",
        "Fender Stratocaster",
        "L12345",
        "Very Good",
        "A-10",
        "AMP-0007",
        "Vox AC30 Top Boost (Röhren neu)",
        "Vox AC30",
        "€1,234.50",
        "€45.00",
        "€1,279.50",
        "as reported by eBay",
        "Bitte gut polstern – Geschenk!",  # noqa: RUF001
        "Rückgabe innerhalb von 14 Tagen. Danke für Ihren Einkauf!",
    ]:
        assert expected in text, expected
    assert ("QR Code", "12-34567-89012") in decoded_codes(pdf.content)


def test_packing_slips_follow_the_paper_size_setting(shop, account, strat):
    order = make_order(account, [strat])
    shop.paper_size = "letter"
    shop.save()

    assert page_sizes_mm(packing_slips_pdf([order]).content) == [(215.9, 279.4)]


def test_each_order_starts_its_own_slip(shop, account, strat, amp):
    first = make_order(account, [strat], number="A-1")
    second = make_order(
        account,
        [amp],
        number="B-2",
        channel="reverb",
        ship_country="US",
        ship_region="NY",
        ship_city="Brooklyn",
        ship_postal_code="11201",
        currency="USD",
        total=Decimal("99.00"),
    )

    pdf = packing_slips_pdf(Order.objects.filter(account=account).order_by("external_id"))

    first_page, second_page = pdf_pages(pdf.content)
    assert "eBay #A-1" in first_page and "GTR-0001" in first_page and "AMP-0007" not in first_page
    assert "Reverb #B-2" in second_page and "AMP-0007" in second_page and "Brooklyn, NY 11201" in flat(second_page)
    assert "$99.00" in second_page
    assert pdf.filename.startswith("packing-slips-") and pdf.count == 2
    assert first.pk != second.pk


def test_a_long_order_runs_onto_more_pages_with_its_reference_in_the_footer(shop, account):
    items = Item.objects.bulk_create(
        Item(
            account=account,
            sku=f"PART-{n:03d}",
            title=f"Ersatzteil {n}",
            price=Decimal("5"),
            state="active",
            quantity_on_hand=5,
            storage_location=f"P-{n:02d}",
        )
        for n in range(45)
    )
    order = make_order(account, items, number="BIG-1")

    pdf = packing_slips_pdf([order])

    pages = pdf_pages(pdf.content)
    assert len(pages) >= 2
    assert all("eBay #BIG-1" in page for page in pages)
    assert all(f"PART-{n:03d}" in pdf_text(pdf.content) for n in range(45))


def test_an_order_without_a_shipping_address_is_refused_by_reference(shop, account, strat, amp):
    fine = make_order(account, [strat], number="OK-1")
    pickup = make_order(account, [amp], number="PICKUP-1", ship_line1="", ship_city="")

    with pytest.raises(MissingShippingAddress) as refusal:
        packing_slips_pdf([fine, pickup])

    assert "eBay #PICKUP-1" in refusal.value.message and "OK-1" not in refusal.value.message
    assert "Add it on the order's page" in refusal.value.message


def test_a_cancelled_order_gets_no_slip_and_no_pick_list(shop, account, strat):
    order = make_order(account, [strat])
    order_cancel(order_id=order.pk, actor=ACTOR)
    order.refresh_from_db()

    with pytest.raises(OrderNotPrintable, match="cancelled"):
        packing_slips_pdf([order])
    with pytest.raises(OrderNotPrintable, match="nothing to pick"):
        pick_list_pdf(orders=[order])


def test_the_logo_is_embedded_and_a_lost_logo_file_does_not_stop_printing(shop, account, strat, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    buffer = io.BytesIO()
    Image.new("RGB", (300, 100), "#1b4f9c").save(buffer, format="PNG")
    shop.logo = SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png")
    shop.save()
    order = make_order(account, [strat])

    with_logo = PdfReader(io.BytesIO(packing_slips_pdf([order]).content))
    widths = [obj.get_object()["/Width"] for obj in with_logo.pages[0]["/Resources"]["/XObject"].values()]
    assert 300 in widths

    Path(shop.logo.path).unlink()
    assert "Blue Note Gitarren" in pdf_text(packing_slips_pdf([order]).content)


def test_money_is_written_with_the_currency_sign():
    assert money(Decimal("1234.5"), "EUR") == "€1,234.50"
    assert money(Decimal("-3"), "USD") == "-$3.00"
    assert money(Decimal("99"), "chf") == "99.00 CHF"


# --- Pick lists --------------------------------------------------------------------------


def test_locations_sort_the_way_people_read_shelf_names():
    shelves = ["A-10", "b-1", "A-2", "", "A-2-3", "Keller 1"]

    assert sorted(shelves, key=location_sort_key) == ["A-2", "A-2-3", "A-10", "b-1", "Keller 1", ""]


def test_the_pick_list_walks_shelves_in_order_and_adds_up_one_item_wanted_twice(shop, account, strat, amp):
    cables = make_item(account, n=3, sku="CAB-3M", title="Patch cable 3 m", storage_location="B-1", quantity=10)
    unshelved = make_item(account, n=4, sku="NEW-1", title="Neuzugang", storage_location="")
    first = make_order(account, [strat, cables], quantities=[1, 2], number="111")
    second = make_order(account, [cables, amp], quantities=[3, 1], number="222", channel="reverb")

    pick_list = pick_list_build(orders=[first, second], items=[unshelved])

    assert [group.location for group in pick_list.groups] == ["A-2", "A-10", "B-1", ""]
    cable_line = pick_list.groups[2].lines[0]
    assert (cable_line.sku, cable_line.quantity, cable_line.order_refs) == (
        "CAB-3M",
        5,
        ["eBay #111 (x2)", "Reverb #222 (x3)"],
    )
    assert (pick_list.line_count, pick_list.unit_count, pick_list.location_count) == (4, 8, 3)
    assert pick_list.unlocated.lines[0].sku == "NEW-1" and pick_list.loose_items == 1


def test_the_pick_list_pdf_lists_every_line_under_its_shelf_with_a_summary(shop, account, strat, amp):
    cables = make_item(account, n=3, sku="CAB-3M", title="Patch cable 3 m", storage_location="B-1", quantity=10)
    unshelved = make_item(account, n=4, sku="NEW-1", title="Neuzugang ohne Fach", storage_location="")
    orders = [
        make_order(account, [strat, cables], quantities=[1, 2], number="111"),
        make_order(account, [cables, amp], quantities=[3, 1], number="222", channel="reverb"),
    ]

    pdf = pick_list_pdf(orders=orders, items=[unshelved])

    assert pdf.pages == 1 and pdf.count == 4 and pdf.filename.startswith("pick-list-")
    assert page_sizes_mm(pdf.content) == [(210.0, 297.0)]
    text = flat(pdf_text(pdf.content))
    # Walking order, B-1, then what has no shelf.
    positions = [text.index(marker) for marker in ["AMP-0007", "GTR-0001", "CAB-3M", "NEW-1"]]
    assert positions == sorted(positions)
    assert text.index("A-2 ") < text.index("A-10 ") < text.index("B-1 ") < text.index("No location: search")
    for expected in [
        "4 lines",
        "8 units",
        "3 locations",
        "2 orders",
        "eBay #111",
        "Reverb #222 (x3)",
        "Vox AC30 Top Boost (Röhren neu)",
        "Neuzugang ohne Fach",
        "Page 1 of 1",
    ]:
        assert expected in text, expected


def test_a_pick_list_of_a_thousand_items_is_complete(shop, account):
    Item.objects.bulk_create(
        Item(
            account=account,
            sku=f"BULK-{n:04d}",
            title=f"Teil {n}",
            price=Decimal("1"),
            state="active",
            storage_location=f"R-{n % 40:02d}",
        )
        for n in range(1000)
    )

    pdf = pick_list_pdf(items=Item.objects.filter(account=account))

    text = pdf_text(pdf.content)
    assert pdf.count == 1000 and pdf.pages > 10
    assert all(f"BULK-{n:04d}" in text for n in range(1000))
    assert f"Page {pdf.pages} of {pdf.pages}" in text


def test_settings_are_made_once_per_account_on_first_use(account, other_account):
    first = document_settings_for(account)

    assert document_settings_for(account).pk == first.pk
    assert document_settings_for(other_account).pk != first.pk
    assert DocumentSettings.objects.count() == 2
    assert first.printed_shop_name == "Blue Note Guitars"


@override_settings(SITE_URL="http://127.0.0.1:8000")
def test_the_server_site_url_is_used_when_the_account_sets_none(account, strat):
    pdf = labels_pdf([strat])

    assert pdf.pages == 1
    assert document_settings_for(account).site_url == ""
