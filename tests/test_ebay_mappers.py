"""eBay's mappers, pure: titles, aspects, conditions, the merge of a full replace, orders, states."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels_ebay import mappers
from inventory.channels import ListingPayload

GUITAR = ListingPayload(
    sku="MP-1",
    title="Gibson ES-335",
    description="Dot neck.",
    price=Decimal("2800"),
    currency="USD",
    quantity=1,
    brand="Gibson",
    model="ES-335",
    year="1968",
    finish="Cherry",
    category="Electric Guitars",
    condition="very_good",
    photos=("https://cdn.example.com/a.jpg",),
)


@pytest.mark.parametrize(
    ("title", "seo", "expected"),
    [
        ("Gibson ES-335", "", "Gibson ES-335"),
        ("x" * 100, "", "x" * 80),  # one long word: a hard cut
        (
            "Gibson ES-335 " + "wonderful " * 8,
            "",
            "Gibson ES-335 wonderful wonderful wonderful wonderful wonderful wonderful",
        ),
        ("Anything", "1968 Gibson ES-335 Cherry Dot Neck", "1968 Gibson ES-335 Cherry Dot Neck"),
        ("  spaced   out  ", "", "spaced out"),
        ("A" * 60 + " and, more words here beyond", "", "A" * 60 + " and, more words"),  # 81 with "here"
    ],
)
def test_title_is_at_most_80_cut_at_a_word(title, seo, expected):
    got = mappers.ebay_title(replace(GUITAR, title=title, seo_title=seo))
    assert got == expected
    assert len(got) <= 80


def test_aspects_and_condition():
    assert mappers.aspects(GUITAR) == {
        "Brand": ["Gibson"],
        "Model": ["ES-335"],
        "Model Year": ["1968"],
        "Body Color": ["Cherry"],
        "Type": ["Electric Guitars"],
    }
    assert mappers.aspects(replace(GUITAR, year="", finish="", category="")) == {
        "Brand": ["Gibson"],
        "Model": ["ES-335"],
    }
    assert mappers.ebay_condition("very_good") == "USED_VERY_GOOD"
    assert mappers.ebay_condition("brand_new") == "NEW"
    assert mappers.ebay_condition("mint", {"mint": "USED_EXCELLENT"}) == "USED_EXCELLENT"
    assert mappers.ebay_condition("") == "USED_GOOD"


def test_the_merge_keeps_what_ebay_holds_and_we_do_not_own():
    current = {
        "sku": "MP-1",
        "locale": "en_US",
        "condition": "USED_GOOD",
        "conditionDescription": "Finish checking",
        "packageWeightAndSize": {"weight": {"value": 9, "unit": "POUND"}},
        "availability": {"shipToLocationAvailability": {"quantity": 1, "allocationByFormat": {"fixedPrice": 1}}},
        "product": {"title": "old", "mpn": "ES335-68", "aspects": {"Brand": ["Old"], "Handedness": ["Right-Handed"]}},
    }
    merged = mappers.merge_inventory_item(current, mappers.inventory_item_body(GUITAR))
    assert merged == {
        "condition": "USED_VERY_GOOD",
        "conditionDescription": "Finish checking",
        "packageWeightAndSize": {"weight": {"value": 9, "unit": "POUND"}},
        "availability": {"shipToLocationAvailability": {"quantity": 1}},
        "product": {
            "title": "Gibson ES-335",
            "mpn": "ES335-68",
            "description": "Dot neck.",
            "brand": "Gibson",
            "imageUrls": ["https://cdn.example.com/a.jpg"],
            "aspects": {
                "Handedness": ["Right-Handed"],
                "Brand": ["Gibson"],
                "Model": ["ES-335"],
                "Model Year": ["1968"],
                "Body Color": ["Cherry"],
                "Type": ["Electric Guitars"],
            },
        },
    }


def test_offer_bodies():
    body = mappers.offer_body(
        GUITAR,
        marketplace_id="EBAY_US",
        category_id="33034",
        merchant_location_key="main",
        fulfillment_policy_id="1",
        payment_policy_id="2",
        return_policy_id="",
    )
    assert body == {
        "sku": "MP-1",
        "marketplaceId": "EBAY_US",
        "format": "FIXED_PRICE",
        "availableQuantity": 1,
        "pricingSummary": {"price": {"value": "2800.00", "currency": "USD"}},
        "listingDescription": "Dot neck.",
        "listingPolicies": {"fulfillmentPolicyId": "1", "paymentPolicyId": "2"},
        "categoryId": "33034",
        "merchantLocationKey": "main",
    }
    current = {**body, "offerId": "9", "status": "PUBLISHED", "listing": {"listingId": "1"}, "lotSize": 1}
    update = mappers.offer_update_body(current, {"pricingSummary": {"price": {"value": "2700.00", "currency": "USD"}}})
    assert "sku" not in update and "offerId" not in update and "status" not in update
    assert update["lotSize"] == 1
    assert update["pricingSummary"] == {"price": {"value": "2700.00", "currency": "USD"}}


def test_price_quantity_entry():
    assert mappers.price_quantity_entry("A", "9", price=None, currency="USD", quantity=0) == {
        "sku": "A",
        "shipToLocationAvailability": {"quantity": 0},
        "offers": [{"offerId": "9", "availableQuantity": 0}],
    }


@pytest.mark.parametrize(
    ("offer", "state"),
    [
        ({"status": "PUBLISHED", "listing": {"listingStatus": "ACTIVE"}}, "live"),
        ({"status": "UNPUBLISHED"}, "draft"),
        ({"status": "UNPUBLISHED", "listing": {"listingId": "1", "listingStatus": "ENDED"}}, "ended"),
        (
            {"status": "PUBLISHED", "availableQuantity": 0, "listing": {"listingStatus": "ENDED", "soldQuantity": 1}},
            "sold",
        ),
        (
            {"status": "PUBLISHED", "availableQuantity": 0, "listing": {"listingStatus": "ENDED", "soldQuantity": 0}},
            "ended",
        ),
        ({"status": "PUBLISHED", "listing": {"listingStatus": "OUT_OF_STOCK", "soldQuantity": 3}}, "sold"),
        (None, "ended"),
    ],
)
def test_offer_states(offer, state):
    assert mappers.offer_state(offer) == state


ORDER = {
    "orderId": "12-34567-89012",
    "creationDate": "2026-03-01T12:00:00.000Z",
    "lastModifiedDate": "2026-03-01T12:05:00.000Z",
    "orderPaymentStatus": "PAID",
    "cancelStatus": {"cancelState": "NONE_REQUESTED"},
    "buyer": {"username": "jdoe"},
    "pricingSummary": {
        "priceSubtotal": {"value": "300.00", "currency": "USD"},
        "deliveryCost": {"value": "20.00", "currency": "USD"},
        "total": {"value": "320.00", "currency": "USD"},
    },
    "lineItems": [{"sku": "MP-1", "legacyItemId": "1101", "quantity": 2, "lineItemCost": {"value": "300.00"}}],
    "fulfillmentStartInstructions": [
        {
            "shippingStep": {
                "shipTo": {
                    "fullName": "Jane Doe",
                    "email": "j@example.com",
                    "contactAddress": {
                        "addressLine1": "1 Main",
                        "city": "Austin",
                        "postalCode": "78701",
                        "country": "US",
                    },
                }
            }
        }
    ],
}


def test_order_seen():
    seen = mappers.order_seen(ORDER)
    assert (seen.external_id, seen.status, seen.placed_at) == (
        "12-34567-89012",
        "paid",
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )
    [line] = seen.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == (
        "MP-1",
        "1101",
        2,
        Decimal("150.00"),
    )
    assert (seen.total, seen.shipping, seen.buyer_name, seen.ship_city, seen.ship_country) == (
        Decimal("320.00"),
        Decimal("20.00"),
        "Jane Doe",
        "Austin",
        "US",
    )


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"orderPaymentStatus": "PENDING"}, "pending"),
        ({"orderPaymentStatus": "FULLY_REFUNDED"}, "cancelled"),
        ({"cancelStatus": {"cancelState": "CANCELED"}}, "cancelled"),
        ({"orderPaymentStatus": "PARTIALLY_REFUNDED"}, "paid"),
    ],
)
def test_order_status(changes, status):
    assert mappers.order_seen({**ORDER, **changes}).status == status


def test_an_order_without_id_is_refused():
    with pytest.raises(ValueError):
        mappers.order_seen({**ORDER, "orderId": ""})


def test_problems_before_any_call():
    assert mappers.listing_problems(GUITAR) == []
    assert mappers.listing_problems(replace(GUITAR, sku="has space", photos=(), price=Decimal("0"))) == [
        "the SKU may hold letters, digits, '.', '_' and '-' only (eBay 25707)",
        "eBay needs at least one photo",
        "the price must be above zero",
    ]


def test_same_content_reads_amounts_as_numbers():
    assert mappers.same_content(
        {"price": {"value": "5000.0", "currency": "USD"}}, {"price": {"value": "5000.00", "currency": "USD"}}
    )
    assert not mappers.same_content(
        {"price": {"value": "5000.01", "currency": "USD"}}, {"price": {"value": "5000", "currency": "USD"}}
    )
    assert not mappers.same_content({"a": [1, 2]}, {"a": [2, 1]})


def test_an_unchanged_item_read_back_merges_to_itself():
    current = {
        "sku": "MP-1",
        "locale": "en_US",
        "groupIds": ["G"],
        "availability": {"shipToLocationAvailability": {"quantity": 1, "allocationByFormat": {"fixedPrice": 1}}},
        "product": {"title": "t", "aspects": {"Brand": ["Gibson"]}},
    }
    assert mappers.merge_inventory_item(current, {}) == {
        "availability": {"shipToLocationAvailability": {"quantity": 1}},
        "product": {"title": "t", "aspects": {"Brand": ["Gibson"]}},
    }
