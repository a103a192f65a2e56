"""The Etsy client against the loopback Etsy: headers as the spec says, every request and answer
checked against the OpenAPI file, typed errors, paging, 429s waited out, and the per-second and
per-day budgets shared through the cache."""

from __future__ import annotations

import time

import pytest

from channels_etsy.client import CallBudget, DailyBudgetLow, EtsyClient, StaticToken
from channels_etsy.sandbox import DEFAULT_KEYSTRING, DEFAULT_SHARED_SECRET, SHOP_ID, EtsySandbox
from channels_etsy.sandbox.contract import EtsyContract
from inventory.channels import ListingNotFound, PermanentChannelError, RateLimited, TransientChannelError
from tests.contracts import contract_path


@pytest.fixture(scope="module")
def spec() -> EtsyContract:
    return EtsyContract(contract_path("etsy", "etsy-openapi-v3.json"))


@pytest.fixture
def etsy(spec):
    with EtsySandbox(spec=spec) as sandbox:
        yield sandbox
        assert sandbox.answer_violations == []  # every answer the client read was in the spec's shapes


def client(etsy: EtsySandbox, **kwargs) -> EtsyClient:
    token = StaticToken(etsy.grant()["access_token"])
    return EtsyClient(etsy.base_url, DEFAULT_KEYSTRING, DEFAULT_SHARED_SECRET, token=token, timeout=2.0, **kwargs)


def draft(c: EtsyClient, title: str = "1965 Fender Jaguar") -> dict:
    form = [("quantity", "1"), ("title", title), ("description", "d"), ("price", "10.00"),
            ("who_made", "someone_else"), ("when_made", "1960s"), ("taxonomy_id", "1")]  # fmt: skip
    return c.create_draft_listing(SHOP_ID, form)


def test_every_call_sends_the_key_as_keystring_colon_secret_and_the_bearer_token(etsy):
    c = client(etsy)
    assert c.ping() == {"application_id": 424242}
    assert c.me()["shop_id"] == SHOP_ID
    assert c.session.headers["x-api-key"] == f"{DEFAULT_KEYSTRING}:{DEFAULT_SHARED_SECRET}"
    assert "***" in repr(c) and DEFAULT_SHARED_SECRET not in repr(c)
    # a key sent the older way (the keystring alone) is refused by the spec's rule
    bare = EtsyClient(etsy.base_url, DEFAULT_KEYSTRING, "x", token=StaticToken("t"))
    bare.session.headers["x-api-key"] = DEFAULT_KEYSTRING
    with pytest.raises(PermanentChannelError) as refused:
        bare.ping()
    assert refused.value.status == 401


def test_every_request_the_client_can_send_is_valid_against_the_spec(etsy):
    c = client(etsy)
    c.ping()
    c.me()
    listing = draft(c)
    lid = listing["listing_id"]
    inventory = c.get_inventory(lid)
    inventory["products"][0].pop("product_id")
    body = {"products": [{"sku": "V-1", "property_values": [], "offerings": [
        {"price": 10.0, "quantity": 2, "is_enabled": True, "readiness_state_id": None}]}],
        "price_on_property": [], "quantity_on_property": [], "sku_on_property": []}  # fmt: skip
    c.update_inventory(lid, body)
    c.upload_image(SHOP_ID, lid, image=b"\xff\xd8jpeg", filename="a.jpg", rank=1, alt_text="front")
    [image] = c.listing_images(lid)
    c.update_listing(SHOP_ID, lid, [("title", "1965 Fender Jaguar (refret)"), ("tags", "jaguar"), ("tags", "offset")])
    c.update_listing(SHOP_ID, lid, [("state", "active")])
    c.get_listing(lid)
    list(c.shop_listings(SHOP_ID, "active"))
    c.update_listing(SHOP_ID, lid, [("state", "inactive")])
    c.delete_image(SHOP_ID, lid, image["listing_image_id"])
    list(c.receipts_modified_since(SHOP_ID, int(time.time()) - 60))
    receipt = etsy.store.sell(str(etsy.store.add_listing("S", title="t", price="5")["listing_id"]))
    assert c.receipt(SHOP_ID, receipt["receipt_id"])["receipt_id"] == receipt["receipt_id"]
    c.create_receipt_shipment(SHOP_ID, receipt["receipt_id"], tracking_code="1Z999", carrier_name="ups")
    c.shop(SHOP_ID)
    c.shipping_profile(SHOP_ID, 90001)
    c.return_policy(SHOP_ID, 91001)
    other = draft(c, "A draft to delete")
    c.delete_listing(other["listing_id"])
    # Then the sandbox found nothing to object to in any of them, form fields and multipart included
    assert etsy.violations == []
    operations = {r.operation_id for r in etsy.requests()}
    assert operations >= {
        "createDraftListing", "getListingInventory", "updateListingInventory", "uploadListingImage", "getListingImages",
        "updateListing", "getListing", "getListingsByShop", "deleteListingImage", "getShopReceipts", "getShopReceipt",
        "createReceiptShipment", "getShop", "getShopShippingProfile", "getShopReturnPolicy", "deleteListing", "ping",
        "getMe",
    }  # fmt: skip
    assert all(r.status < 400 for r in etsy.requests())
    assert etsy.listing(lid)["state"] == "inactive" and etsy.images(lid) == []
    assert etsy.store.receipts[receipt["receipt_id"]]["shipments"][0]["tracking_code"] == "1Z999"


def test_a_request_outside_the_spec_is_refused_with_the_reason(etsy):
    c = client(etsy)
    with pytest.raises(PermanentChannelError) as refused:
        c.create_draft_listing(SHOP_ID, [("quantity", "1"), ("title", "x"), ("colour", "red")])
    assert refused.value.status == 400
    assert "colour: not a field" in refused.value.message and "'price' is a required property" in refused.value.message
    assert len(etsy.violations) >= 2


def test_errors_are_typed(etsy):
    c = client(etsy)
    with pytest.raises(ListingNotFound):
        c.get_listing(999)
    with pytest.raises(ListingNotFound):
        c.get_listing("not-an-id")  # never sent
    etsy.fail_next("error", path_contains="/listings/")
    with pytest.raises(TransientChannelError) as failed:
        c.get_listing(999)
    assert failed.value.status == 500
    etsy.set_faults(timeout_delay=2.5)
    etsy.fail_next("timeout", method="POST")
    with pytest.raises(TransientChannelError, match="may have been applied"):
        draft(c)
    assert len(etsy.listings()) == 1  # applied, the answer lost: the caller must look it up before repeating


def test_offset_paging_reads_every_page(etsy):
    for n in range(230):
        etsy.store.add_listing(f"P-{n}", title=f"Listing {n}", price="10")
    c = client(etsy)
    pages = list(c.shop_listings(SHOP_ID, "active"))
    assert [len(p.results) for p in pages] == [100, 100, 30]
    assert [r.query["offset"] for r in etsy.requests("getListingsByShop")] == [0, 100, 200]
    assert len({raw["listing_id"] for p in pages for raw in p.results}) == 230


def test_a_429_is_waited_out_and_retried(etsy):
    etsy.set_faults(retry_after=0.2)
    etsy.fail_next("rate_limit", count=2)
    c = client(etsy)
    started = time.monotonic()
    assert c.ping()["application_id"] == 424242
    assert time.monotonic() - started >= 0.4
    assert c.rate_limited == 2
    assert [r.status for r in etsy.requests()] == [429, 429, 200]


def test_a_429_asking_for_long_is_raised_for_the_engine_to_schedule(etsy):
    etsy.set_faults(retry_after=30)
    etsy.fail_next("rate_limit")
    with pytest.raises(RateLimited) as limited:
        client(etsy).ping()
    assert limited.value.retry_after == 30


def test_the_per_second_budget_is_shared_by_every_client_of_the_app(spec):
    with EtsySandbox(spec=spec, per_second=5) as etsy:
        one, two = client(etsy), client(etsy)
        started = time.monotonic()
        for _ in range(6):
            one.ping()
            two.ping()
        elapsed = time.monotonic() - started
        # Then 12 calls of two clients fit the sandbox's 5 a second without a single 429
        assert [r.status for r in etsy.requests()] == [200] * 12
        assert elapsed >= 1.0  # at least two one-second windows were needed
        assert one.budget.limit_per_second == 5  # learnt from x-limit-per-second


def test_when_the_day_runs_low_only_sale_critical_calls_go_out(etsy):
    etsy.remaining_today = 12
    low = []
    c = client(etsy, budget=CallBudget(DEFAULT_KEYSTRING, reserve=10, on_low=low.append))
    c.ping()  # Etsy now says 11 remain today
    assert c.budget.remaining_today == 11
    listing = etsy.store.add_listing("D", title="t", price="5")
    assert c.get_listing(listing["listing_id"])["listing_id"] == listing["listing_id"]  # a read-back: critical
    assert c.budget.remaining_today == 10
    with pytest.raises(DailyBudgetLow) as waiting:
        draft(c)  # publishing is not
    assert waiting.value.retry_after == 900 and low == [10]
    assert etsy.requests("createDraftListing") == []
    c.update_listing(SHOP_ID, listing["listing_id"], [("state", "inactive")], critical=True)  # an end still goes
    assert etsy.listing(listing["listing_id"])["state"] == "inactive"
