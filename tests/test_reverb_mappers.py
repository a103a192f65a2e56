"""Reverb mappers: pure functions, tested without a network or a database."""

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from channels_reverb import mappers
from inventory.channels import ListingPayload
from inventory.models import Condition

GUITAR = ListingPayload(
    sku="BN-1042",
    title="1964 Fender Stratocaster, Sunburst",
    description="All original, 7.9 lb.",
    price=Decimal("5000"),
    currency="USD",
    quantity=1,
    brand="Fender",
    model="Stratocaster",
    year="1964",
    finish="Sunburst",
    category="Electric Guitars",
    condition="excellent",
    serial_number="L12345",
    photos=("https://cdn.example.com/strat-1.jpg", "https://cdn.example.com/strat-2.jpg"),
    video_url="https://youtu.be/dQw4w9WgXcQ",
    seo_description="A 1964 Strat, all original.",
)

REVERB_ORDER = {
    "order_number": "4100123",
    "uuid": "00000000-0000-4000-8000-000004100123",
    "order_bundle_id": "4100123",
    "product_id": 71000042,
    "sku": "BN-1042",
    "title": "1964 Fender Stratocaster, Sunburst",
    "quantity": 1,
    "status": "paid",
    "created_at": "2026-03-01T09:15:00-06:00",
    "updated_at": "2026-03-01T09:16:30-06:00",
    "paid_at": "2026-03-01T09:16:30-06:00",
    "amount_product": {"amount": "5000.00", "amount_cents": 500000, "currency": "USD", "display": "$5,000.00"},
    "amount_product_subtotal": {"amount": "5000.00", "amount_cents": 500000, "currency": "USD"},
    "shipping": {"amount": "85.00", "amount_cents": 8500, "currency": "USD"},
    "amount_tax": {"amount": "412.50", "amount_cents": 41250, "currency": "USD"},
    "total": {"amount": "5497.50", "amount_cents": 549750, "currency": "USD"},
    "buyer_name": "Jamie Rivera",
    "buyer_first_name": "Jamie",
    "buyer_last_name": "Rivera",
    "buyer_email": "jamie@example.com",
    "shipping_address": {
        "name": "Jamie Rivera",
        "street_address": "1 Main St",
        "extended_address": "Apt 2",
        "locality": "Chicago",
        "region": "IL",
        "postal_code": "60601",
        "country_code": "US",
    },
    "_links": {"listing": {"href": "https://api.reverb.com/api/listings/71000042"}},
}

REVERB_LISTING = {
    "id": 71000042,
    "slug": "71000042-1964-fender-stratocaster-sunburst",
    "sku": "BN-1042",
    "make": "Fender",
    "model": "Stratocaster",
    "title": "1964 Fender Stratocaster, Sunburst",
    "description": "All original.",
    "finish": "Sunburst",
    "year": "1964",
    "condition": {"uuid": "df268ad1-c462-4ba6-b6db-e007e23922ea", "display_name": "Excellent"},
    "price": {"amount": "5000.00", "amount_cents": 500000, "currency": "USD"},
    "inventory": 1,
    "has_inventory": False,
    "state": {"slug": "live", "description": "Live"},
    "published_at": "2026-02-27T10:00:00-06:00",
    "photos": [
        {"_links": {"full": {"href": "https://rvb-img.reverb.com/full/1.jpg"}, "thumbnail": {"href": "t.jpg"}}},
        {"_links": {"large_crop": {"href": "https://rvb-img.reverb.com/large/2.jpg"}}},
    ],
    "_links": {
        "self": {"href": "https://api.reverb.com/api/listings/71000042"},
        "web": {"href": "https://reverb.com/item/71000042-1964-fender-stratocaster-sunburst"},
    },
}


# --- outbound: create ------------------------------------------------------------------


def test_listing_body_maps_every_field_reverb_has_under_reverb_names():
    body = mappers.listing_body(GUITAR, category_uuid="dfd39027-d134-4353-b9e4-57dc6be791b9", shipping_profile_id="77")

    assert body == {
        "sku": "BN-1042",
        "make": "Fender",
        "model": "Stratocaster",
        "title": "1964 Fender Stratocaster, Sunburst",
        "description": "All original, 7.9 lb.",
        "finish": "Sunburst",
        "year": "1964",
        "price": {"amount": "5000.00", "currency": "USD"},
        "condition": {"uuid": "df268ad1-c462-4ba6-b6db-e007e23922ea"},
        "has_inventory": False,
        "inventory": 1,
        "photos": ["https://cdn.example.com/strat-1.jpg", "https://cdn.example.com/strat-2.jpg"],
        "videos": [{"link": "https://youtu.be/dQw4w9WgXcQ"}],
        "categories": [{"uuid": "dfd39027-d134-4353-b9e4-57dc6be791b9"}],
        "shipping_profile_id": "77",
        "publish": True,
    }


def test_listing_body_leaves_out_empty_optional_texts_and_unknown_category():
    bare = replace(GUITAR, finish="", year="", photos=(), video_url="")

    body = mappers.listing_body(bare)

    assert not {"finish", "year", "photos", "videos", "categories", "shipping_profile_id"} & body.keys()


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(Decimal("5000"), "5000.00"), (Decimal("1299.999"), "1300.00"), (Decimal("0.5"), "0.50")],
)
def test_price_amount_is_a_two_decimal_string(amount, expected):
    assert mappers.money_body(amount, "usd") == {"amount": expected, "currency": "USD"}


def test_every_one_of_our_conditions_has_a_reverb_uuid():
    assert set(mappers.CONDITION_UUIDS) == set(Condition.values)
    assert len(set(mappers.CONDITION_UUIDS.values())) == len(Condition.values)


@pytest.mark.parametrize(
    ("condition", "quantity", "expected"),
    [
        (
            "excellent",
            1,
            {"condition": {"uuid": "df268ad1-c462-4ba6-b6db-e007e23922ea"}, "has_inventory": False, "inventory": 1},
        ),
        # A used item cannot hold stock on Reverb: one unit is offered, never more.
        (
            "good",
            3,
            {"condition": {"uuid": "f7a3f48c-972a-44c6-b01a-0cd27488d3f6"}, "has_inventory": False, "inventory": 1},
        ),
        (
            "brand_new",
            5,
            {"condition": {"uuid": "7c3f45de-2ae0-4c81-8400-fdb6b1d74890"}, "has_inventory": True, "inventory": 5},
        ),
        (
            "b_stock",
            2,
            {"condition": {"uuid": "9225283f-60c2-4413-ad18-1f5eba7a856f"}, "has_inventory": True, "inventory": 2},
        ),
        (
            "mint",
            1,
            {"condition": {"uuid": "ac5b9c1e-dc78-466d-b0b3-7cf712967a48"}, "has_inventory": False, "inventory": 1},
        ),
        # Mint with stock is Reverb's "Mint (with inventory)".
        (
            "mint",
            4,
            {"condition": {"uuid": "6db7df88-293b-4017-a1c1-cdb5e599fa1a"}, "has_inventory": True, "inventory": 4},
        ),
    ],
)
def test_stock_and_condition_follow_reverbs_multi_unit_rule(condition, quantity, expected):
    body = mappers.listing_body(replace(GUITAR, condition=condition, quantity=quantity))

    assert {k: body[k] for k in ("condition", "has_inventory", "inventory")} == expected


def test_brand_new_is_sent_without_a_upc_claim_only_for_brand_new():
    assert mappers.listing_body(replace(GUITAR, condition="brand_new"))["upc_does_not_apply"] is True
    assert "upc_does_not_apply" not in mappers.listing_body(replace(GUITAR, condition="b_stock"))


def test_listing_problems_name_what_reverb_would_refuse():
    bad = replace(GUITAR, brand="", model=" ", currency="CHF", condition="", price=Decimal("0"))

    assert mappers.listing_problems(bad) == [
        "Reverb needs a brand (make)",
        "Reverb needs a model",
        "Reverb does not take CHF (AUD, CAD, EUR, GBP, JPY, MXN, NZD, USD)",
        "Reverb has no condition ''",
        "Reverb needs a price above zero",
    ]
    assert mappers.listing_problems(GUITAR) == []


# --- outbound: revise ------------------------------------------------------------------


def test_revise_sends_only_the_changed_fields_under_reverb_names():
    assert mappers.revise_body(GUITAR, {"price"}) == {"price": {"amount": "5000.00", "currency": "USD"}}
    assert mappers.revise_body(GUITAR, {"brand", "title"}) == {
        "make": "Fender",
        "title": "1964 Fender Stratocaster, Sunburst",
    }
    assert mappers.revise_body(GUITAR, {"photos"}) == {"photos": list(GUITAR.photos)}


def test_only_photos_reverb_can_fetch_are_sent():
    mixed = replace(GUITAR, photos=("/media/items/1.jpg", "https://cdn.example.com/2.jpg", "ftp://x/3.jpg"))

    assert mappers.listing_body(mixed)["photos"] == ["https://cdn.example.com/2.jpg"]
    assert mappers.revise_body(mixed, {"photos"}) == {"photos": ["https://cdn.example.com/2.jpg"]}
    assert "photos" not in mappers.listing_body(replace(GUITAR, photos=("/media/items/1.jpg",)))


def test_revise_of_fields_reverb_has_no_place_for_sends_nothing():
    assert mappers.revise_body(GUITAR, {"serial_number", "seo_description", "seo_keywords"}) == {}


def test_revise_clears_the_video_and_skips_an_unmapped_category():
    assert mappers.revise_body(replace(GUITAR, video_url=""), {"video_url"}) == {"videos": []}
    assert mappers.revise_body(GUITAR, {"category"}) == {}
    assert mappers.revise_body(GUITAR, {"category"}, category_uuid="c-1") == {"categories": [{"uuid": "c-1"}]}


def test_revise_quantity_of_a_one_of_a_kind_item_offers_at_most_one_and_zero_ends_it():
    assert mappers.revise_body(replace(GUITAR, quantity=0), {"quantity"}) == {"has_inventory": False, "inventory": 0}
    assert mappers.revise_body(replace(GUITAR, quantity=1), {"quantity"}) == {"has_inventory": False, "inventory": 1}


def test_revise_quantity_of_mint_switches_to_mint_with_inventory_only_above_one():
    mint = replace(GUITAR, condition="mint")

    assert mappers.revise_body(replace(mint, quantity=3), {"quantity"}) == {
        "has_inventory": True,
        "inventory": 3,
        "condition": {"uuid": "6db7df88-293b-4017-a1c1-cdb5e599fa1a"},
    }
    # Back down to one: only the count changes, the listing keeps its kind.
    assert mappers.revise_body(replace(mint, quantity=1), {"quantity"}) == {"inventory": 1}


def test_revise_condition_also_sends_the_stock_rule_for_the_new_condition():
    assert mappers.revise_body(replace(GUITAR, condition="brand_new", quantity=3), {"condition"}) == {
        "condition": {"uuid": "7c3f45de-2ae0-4c81-8400-fdb6b1d74890"},
        "has_inventory": True,
        "inventory": 3,
    }


def test_every_payload_field_is_either_mapped_or_deliberately_ignored():
    names = {f.name for f in dataclass_fields(ListingPayload)}

    assert names == set(mappers.REVISE_FIELDS) | mappers.IGNORED_FIELDS


def test_revise_refuses_a_name_that_is_not_a_payload_field():
    with pytest.raises(ValueError, match="colour"):
        mappers.revise_body(GUITAR, {"colour"})


# --- inbound: listings -----------------------------------------------------------------


def test_listing_seen_reads_reverbs_listing_json():
    seen = mappers.listing_seen(REVERB_LISTING)

    assert seen.external_id == "71000042"
    assert seen.sku == "BN-1042"
    assert seen.state == "live"
    assert seen.quantity == 1
    assert seen.price == Decimal("5000.00")
    assert seen.currency == "USD"
    assert (seen.brand, seen.model, seen.year, seen.finish) == ("Fender", "Stratocaster", "1964", "Sunburst")
    assert seen.condition == "excellent"
    assert seen.photos == ("https://rvb-img.reverb.com/full/1.jpg", "https://rvb-img.reverb.com/large/2.jpg")
    assert seen.url == "https://reverb.com/item/71000042-1964-fender-stratocaster-sunburst"
    assert seen.updated_at == datetime(2026, 2, 27, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("slug", "state"),
    [
        ("live", "live"),
        ("draft", "draft"),
        ("ended", "ended"),
        ("sold", "sold"),
        ("sold_out", "sold"),
        # Each of these can become buyable again without us, so none is reported as off sale.
        ("ordered", "live"),
        ("suspended", "live"),
        ("seller_unavailable", "live"),
        ("something_new", "live"),
    ],
)
def test_listing_states_map_to_the_contracts_four(slug, state):
    assert mappers.listing_seen({**REVERB_LISTING, "state": {"slug": slug}}).state == state
    assert mappers.listing_seen({**REVERB_LISTING, "state": slug}).state == state  # older bare-string form


def test_listing_quantity_is_the_inventory_only_when_it_holds_stock():
    assert mappers.listing_seen({**REVERB_LISTING, "has_inventory": True, "inventory": 7}).quantity == 7
    sold = {**REVERB_LISTING, "state": {"slug": "sold"}, "inventory": 0}
    assert mappers.listing_seen(sold).quantity == 0


def test_listing_seen_reads_mint_with_inventory_as_mint_and_accepts_a_nested_listing():
    nested = {"listing": {**REVERB_LISTING, "condition": {"uuid": "6db7df88-293b-4017-a1c1-cdb5e599fa1a"}}}

    assert mappers.listing_seen(nested).condition == "mint"


def test_listing_without_an_id_is_refused():
    with pytest.raises(ValueError):
        mappers.listing_seen({"sku": "X"})


# --- inbound: orders -------------------------------------------------------------------


def test_order_seen_reads_one_order_as_one_line():
    order = mappers.order_seen(REVERB_ORDER)

    assert order.external_id == "4100123"
    assert order.status == "paid"
    assert order.placed_at == datetime(2026, 3, 1, 15, 15, tzinfo=UTC)
    assert order.updated_at == datetime(2026, 3, 1, 15, 16, 30, tzinfo=UTC)
    assert len(order.lines) == 1
    line = order.lines[0]
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == (
        "BN-1042",
        "71000042",
        1,
        Decimal("5000.00"),
    )
    assert (order.currency, order.subtotal, order.shipping, order.tax, order.total) == (
        "USD",
        Decimal("5000.00"),
        Decimal("85.00"),
        Decimal("412.50"),
        Decimal("5497.50"),
    )
    assert (order.buyer_name, order.buyer_email) == ("Jamie Rivera", "jamie@example.com")
    assert (order.ship_name, order.ship_line1, order.ship_line2) == ("Jamie Rivera", "1 Main St", "Apt 2")
    assert (order.ship_city, order.ship_region, order.ship_postal_code, order.ship_country) == (
        "Chicago",
        "IL",
        "60601",
        "US",
    )


@pytest.mark.parametrize(
    ("status", "normalised"),
    [
        ("unpaid", "pending"),
        ("payment_pending", "pending"),
        ("pending_review", "pending"),
        ("blocked", "pending"),
        ("paid", "paid"),
        ("shipped", "paid"),
        ("picked_up", "paid"),
        ("received", "paid"),
        ("refunded", "cancelled"),
        ("cancelled", "cancelled"),
        ("a_new_status", "pending"),
    ],
)
def test_order_statuses_are_normalised(status, normalised):
    assert mappers.order_seen({**REVERB_ORDER, "status": status}).status == normalised


def test_multi_unit_order_has_a_unit_price_and_a_subtotal_for_all_units():
    order = mappers.order_seen(
        {
            **REVERB_ORDER,
            "quantity": 3,
            "amount_product": {"amount": "20.00", "currency": "USD"},
            "amount_product_subtotal": None,
        }
    )

    assert order.lines[0].quantity == 3
    assert order.lines[0].unit_price == Decimal("20.00")
    assert order.subtotal == Decimal("60.00")


def test_order_listing_id_comes_from_the_listing_link_when_product_id_is_missing():
    order = {k: v for k, v in REVERB_ORDER.items() if k != "product_id"}

    assert mappers.order_seen(order).lines[0].external_listing_id == "71000042"


def test_money_falls_back_to_cents_and_buyer_name_to_first_and_last():
    order = mappers.order_seen(
        {
            **REVERB_ORDER,
            "total": {"amount_cents": 12345, "currency": "USD"},
            "buyer_name": "",
        }
    )

    assert order.total == Decimal("123.45")
    assert order.buyer_name == "Jamie Rivera"


def test_order_without_a_number_or_a_date_is_refused():
    with pytest.raises(ValueError):
        mappers.order_seen({**REVERB_ORDER, "order_number": None})
    with pytest.raises(ValueError):
        mappers.order_seen({**REVERB_ORDER, "created_at": None, "paid_at": None})


# --- times -----------------------------------------------------------------------------


def test_times_are_written_for_reverbs_filters_without_a_plus_sign():
    assert mappers.format_time(datetime(2026, 3, 1, 9, 15, 7, 500, tzinfo=UTC)) == "2026-03-01T09:15:07-00:00"


@pytest.mark.parametrize(
    "value",
    ["2026-03-01T09:15:00-06:00", "2026-03-01T15:15:00Z", "2026-03-01T15:15:00+00:00", "2026-03-01T15:15-00:00"],
)
def test_times_with_any_offset_read_as_the_same_instant_in_utc(value):
    parsed = mappers.parse_time(value)

    assert parsed == datetime(2026, 3, 1, 15, 15, tzinfo=UTC)
    assert parsed.tzinfo == UTC


@pytest.mark.parametrize("value", [None, "", "yesterday", 12])
def test_unreadable_times_are_none(value):
    assert mappers.parse_time(value) is None
