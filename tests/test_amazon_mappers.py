"""Amazon's mappers, pure: offer attributes, patches, issues, listings read back, orders."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from channels_amazon import mappers
from inventory.channels import ListingPayload

US = "ATVPDKIKX0DER"


def payload(**changes) -> ListingPayload:
    fields = {
        "sku": "S-1",
        "title": "Gibson Les Paul",
        "description": "",
        "price": Decimal("2499.5"),
        "currency": "USD",
        "quantity": 2,
        "condition": "excellent",
    }
    fields.update(changes)
    return ListingPayload(**fields)


def test_offer_attributes_carry_asin_condition_price_and_the_buffered_quantity():
    attributes = mappers.offer_attributes(payload(), asin="B000000001", condition="used_very_good", marketplace_id=US)
    assert attributes == {
        "merchant_suggested_asin": [{"value": "B000000001", "marketplace_id": US}],
        "condition_type": [{"value": "used_very_good", "marketplace_id": US}],
        "purchasable_offer": [
            {"marketplace_id": US, "currency": "USD", "our_price": [{"schedule": [{"value_with_tax": 2499.5}]}]}
        ],
        "fulfillment_availability": [{"fulfillment_channel_code": "DEFAULT", "quantity": 2}],
    }
    body = mappers.put_body("GUITARS", attributes)
    assert (body["productType"], body["requirements"]) == ("GUITARS", "LISTING_OFFER_ONLY")


def test_conditions_map_to_amazon_grades_and_staff_overrides_win():
    assert mappers.condition_type("brand_new") == "new_new"
    assert mappers.condition_type("excellent") == "used_very_good"
    assert mappers.condition_type("excellent", {"excellent": "collectible_very_good"}) == "collectible_very_good"
    assert mappers.condition_type("non_functioning") == ""  # Amazon sells no broken gear as an offer
    assert set(mappers.CONDITION_TYPES.values()) <= mappers.AMAZON_CONDITION_TYPES


def test_listing_problems_say_what_is_missing_and_how_to_fix_it():
    problems = mappers.listing_problems(payload(condition="non_functioning"), asin="", product_type="", condition="")
    assert len(problems) == 3
    assert "has no ASIN" in problems[0] and "/dp/" in problems[0] and "Seller Central" in problems[0]
    assert "product type" in problems[1]
    assert "non_functioning" in problems[2]
    assert mappers.listing_problems(payload(), asin="B000000001", product_type="GUITARS", condition="used_good") == []


def test_only_the_changed_offer_attributes_are_patched():
    changed = mappers.changed_attributes(
        payload(), {"price", "title", "photos"}, condition="used_good", marketplace_id=US, channel_code="DEFAULT"
    )
    assert list(changed) == ["purchasable_offer"]
    assert mappers.changed_attributes(payload(), {"title"}, condition="x", marketplace_id=US, channel_code="D") == {}
    body = mappers.patch_body("GUITARS", {"fulfillment_availability": mappers.fulfillment_availability(0, "DEFAULT")})
    assert body == {
        "productType": "GUITARS",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}],
            }
        ],
    }


def test_issues_read_in_amazons_words_and_only_errors_block():
    issues = [
        {
            "code": "90220",
            "message": "'condition_type' is required but not supplied.",
            "severity": "ERROR",
            "attributeNames": ["condition_type"],
        },
        {"code": "18027", "message": "Image too small.", "severity": "WARNING"},
    ]
    assert mappers.errors_of(issues) == issues[:1]
    assert mappers.issues_text(issues) == (
        "90220: 'condition_type' is required but not supplied. [condition_type]; 18027: Image too small."
    )


def item(status, quantity, price="100.00"):
    return {
        "sku": "S-1",
        "summaries": [
            {
                "marketplaceId": US,
                "asin": "B000000001",
                "productType": "GUITARS",
                "conditionType": "used_very_good",
                "status": status,
                "itemName": "Gibson Les Paul",
                "createdDate": "2026-12-01T10:00:00Z",
                "lastUpdatedDate": "2026-12-02T10:00:00Z",
            }
        ],
        "offers": [{"marketplaceId": US, "offerType": "B2C", "price": {"currencyCode": "USD", "amount": price}}],
        "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": quantity}],
    }


def test_a_listing_is_live_only_when_buyable_ended_at_quantity_zero_else_draft():
    assert mappers.listing_state(item(["BUYABLE", "DISCOVERABLE"], 1), US) == "live"
    assert mappers.listing_state(item(["DISCOVERABLE"], 0), US) == "ended"
    assert mappers.listing_state(item([], 1), US) == "draft"  # accepted, not processed yet
    seen = mappers.listing_seen(item(["BUYABLE"], 1, "1234.5"), US)
    assert (seen.external_id, seen.sku, seen.price, seen.currency, seen.quantity, seen.condition) == (
        "S-1",
        "S-1",
        Decimal("1234.50"),
        "USD",
        1,
        "excellent",
    )
    assert seen.url == "https://www.amazon.com/dp/B000000001"
    assert seen.updated_at == datetime(2026, 12, 2, 10, tzinfo=UTC)


def test_offer_matches_names_only_what_differs():
    want = mappers.offer_attributes(
        payload(price=Decimal("100")), asin="B000000001", condition="used_very_good", marketplace_id=US
    )
    assert list(mappers.offer_matches(item(["BUYABLE"], 2), want, US, "DEFAULT")) == []
    assert list(mappers.offer_matches(item(["BUYABLE"], 0), want, US, "DEFAULT")) == ["fulfillment_availability"]


def test_an_order_maps_statuses_lines_and_totals():
    order = {
        "orderId": "111-1111111-1111111",
        "createdTime": "2026-12-01T10:00:00Z",
        "lastUpdatedTime": "2026-12-01T10:05:00Z",
        "salesChannel": {"channelName": "AMAZON"},
        "fulfillment": {"fulfillmentStatus": "UNSHIPPED"},
        "proceeds": {"grandTotal": {"amount": "250.00", "currencyCode": "USD"}},
        "orderItems": [
            {
                "orderItemId": "1",
                "quantityOrdered": 2,
                "product": {
                    "sellerSku": "S-1",
                    "title": "Pedal",
                    "price": {"unitPrice": {"amount": "125.00", "currencyCode": "USD"}},
                },
            }
        ],
    }
    seen = mappers.order_seen(order)
    assert (seen.external_id, seen.status, seen.currency, seen.total, seen.subtotal) == (
        "111-1111111-1111111",
        "paid",
        "USD",
        Decimal("250.00"),
        Decimal("250.00"),
    )
    [line] = seen.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == ("S-1", "S-1", 2, Decimal("125.00"))
    assert seen.buyer_name == ""  # restricted data: not read without a Restricted Data Token
    for status, ours in [("PENDING", "pending"), ("SHIPPED", "paid"), ("CANCELLED", "cancelled")]:
        order["fulfillment"]["fulfillmentStatus"] = status
        assert mappers.order_seen(order).status == ours
