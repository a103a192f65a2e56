"""V&R mappers: our item -> the dealer form's fields, the export -> the contract. Pure, no browser.

The dealer site's field and column names are checked against the only description V&R's
pages have (docs/CHANNELS.md section 4): a name that drifts from it fails here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from channels_vr import mappers
from inventory.channels import ListingPayload

CHANNELS_DOC = Path(__file__).resolve().parents[1] / "docs" / "CHANNELS.md"


def vr_section() -> str:
    if not CHANNELS_DOC.exists():
        pytest.fail(f"{CHANNELS_DOC} is missing: it is the V&R contract (section 4); restore it.")
    text = CHANNELS_DOC.read_text()
    start = text.index("## 4. Vintage & Rare")
    return text[start : text.index("\n## 5.", start)]


def payload(**changes) -> ListingPayload:
    values = {
        "sku": "VR-1",
        "title": "1963 Fender Stratocaster",
        "description": "Lovely guitar.\n\nAll original & clean.",
        "price": Decimal("1500"),
        "currency": "GBP",
        "quantity": 1,
        "brand": "Fender",
        "model": "Stratocaster",
        "year": "c. 1963",
        "finish": "Sunburst",
        "category": "Electric Guitars",
        "video_url": "https://www.youtube.com/watch?v=abc",
    }
    values.update(changes)
    return ListingPayload(**values)


def test_the_export_columns_are_the_ones_documented_in_order():
    line = next(line for line in vr_section().splitlines() if "Columns:" in line)
    documented = line.split("Columns:", 1)[1].split(". [TT]")[0].strip().rstrip(".")
    # "product in collective/inventory/reseller" is three columns in V&R's files
    columns = []
    for name in (part.strip() for part in documented.split(",")):
        if name == "product in collective/inventory/reseller":
            columns += ["product in collective", "product in inventory", "product in reseller"]
        else:
            columns.append(name.removesuffix(" (yes/no)"))
    assert list(mappers.EXPORT_COLUMNS) == columns


def test_every_form_field_the_mappers_fill_is_a_documented_field():
    line = next(line for line in vr_section().splitlines() if line.strip().startswith("- Fields:"))
    documented = set(re.findall(r"`([a-z_0-9.]+)`", line))
    documented |= {f"categ_level_{n}" for n in range(4)} | set(mappers.PHOTO_FIELDS)
    form = mappers.item_form(
        payload(),
        brand="Fender",
        category_levels=["51", "83"],
        processing_time=3,
        processing_unit="days",
        available_for_shipment=True,
    )
    assert set(form) <= documented
    assert {mappers.FIELD_BRAND, mappers.FIELD_EXTERNAL_ID, mappers.FIELD_DESCRIPTION} <= documented


def test_the_add_form_carries_every_field_with_vr_formats():
    form = mappers.item_form(
        payload(),
        brand="Fender",
        category_levels=["51", "83"],
        processing_time=3,
        processing_unit="days",
        available_for_shipment=True,
    )
    assert form == {
        "recipient_name": "Fender",
        "model_name": "Stratocaster",
        "year": "1963",
        "decade": "1960",
        "finish_color": "Sunburst",
        "item_desc": "<p>Lovely guitar.</p><p>All original &amp; clean.</p>",
        "price": "1500.00",
        "external_id": "VR-1",
        "processing_time": "3",
        "hours_days_sel": "days",
        "available_for_shipment": "1",
        "youtube_upload": "https://www.youtube.com/watch?v=abc",
        "categ_level_0": "51",
        "categ_level_1": "83",
        "categ_level_2": "",
        "categ_level_3": "",
    }


def test_html_descriptions_are_kept_and_non_youtube_videos_left_out():
    assert mappers.description_html("<p>Already <b>HTML</b></p>") == "<p>Already <b>HTML</b></p>"
    assert mappers.youtube_link("https://vimeo.com/1") == ""
    assert mappers.youtube_link("https://youtu.be/xyz") == "https://youtu.be/xyz"
    assert mappers.decade_of("") == "" and mappers.decade_of("2004") == "2000"


def test_a_revise_touches_only_the_fields_that_changed():
    changed = mappers.revise_form(payload(price=Decimal("1399.5")), {"price"}, brand="", category_levels=())
    assert changed == {"price": "1399.50"}
    assert mappers.revise_form(payload(), {"year"}, brand="", category_levels=()) == {"year": "1963", "decade": "1960"}
    # V&R has no title, quantity, SEO description or keywords field: nothing to send
    assert (
        mappers.revise_form(
            payload(), {"title", "quantity", "seo_description", "seo_keywords"}, brand="", category_levels=()
        )
        == {}
    )
    # ...but without a model the title stands in for the model name
    assert mappers.revise_form(payload(model=""), {"title"}, brand="", category_levels=()) == {
        "model_name": "1963 Fender Stratocaster"
    }


def test_an_item_without_brand_price_or_sku_is_refused_before_the_browser_opens():
    problems = mappers.listing_problems(payload(brand="", price=Decimal("0"), sku=""))
    assert len(problems) == 3


EXPORT = (
    "brand name,category name,external link,product id,external id,product model name,product price,"
    "product price notax,product description,product year,product sold,product finish,product in collective,"
    "product in inventory,product in reseller,collective discount,free shipping,buy now,show vat,decade,"
    "product order,local pickup,offer discount,available for shipment,processing time,image url,video url\n"
    'vox,Amps>Combo,,45238,SKU-9,AC4,1599,,"<h2>VOX AC4</h2>\n<ul><li>1960</li></ul>",1960,yes,Fawn,no,yes,no,0,'
    "no,yes,no,1960,10,yes,0,no,,https://x/1.jpg|https://x/2.jpg,\n"
    ",,,,,,,,,,,,,,,,,,,,,,,,,,\n"
)


def test_the_export_is_read_by_column_name_and_blank_rows_are_skipped():
    rows = mappers.parse_export(EXPORT)
    assert len(rows) == 1
    seen = mappers.listing_seen(rows[0], currency="GBP")
    assert (seen.external_id, seen.sku, seen.state, seen.price) == ("45238", "SKU-9", "sold", Decimal("1599.00"))
    assert seen.photos == ("https://x/1.jpg", "https://x/2.jpg")
    assert seen.title == "" and seen.quantity is None  # V&R has neither: no drift reported on them
    assert seen.description.startswith("<h2>VOX AC4</h2>")


def test_an_export_without_a_needed_column_is_a_layout_change():
    with pytest.raises(mappers.ExportLayoutChanged) as raised:
        mappers.parse_export("brand name,product id,product sold\nfender,1,no\n")
    assert "external id" in raised.value.missing


def test_a_sold_row_is_an_order_timed_when_it_was_first_seen():
    [row] = mappers.parse_export(EXPORT)
    seen_at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    order = mappers.sale_seen(row, seen_at=seen_at, currency="GBP")
    assert order.external_id == "vr-45238" and order.placed_at == seen_at and order.status == "paid"
    [line] = order.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == (
        "SKU-9",
        "45238",
        1,
        Decimal("1599.00"),
    )
