"""Shopify's mappers: pure functions, no network, no database."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels_shopify import mappers
from inventory.channels import ListingPayload

LOCATION = "gid://shopify/Location/1"
PAYLOAD = ListingPayload(
    sku="FEN-JM-62",
    title="1962 Fender Jazzmaster",
    description="Olympic white <original>.\nRefret 1990.\n\nHard case.",
    price=Decimal("4200"),
    currency="USD",
    quantity=1,
    brand="Fender",
    category="Electric Guitars",
    condition="very_good",
    photos=("https://cdn.example.com/jm-1.jpg", "/media/local.jpg", "https://cdn.example.com/jm-2.jpg"),
    seo_keywords="offset, vintage, Offset",
)


def product(status="ACTIVE", quantity=1, sku="FEN-JM-62", variants=1):
    return {
        "id": "gid://shopify/Product/7",
        "title": "1962 Fender Jazzmaster",
        "status": status,
        "vendor": "Fender",
        "tags": ["offset", "very good"],
        "updatedAt": "2025-03-01T10:00:00Z",
        "onlineStoreUrl": "https://shop.example.com/products/jm" if status == "ACTIVE" else None,
        "descriptionHtml": "<p>x</p>",
        "media": {"nodes": [{"id": "m1", "image": {"url": "https://cdn.shopify.com/jm.jpg"}}, {}]},
        "variants": {
            "nodes": [
                {
                    "id": f"gid://shopify/ProductVariant/{n}",
                    "sku": sku if n == 0 else f"{sku}-{n}",
                    "price": "4200.00",
                    "inventoryItem": {
                        "id": f"gid://shopify/InventoryItem/{n}",
                        "inventoryLevel": {"quantities": [{"name": "available", "quantity": quantity}]},
                    },
                }
                for n in range(variants)
            ]
        },
    }


def test_a_create_carries_everything_and_the_quantity_at_the_location():
    built = mappers.product_set_input(PAYLOAD, location_id=LOCATION)
    body = built.input
    assert "id" not in body
    assert (body["title"], body["vendor"], body["productType"], body["status"]) == (
        "1962 Fender Jazzmaster",
        "Fender",
        "Electric Guitars",
        "ACTIVE",
    )
    assert body["descriptionHtml"] == "<p>Olympic white &lt;original&gt;.<br>Refret 1990.</p><p>Hard case.</p>"
    assert body["tags"] == ["offset", "vintage", "very good"]  # deduplicated, condition added
    assert body["productOptions"] == [{"name": "Title", "values": [{"name": "Default Title"}]}]
    [variant] = body["variants"]
    assert variant == {
        "optionValues": [{"optionName": "Title", "name": "Default Title"}],
        "price": "4200.00",
        "sku": "FEN-JM-62",
        "inventoryItem": {"sku": "FEN-JM-62", "tracked": True},
        "inventoryPolicy": "DENY",
        "inventoryQuantities": [{"locationId": LOCATION, "name": "available", "quantity": 1}],
    }
    # photos by URL with alt text; a path on this site is left out and said so
    assert body["files"] == [
        {"originalSource": "https://cdn.example.com/jm-1.jpg", "alt": "1962 Fender Jazzmaster", "contentType": "IMAGE"},
        {
            "originalSource": "https://cdn.example.com/jm-2.jpg",
            "alt": "1962 Fender Jazzmaster (2)",
            "contentType": "IMAGE",
        },
    ]
    assert built.notes == ["Photos without a public http(s) address were left out (set SITE_URL)."]


def test_an_adoption_names_the_product_and_our_variant_and_never_sets_the_quantity_blindly():
    body = mappers.product_set_input(
        PAYLOAD, location_id=LOCATION, product_id="gid://shopify/Product/7", variant_id="gid://shopify/ProductVariant/8"
    ).input
    assert body["id"] == "gid://shopify/Product/7"
    [variant] = body["variants"]
    assert variant["id"] == "gid://shopify/ProductVariant/8"
    assert "inventoryQuantities" not in variant


def test_shopifys_limits_are_applied_and_shown():
    long = replace(PAYLOAD, title="T" * 300, seo_title="S" * 80, seo_description="D" * 400)
    built = mappers.product_set_input(long, location_id=LOCATION)
    assert built.input["title"] == "T" * 255  # one long word: cut hard (a sentence is cut at a word)
    assert len(built.input["seo"]["title"]) == 70
    assert len(built.input["seo"]["description"]) == 320
    assert built.notes[:3] == [
        "Title shortened to Shopify's 255 characters (was 300).",
        "SEO title shortened to Shopify's 70 characters (was 80).",
        "SEO description shortened to Shopify's 320 characters (was 400).",
    ]


def test_revise_splits_the_changed_fields_by_mutation_and_sends_nothing_else():
    product_update, variant, quantity, photos, _ = mappers.revise_parts(
        PAYLOAD, {"title"}, product_id="P", variant_id="V"
    )
    # the SEO title follows the title when it has none of its own
    assert product_update == {
        "id": "P",
        "title": "1962 Fender Jazzmaster",
        "seo": {"title": "1962 Fender Jazzmaster", "description": ""},
    }
    assert (variant, quantity, photos) == (None, False, False)
    product_update, variant, quantity, photos, _ = mappers.revise_parts(
        PAYLOAD, {"price", "quantity"}, product_id="P", variant_id="V"
    )
    assert (product_update, variant, quantity, photos) == (None, {"id": "V", "price": "4200.00"}, True, False)
    assert mappers.revise_parts(PAYLOAD, {"model", "year"}, product_id="P", variant_id="V")[:4] == (
        None,
        None,
        False,
        False,
    )
    with pytest.raises(ValueError):
        mappers.revise_parts(PAYLOAD, {"colour"}, product_id="P", variant_id="V")


def test_a_stock_change_carries_the_compare_quantity():
    body = mappers.inventory_input("gid://shopify/InventoryItem/1", LOCATION, 0, 2, "gid://gear-back-office/Listing/A")
    assert body == {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://gear-back-office/Listing/A",
        "ignoreCompareQuantity": False,
        "quantities": [
            {
                "inventoryItemId": "gid://shopify/InventoryItem/1",
                "locationId": LOCATION,
                "quantity": 0,
                "compareQuantity": 2,
            }
        ],
    }


@pytest.mark.parametrize(
    ("status", "quantity", "state"),
    [
        ("ACTIVE", 1, "live"),
        ("ACTIVE", 0, "sold"),
        ("DRAFT", 0, "ended"),
        ("DRAFT", 2, "draft"),
        ("ARCHIVED", 1, "ended"),
    ],
)
def test_product_states(status, quantity, state):
    seen = mappers.listing_seen(product(status, quantity))
    assert (seen.state, seen.quantity, seen.sku, seen.external_id) == (
        state,
        quantity,
        "FEN-JM-62",
        "gid://shopify/Product/7",
    )


def test_a_product_as_listing_seen():
    seen = mappers.listing_seen(product())
    assert (seen.title, seen.price, seen.brand, seen.condition, seen.photos, seen.url) == (
        "1962 Fender Jazzmaster",
        Decimal("4200.00"),
        "Fender",
        "very_good",
        ("https://cdn.shopify.com/jm.jpg",),
        "https://shop.example.com/products/jm",
    )
    assert seen.updated_at == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert mappers.our_variant(product(variants=2), "FEN-JM-62-1")["id"] == "gid://shopify/ProductVariant/1"
    assert mappers.our_variant(product(), "OTHER") is None


def order(**changes):
    base = {
        "id": "gid://shopify/Order/5001",
        "legacyResourceId": "5001",
        "name": "#1001",
        "createdAt": "2025-03-01T10:00:00Z",
        "processedAt": "2025-03-01T10:00:00Z",
        "updatedAt": "2025-03-01T10:05:00Z",
        "cancelledAt": None,
        "displayFinancialStatus": "PAID",
        "currencyCode": "USD",
        "email": "jamie@example.com",
        "customer": {"displayName": "Jamie Buyer"},
        "shippingAddress": {
            "name": "Jamie Buyer",
            "address1": "1 Main",
            "city": "Nashville",
            "provinceCode": "TN",
            "zip": "37203",
            "countryCodeV2": "US",
        },
        "subtotalPriceSet": {"shopMoney": {"amount": "4200.0", "currencyCode": "USD"}},
        "totalShippingPriceSet": {"shopMoney": {"amount": "50.0", "currencyCode": "USD"}},
        "totalTaxSet": {"shopMoney": {"amount": "0.0", "currencyCode": "USD"}},
        "totalPriceSet": {"shopMoney": {"amount": "4250.0", "currencyCode": "USD"}},
        "lineItems": {
            "nodes": [
                {
                    "sku": "FEN-JM-62",
                    "title": "JM",
                    "quantity": 1,
                    "originalUnitPriceSet": {"shopMoney": {"amount": "4200.0", "currencyCode": "USD"}},
                    "product": {"id": "gid://shopify/Product/7"},
                }
            ]
        },
    }
    return {**base, **changes}


def test_an_order_as_order_seen():
    seen = mappers.order_seen(order())
    assert (seen.external_id, seen.status, seen.total, seen.shipping, seen.buyer_name, seen.ship_country) == (
        "5001",
        "paid",
        Decimal("4250.0"),
        Decimal("50.0"),
        "Jamie Buyer",
        "US",
    )
    [line] = seen.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == (
        "FEN-JM-62",
        "gid://shopify/Product/7",
        1,
        Decimal("4200.0"),
    )


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"displayFinancialStatus": "PENDING"}, "pending"),
        ({"displayFinancialStatus": "AUTHORIZED"}, "pending"),
        ({"displayFinancialStatus": "PARTIALLY_REFUNDED"}, "paid"),
        ({"displayFinancialStatus": "REFUNDED"}, "cancelled"),
        ({"displayFinancialStatus": "PAID", "cancelledAt": "2025-03-02T00:00:00Z"}, "cancelled"),
    ],
)
def test_order_statuses(changes, status):
    assert mappers.order_seen(order(**changes)).status == status


def test_search_values_are_quoted():
    assert mappers.sku_query('A "B"\\C') == 'sku:"A \\"B\\"\\\\C"'
    assert mappers.updated_since_query(datetime(2025, 3, 1, 10, tzinfo=UTC)) == "updated_at:>'2025-03-01T10:00:00Z'"
