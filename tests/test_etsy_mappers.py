"""Etsy's mappers, pure: vintage eligibility and when_made, titles and tags within Etsy's limits,
the createDraftListing form and inventory body as the OpenAPI file accepts them, and receipts and
listings read back in the contract's words."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from channels_etsy import mappers
from channels_etsy.sandbox.contract import EtsyContract
from inventory.channels import ListingPayload
from tests.contracts import contract_path


@pytest.fixture(scope="module")
def spec() -> EtsyContract:
    return EtsyContract(contract_path("etsy", "etsy-openapi-v3.json"))


def payload(**changes) -> ListingPayload:
    values = {
        "sku": "V-1965-JAG",
        "title": "1965 Fender Jaguar, Olympic White",
        "description": "All original.",
        "price": Decimal("4200.00"),
        "currency": "USD",
        "quantity": 1,
        "brand": "Fender",
        "model": "Jaguar",
        "year": "1965",
        "category": "Electric Guitars",
        "photos": ("https://img.example.com/1.jpg",),
    }
    values.update(changes)
    return ListingPayload(**values)


TODAY = date(2026, 12, 4)


@pytest.mark.parametrize(
    ("year", "bucket"),
    [
        (1650, "before_1700"),
        (1765, "1700s"),
        (1899, "1800s"),
        (1905, "1900s"),
        (1959, "1950s"),
        (1965, "1960s"),
        (1999, "1990s"),
        (2000, "2000_2006"),
        (2006, "2000_2006"),
        (2008, "2007_2009"),
        (2015, "2010_2019"),
        (2021, "2020_2026"),
    ],
)
def test_when_made_is_one_of_etsys_buckets(spec, year, bucket):
    assert mappers.when_made(year) == bucket
    when_made_enum = spec.operation("createDraftListing").spec["requestBody"]["content"][
        "application/x-www-form-urlencoded"
    ]["schema"]["properties"]["when_made"]["enum"]
    assert bucket in when_made_enum


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1965", (1965, 1965)), ("1960s", (1960, 1969)), ("c. 1972", (1972, 1972)), ("", None), ("unknown", None)],
)
def test_a_catalogue_year_is_read_as_the_years_it_may_mean(text, expected):
    assert mappers.year_range(text) == expected


def test_a_2015_guitar_is_refused_with_the_reason():
    problems = mappers.eligibility_problems(payload(year="2015", title="2015 Fender Strat"), TODAY)
    assert problems == [
        "Etsy lists used gear only as vintage (at least 20 years old, made in 2006 or earlier); this item is from 2015"
    ]


def test_an_item_without_a_year_is_refused_and_so_is_a_decade_that_may_be_too_recent():
    [unknown] = mappers.eligibility_problems(payload(year=""), TODAY)
    assert unknown.startswith("Etsy lists used gear only as vintage") and "no year" in unknown
    assert mappers.eligibility_problems(payload(year="2000s"), TODAY)  # could be 2009
    assert mappers.eligibility_problems(payload(year="2006"), TODAY) == []
    assert mappers.eligibility_problems(payload(year="1990s"), TODAY) == []


def test_an_item_without_photos_is_refused_because_etsy_activates_only_with_one():
    assert mappers.eligibility_problems(payload(photos=()), TODAY) == [
        "Etsy activates a listing only with at least one photo"
    ]


def test_titles_keep_etsys_characters_and_limits():
    assert mappers.clean_title("1965 Fender Jaguar: 100% original & mint: rare & cool") == (
        "1965 Fender Jaguar: 100% original & mint rare cool"
    )
    assert mappers.clean_title("Gibson Les Paul ★ 1959 🎸") == "Gibson Les Paul 1959"
    long = mappers.clean_title("Vintage " * 40)
    assert len(long) <= mappers.TITLE_MAX and not long.endswith(" ")


def test_tags_are_at_most_13_of_at_most_20_characters_each_without_duplicates():
    tags = mappers.tags(
        payload(
            seo_keywords="offset, surf guitar, jaguar, JAGUAR, an extremely long keyword phrase here, "
            + ", ".join(f"k{i}" for i in range(20))
        )
    )
    assert len(tags) == 13
    assert all(len(tag) <= 20 for tag in tags)
    assert len({t.casefold() for t in tags}) == len(tags)
    assert tags[:3] == ["offset", "surf guitar", "jaguar"]


def test_the_draft_form_is_what_createdraftlisting_accepts(spec):
    form = mappers.draft_form(payload(), taxonomy_id=1234, shipping_profile_id=9, return_policy_id=8)
    checked = spec.check_request(
        "POST", "/v3/application/shops/1/listings", [], "application/x-www-form-urlencoded", urlencode(form).encode()
    )
    assert checked.errors == []
    assert checked.body["who_made"] == "someone_else"
    assert checked.body["when_made"] == "1960s"
    assert checked.body["price"] == 4200.0 and checked.body["quantity"] == 1
    assert checked.body["tags"] == mappers.tags(payload())


def test_a_form_with_a_made_up_when_made_is_refused_by_the_spec(spec):
    form = [(k, v if k != "when_made" else "1965") for k, v in mappers.draft_form(payload(), taxonomy_id=1)]
    checked = spec.check_request(
        "POST", "/v3/application/shops/1/listings", [], "application/x-www-form-urlencoded", urlencode(form).encode()
    )
    assert any("when_made" in e for e in checked.errors)


def test_the_update_form_carries_only_the_changed_fields(spec):
    assert mappers.update_form(payload(), {"price", "quantity"}) == []
    form = mappers.update_form(payload(title="1965 Fender Jaguar (refret)"), {"title"})
    assert form == [("title", "1965 Fender Jaguar (refret)")]
    checked = spec.check_request(
        "PATCH", "/v3/application/shops/1/listings/2", [], "application/x-www-form-urlencoded", urlencode(form).encode()
    )
    assert checked.errors == []


def test_the_inventory_body_is_what_updatelistinginventory_accepts_and_keeps_the_readiness_state(spec):
    current = {"products": [{"offerings": [{"readiness_state_id": 777}]}]}
    body = mappers.inventory_body(payload(quantity=3), readiness_state_id=5, current=current)
    checked = spec.check_request(
        "PUT", "/v3/application/listings/2/inventory", [], "application/json", __import__("json").dumps(body).encode()
    )
    assert checked.errors == []
    assert body["products"][0] == {
        "sku": "V-1965-JAG",
        "property_values": [],
        "offerings": [{"price": 4200.0, "quantity": 3, "is_enabled": True, "readiness_state_id": 777}],
    }
    sold_out = mappers.inventory_body(payload(quantity=0), readiness_state_id=5)
    assert sold_out["products"][0]["offerings"][0] == {
        "price": 4200.0,
        "quantity": 0,
        "is_enabled": False,
        "readiness_state_id": 5,
    }


def test_receipts_are_orders_with_paid_cancelled_and_refunded_mapped():
    receipt = {
        "receipt_id": 99,
        "status": "paid",
        "created_timestamp": 1_760_000_000,
        "updated_timestamp": 1_760_000_100,
        "name": "Ann Buyer",
        "buyer_email": "ann@example.com",
        "first_line": "1 Main St",
        "city": "Austin",
        "state": "TX",
        "zip": "78701",
        "country_iso": "US",
        "subtotal": {"amount": 420000, "divisor": 100, "currency_code": "USD"},
        "grandtotal": {"amount": 425000, "divisor": 100, "currency_code": "USD"},
        "total_shipping_cost": {"amount": 5000, "divisor": 100, "currency_code": "USD"},
        "transactions": [
            {
                "listing_id": 15,
                "sku": "V-1",
                "quantity": 1,
                "price": {"amount": 420000, "divisor": 100, "currency_code": "USD"},
            }
        ],
    }
    order = mappers.order_seen(receipt)
    assert (order.external_id, order.status, order.total, order.shipping, order.currency) == (
        "99", "paid", Decimal("4250.00"), Decimal("50.00"), "USD",
    )  # fmt: skip
    [line] = order.lines
    assert (line.sku, line.external_listing_id, line.quantity, line.unit_price) == ("V-1", "15", 1, Decimal("4200.00"))
    assert (order.ship_city, order.ship_postal_code, order.buyer_email) == ("Austin", "78701", "ann@example.com")
    for status, expected in [
        ("canceled", "cancelled"),
        ("fully refunded", "cancelled"),
        ("partially refunded", "paid"),
        ("completed", "paid"),
        ("open", "pending"),
        ("payment processing", "pending"),
    ]:
        assert mappers.order_seen({**receipt, "status": status}).status == expected


def test_listings_read_back_in_the_contracts_states():
    raw = {"listing_id": 5, "state": "active", "quantity": 1, "skus": ["V-1"], "title": "T",
           "price": {"amount": 1999, "divisor": 100, "currency_code": "USD"}}  # fmt: skip
    seen = mappers.listing_seen(raw)
    assert (seen.external_id, seen.sku, seen.state, seen.quantity, seen.price) == (
        "5",
        "V-1",
        "live",
        1,
        Decimal("19.99"),
    )
    assert [mappers.listing_seen({**raw, "state": s}).state for s in mappers.ALL_LISTING_STATES] == [
        "live", "draft", "ended", "sold", "ended",
    ]  # fmt: skip
    assert mappers.listing_seen({**raw, "state": "inactive"}).quantity == 0
