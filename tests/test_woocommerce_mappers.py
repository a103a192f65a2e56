"""Pure mappers between our data and WooCommerce's JSON: no network, no database."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from channels_woocommerce import mappers
from channels_woocommerce.models import validate_store_url
from tests.test_woocommerce_sync import STRAT

PRODUCT = {
    "id": 794,
    "name": "1964 Fender Stratocaster &amp; case",
    "slug": "strat",
    "permalink": "https://shop.example.com/product/strat/",
    "date_modified_gmt": "2026-12-04T09:15:02",
    "type": "simple",
    "status": "publish",
    "description": "<p>All original.<br />Refret 1990.</p><p>Case.</p>",
    "sku": "WC-1964",
    "price": "4500",
    "regular_price": "5000.00",
    "sale_price": "4500",
    "manage_stock": True,
    "stock_quantity": 1,
    "stock_status": "instock",
    "images": [{"id": 1, "src": "https://shop.example.com/wp-content/uploads/a.jpg", "alt": ""}],
    "attributes": [
        {"id": 0, "name": "Brand", "options": ["Fender"]},
        {"id": 0, "name": "Condition", "options": ["Very good"]},
    ],
    "yoast_head_json": {"title": "unknown to the docs"},
    "meta_data": [{"id": 9, "key": "_x", "value": {"nested": True}}],
}


def test_a_product_body_is_a_simple_product_with_a_string_price_and_managed_stock():
    body = mappers.product_body(replace(STRAT, quantity=2), category_ids=[17, 18])
    assert body["regular_price"] == "5000.00" and body["stock_quantity"] == 2 and body["manage_stock"] is True
    assert (body["type"], body["status"], body["sku"], body["name"]) == ("simple", "publish", "WC-1964", STRAT.title)
    assert body["categories"] == [{"id": 17}, {"id": 18}]
    assert body["description"] == "<p>All original.</p><p>Comes with the case.</p>"
    assert [image["src"] for image in body["images"]] == list(STRAT.photos[:2])  # /media/local.jpg left out
    assert [(a["name"], a["options"]) for a in body["attributes"]] == [
        ("Brand", ["Fender"]),
        ("Model", ["Stratocaster"]),
        ("Year", ["1964"]),
        ("Finish", ["Sunburst"]),
        ("Condition", ["Excellent"]),
    ]
    assert "categories" not in mappers.product_body(STRAT)


def test_prices_are_decimal_strings_rounded_for_the_currency():
    assert mappers.price_text(Decimal("1999.995"), "USD") == "2000.00"
    assert mappers.price_text(Decimal("150000"), "JPY") == "150000"


def test_description_html_escapes_our_text():
    assert mappers.description_html("a < b & c\nnext") == "<p>a &lt; b &amp; c<br />next</p>"
    assert mappers.html_text("<p>a &lt; b<br />next</p><p>two</p>") == "a < b\nnext\n\ntwo"


def test_revise_body_carries_only_what_changed():
    assert mappers.revise_body(STRAT, {"price"}) == {"regular_price": "5000.00"}
    assert mappers.revise_body(replace(STRAT, quantity=0), {"quantity"}) == {"manage_stock": True, "stock_quantity": 0}
    assert set(mappers.revise_body(STRAT, {"brand"})) == {"attributes"}
    assert mappers.revise_body(STRAT, {"video_url", "serial_number", "seo_title"}) == {}
    with pytest.raises(ValueError, match="Not ListingPayload fields"):
        mappers.revise_body(STRAT, {"colour"})


def test_every_payload_field_is_mapped_or_deliberately_ignored():
    from inventory.channels import ListingPayload

    assert set(ListingPayload.__dataclass_fields__) == mappers.REVISE_FIELDS | mappers.IGNORED_FIELDS


@pytest.mark.parametrize(
    ("status", "stock", "stock_status", "state"),
    [
        ("publish", 1, "instock", "live"),
        ("publish", 0, "outofstock", "sold"),
        ("draft", 0, "outofstock", "ended"),
        ("draft", 2, "instock", "draft"),
        ("pending", 1, "instock", "draft"),
        ("private", 0, "outofstock", "ended"),
        ("trash", 1, "instock", "ended"),
    ],
)
def test_product_states(status, stock, stock_status, state):
    product = {**PRODUCT, "status": status, "stock_quantity": stock, "stock_status": stock_status}
    assert mappers.product_state(product) == state


def test_a_product_as_listing_seen_ignores_unknown_fields():
    seen = mappers.listing_seen(PRODUCT)
    assert (seen.external_id, seen.sku, seen.state, seen.quantity, seen.price) == (
        "794",
        "WC-1964",
        "live",
        1,
        Decimal("5000.00"),
    )
    assert seen.title == "1964 Fender Stratocaster & case"
    assert seen.description == "All original.\nRefret 1990.\n\nCase."
    assert (seen.brand, seen.condition, seen.url) == ("Fender", "very_good", "https://shop.example.com/product/strat/")
    assert seen.updated_at == datetime(2026, 12, 4, 9, 15, 2, tzinfo=UTC)
    unmanaged = mappers.listing_seen({**PRODUCT, "manage_stock": False, "stock_quantity": None})
    assert unmanaged.quantity == 1


@pytest.mark.parametrize(
    ("status", "ours"),
    [
        ("pending", "pending"),
        ("on-hold", "pending"),
        ("processing", "paid"),
        ("completed", "paid"),
        ("cancelled", "cancelled"),
        ("refunded", "cancelled"),
        ("failed", "cancelled"),
        ("a-plugins-own", "pending"),
        ("trash", "cancelled"),
    ],
)
def test_order_statuses(status, ours):
    assert mappers.order_status(status) == ours


def test_a_cart_the_block_checkout_is_still_filling_is_not_an_order():
    assert mappers.is_order({"status": "checkout-draft"}) is False
    assert mappers.is_order({"status": "pending"}) is True


def test_an_order_as_order_seen():
    order = {
        "id": 5001,
        "status": "processing",
        "currency": "eur",
        "date_created": "2026-12-04T11:00:00",
        "date_created_gmt": "2026-12-04T10:00:00",
        "date_modified_gmt": "2026-12-04T10:05:00",
        "total": "5025.00",
        "shipping_total": "25.00",
        "total_tax": "0.00",
        "billing": {"first_name": "Dana", "last_name": "Buyer", "email": "dana@example.com"},
        "shipping": {"first_name": "Dana", "last_name": "Buyer", "address_1": "1 Main", "country": "de"},
        "line_items": [{"product_id": 794, "sku": "WC-1964", "quantity": 1, "price": 5000, "name": "Strat"}],
        "some_plugin_field": [1, 2, 3],
    }
    seen = mappers.order_seen(order)
    assert (seen.external_id, seen.status, seen.currency, seen.placed_at) == (
        "5001",
        "paid",
        "EUR",
        datetime(2026, 12, 4, 10, 0, tzinfo=UTC),  # the GMT time, not the site's local one
    )
    assert (seen.total, seen.subtotal, seen.shipping, seen.ship_country, seen.buyer_name) == (
        Decimal("5025.00"),
        Decimal("5000.00"),
        Decimal("25.00"),
        "DE",
        "Dana Buyer",
    )
    [line] = seen.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == (
        "WC-1964",
        "794",
        1,
        Decimal("5000"),
    )
    with pytest.raises(ValueError):
        mappers.order_seen({"id": 1})


def test_listing_problems_in_staffs_words():
    assert mappers.listing_problems(STRAT, "USD") == []
    problems = mappers.listing_problems(replace(STRAT, sku="", price=Decimal("0"), currency="GBP"), "USD")
    assert len(problems) == 3 and "prices are not converted" in problems[2]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://shop.example.com", True),
        ("https://shop.example.com/store", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost", True),
        ("http://192.168.1.20", True),
        ("http://shop.test", True),
        ("http://shop.example.com", False),
        ("https://shop.example.com/wp-json/wc/v3", False),
        ("https://user:pw@shop.example.com", False),
        ("ftp://shop.example.com", False),
    ],
)
def test_the_store_url_needs_https_unless_local(url, ok):
    if ok:
        validate_store_url(url)
    else:
        with pytest.raises(ValidationError):
            validate_store_url(url)
