"""An SEO edit reaches live listings as an SEO-only revise, through the engine and the loopback
Reverb and Shopify: only the text each channel shows of it is sent, nothing when it shows none,
never a full replace or a relist; and the read-back audit takes a channel's own cut as ours."""

from __future__ import annotations

import pytest

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from channels_shopify.sandbox import ShopifySandbox
from inventory.models import ChannelListing, ItemEdit, ItemPhoto, ListingState
from inventory.services import Actor, item_update
from inventory.services.listings import listing_converge, listings_publish
from inventory.services.seo import Operation, items_seo_bulk
from inventory.services.sync import listings_audit
from tests.factories import make_item
from tests.shopify_market import shopify_connection

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")
# 79 characters: whatever the tests add after it falls beyond eBay's 80 (cut at the word)
LONG_SEO_TITLE = "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell, rare"
EBAY_TITLE = LONG_SEO_TITLE


@pytest.fixture
def reverb():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture
def shop():
    with ShopifySandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_clients():
    reverb_sync._clients.__dict__.clear()


@pytest.fixture
def listed(account, reverb, shop):
    """One item live on Reverb and on Shopify, converged by the engine."""
    on_reverb = ReverbConnection.objects.create(
        account=account, name="Reverb", api_token=DEFAULT_TOKEN, base_url=reverb.base_url, timeout_seconds=2
    )
    on_shopify = shopify_connection(account, shop)
    item = make_item(account, n=1, sku="SEO-7001", title="Fender Stratocaster", brand="Fender", model="Stratocaster")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    listings = {}
    for connection in (on_reverb, on_shopify):
        listing = ChannelListing.objects.get(item=item, connection=connection)
        assert "published" in listing_converge(listing.pk)
        listing.refresh_from_db()
        listings[connection.channel] = listing
    reverb.reset_log()
    shop.reset_log()
    return item, listings


def converge(listings) -> dict[str, str]:
    return {name: listing_converge(listing.pk) for name, listing in listings.items()}


def reverb_writes(reverb):
    return [(r.method, r.path, r.body) for r in reverb.requests() if r.is_write]


def test_a_new_seo_title_is_sent_as_the_title_alone(listed, reverb, shop):
    item, listings = listed

    item_update(item_id=item.pk, actor=STAFF, changes={"seo_title": "1964 Fender Stratocaster Sunburst, pre-CBS"})
    outcomes = converge(listings)

    assert outcomes == {"reverb": "revised seo_title", "shopify": "revised seo_title"}
    external = listings["reverb"].external_id
    assert reverb_writes(reverb) == [
        ("PUT", f"/listings/{external}", {"title": "1964 Fender Stratocaster Sunburst, pre-CBS"})
    ]
    assert reverb.listing(external)["title"] == "1964 Fender Stratocaster Sunburst, pre-CBS"
    [update] = shop.requests("ProductUpdate")
    assert update.variables["product"] == {
        "id": listings["shopify"].external_id,
        "seo": {"title": "1964 Fender Stratocaster Sunburst, pre-CBS", "description": ""},
    }
    assert shop.calls("ProductSet") == 0  # no full replace
    assert shop.product(listings["shopify"].external_id)["seo"]["title"] == "1964 Fender Stratocaster Sunburst, pre-CBS"
    for listing in listings.values():
        listing.refresh_from_db()
        assert listing.actual_state == ListingState.LIVE and not listing.needs_push
    [edit] = ItemEdit.objects.filter(item=item)
    assert (edit.field, edit.old_value, edit.source) == ("seo_title", "", "test")


def test_an_seo_description_goes_to_shopify_only_and_reverb_gets_no_call(listed, reverb, shop):
    item, listings = listed

    item_update(item_id=item.pk, actor=STAFF, changes={"seo_description": "All original 1964 Strat with its case."})
    outcomes = converge(listings)

    assert outcomes["reverb"] == "revised seo_description"  # recorded as pushed: nothing Reverb shows changed
    assert reverb.calls() == 0
    [update] = shop.requests("ProductUpdate")
    assert update.variables["product"]["seo"] == {
        "title": "Fender Stratocaster",
        "description": "All original 1964 Strat with its case.",
    }
    assert shop.calls("ProductSet") == 0 and shop.calls("VariantsBulkUpdate") == 0 and shop.calls("InventorySet") == 0
    # and a second pass sends nothing at all
    reverb.reset_log()
    shop.reset_log()
    assert converge(listings) == {"reverb": "in sync", "shopify": "in sync"}
    assert reverb.calls() == shop.calls() == 0


def test_a_bulk_keyword_reaches_shopify_tags_and_nothing_on_reverb(account, listed, reverb, shop):
    item, listings = listed

    result = items_seo_bulk(
        account=account,
        item_ids=[item.pk],
        operation=Operation.APPEND_KEYWORD,
        value="pre-CBS",
        actor=STAFF,
        apply=True,
    )
    converge(listings)

    assert result.listings_marked == 2
    assert reverb.calls() == 0
    [update] = shop.requests("ProductUpdate")
    assert update.variables["product"] == {"id": listings["shopify"].external_id, "tags": ["pre-CBS", "excellent"]}


def test_the_audit_takes_the_channels_seo_title_as_ours_not_as_drift(account, listed, reverb):
    item, listings = listed
    item_update(item_id=item.pk, actor=STAFF, changes={"seo_title": "1964 Fender Stratocaster Sunburst"})
    converge(listings)

    report = listings_audit(connection_id=listings["reverb"].connection_id, apply=False).report

    assert report["drifted"] == []


# --- eBay: SEO edits spend a revision only when the 80-character title it shows changes ----------------


@pytest.fixture
def ebay():
    from channels_ebay.sandbox import EbaySandbox

    with EbaySandbox() as running:
        yield running


@pytest.fixture
def on_ebay(account, ebay):
    from channels_ebay.models import EbayConnection

    connection = EbayConnection.objects.create(
        account=account,
        name="eBay main",
        category_ids={"Electric Guitars": "33034"},
        verification_token="v" * 40,
        endpoint_url="https://shop.example.com/hooks/ebay/x/",
        **ebay.connection_fields(),
    )
    item = make_item(
        account, n=1, sku="SEO-EB-1", title="Fender Stratocaster", category="Electric Guitars", condition="excellent"
    )
    ItemPhoto.objects.create(item=item, url="https://cdn.example.com/strat.jpg", position=0)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = ChannelListing.objects.get(item=item, connection=connection)
    assert "published" in listing_converge(listing.pk)
    ebay.reset_log()
    return item, listing


def test_ebay_gets_no_call_for_an_seo_description_or_keywords(on_ebay, ebay):
    from channels_ebay import sync as ebay_sync

    item, listing = on_ebay
    item_update(item_id=item.pk, actor=STAFF, changes={"seo_description": "Pre-CBS.", "seo_keywords": "vintage"})

    assert listing_converge(listing.pk) == "revised seo_description,seo_keywords"
    assert ebay.api_calls() == []
    assert ebay_sync.revisions_left(listing.connection, "SEO-EB-1") == 250


def test_ebay_spends_one_revision_for_a_new_title_and_none_when_only_its_cut_tail_changes(on_ebay, ebay):
    from channels_ebay import sync as ebay_sync

    item, listing = on_ebay
    item_update(item_id=item.pk, actor=STAFF, changes={"seo_title": LONG_SEO_TITLE + " with case"})
    listing_converge(listing.pk)

    [put] = [r for r in ebay.api_calls() if r.is_write]
    assert put.method == "PUT" and put.body["product"]["title"] == EBAY_TITLE
    assert ebay_sync.revisions_left(listing.connection, "SEO-EB-1") == 249
    ebay.reset_log()

    # beyond character 80: what eBay shows is the same, so it is read and not written
    item_update(item_id=item.pk, actor=STAFF, changes={"seo_title": LONG_SEO_TITLE + " with its original case"})
    assert listing_converge(listing.pk) == "revised seo_title"
    assert [r for r in ebay.api_calls() if r.is_write] == []
    assert ebay_sync.revisions_left(listing.connection, "SEO-EB-1") == 249


def test_a_listings_own_title_wins_over_the_seo_title_on_that_shop(listed, reverb):
    item, listings = listed
    item_update(item_id=item.pk, actor=STAFF, changes={"seo_title": "1964 Fender Stratocaster Sunburst"})
    ChannelListing.objects.filter(pk=listings["reverb"].pk).update(title_override="Strat '64 (Reverb only)")
    from inventory.services.listings import listing_payload

    payload = listing_payload(ChannelListing.objects.select_related("item", "connection").get(pk=listings["reverb"].pk))
    assert reverb_sync.mappers.listing_body(payload)["title"] == "Strat '64 (Reverb only)"
