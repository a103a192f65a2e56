"""eBay under the engine (converge, pull, import) and in the admin, without a worker: the services are
called as the tasks call them."""

from decimal import Decimal

import pytest

from channels_ebay import sync
from channels_ebay.models import EbayConnection, EbayLegacyListing, EbayListingDetail
from channels_ebay.sandbox import EbaySandbox
from inventory.models import Alert, AlertKind, ChannelListing, Item, ListingState, Order
from inventory.services import Actor, item_update
from inventory.services.listings import listing_converge, listings_publish
from inventory.services.sync import connection_pull
from tests.ebay_market import EbayMarket
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")
ADD_URL = "/admin/channels_ebay/ebayconnection/add/"


@pytest.fixture
def market(account):
    with EbayMarket(account, "eBay") as running:
        yield running


def converge_all() -> list[str]:
    return [listing_converge(pk) for pk in ChannelListing.objects.values_list("pk", flat=True)]


def listed(account, market, **fields) -> ChannelListing:
    item = make_item(account, **fields)
    item.photos.create(url="https://cdn.example.com/x.jpg", position=0)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[market.connection.pk])
    converge_all()
    listing = ChannelListing.objects.get(item=item)
    assert listing.actual_state == ListingState.LIVE, listing.last_error
    market.reset_log()
    return listing


def test_an_edit_pushes_only_what_changed_through_the_right_call(account, market):
    listing = listed(account, market, n=1, sku="EN-1", title="Fender Deluxe Reverb", price=Decimal("1500.00"))

    item_update(item_id=listing.item_id, actor=STAFF, changes={"price": Decimal("1450.00")})
    assert converge_all() == ["revised price"]
    writes = market.writes()
    assert writes == [type(writes[0])("revise", listing.external_id, {"price": Decimal("1450.00")}, 200)]
    assert market.sandbox.calls("POST", "/sell/inventory/v1/bulk_update_price_quantity") == 1

    market.reset_log()
    item_update(item_id=listing.item_id, actor=STAFF, changes={"title": "Fender Deluxe Reverb 1965"})
    assert converge_all() == ["revised title"]
    assert [(w.kind, w.fields) for w in market.writes()] == [
        ("revise", {"title": "Fender Deluxe Reverb 1965", "quantity": 1})
    ]
    assert market.sandbox.calls("POST", "/sell/inventory/v1/bulk_update_price_quantity") == 0
    assert sync.revisions_left(market.connection, "EN-1") == 248


def test_a_listing_out_of_revisions_says_so_and_sends_nothing(account, market):
    listing = listed(account, market, n=2, sku="EN-2")
    EbayListingDetail.objects.filter(sku="EN-2").update(revision_day=sync.ebay_today(), revisions_today=250)

    item_update(item_id=listing.item_id, actor=STAFF, changes={"price": Decimal("99.00")})
    [outcome] = converge_all()
    assert outcome.startswith("error: eBay allows 250 revisions")

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ERROR
    assert "250 revisions per listing per day" in listing.last_error
    assert market.writes() == []
    alert = Alert.objects.get(kind=AlertKind.SYNC_ERROR, listing=listing)
    assert "after midnight Pacific time" in alert.message


def test_a_request_error_is_shown_on_the_listing_with_ebays_message_and_field(account, market):
    market.connection.category_ids = {"Amps": "619"}
    market.connection.save()
    item = make_item(account, n=3, sku="EN-3", category="Amps")
    item.photos.create(url="https://cdn.example.com/x.jpg", position=0)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    converge_all()

    listing = ChannelListing.objects.get(item=item)
    assert listing.actual_state == ListingState.ERROR
    assert "eBay 25005: Category 619 is not a leaf category. (field: categoryId)" in listing.last_error
    assert len(market.offered("EN-3")) == 1  # the offer exists (unpublished): the fix publishes it, no second one

    # The connection check names the mapping to fix, from eBay's own refusal.
    result = sync.check(market.connection)
    [categories] = [step for step in result.steps if step.label == "Categories"]
    assert categories.ok is False
    assert "Amps=619" in categories.message and "sub-categories (a leaf)" in categories.message


def test_a_listing_made_with_another_inventory_tool_is_imported_for_review(account, market):
    market.list_directly("EN-ELSEWHERE", title="Orange Rockerverb", price="1900.00")

    connection_pull(connection_id=market.connection.pk)

    item = Item.objects.get(account=account, sku="EN-ELSEWHERE")
    assert (item.needs_review, item.title, item.price) == (True, "Orange Rockerverb", Decimal("1900.00"))
    listing = ChannelListing.objects.get(item=item)
    assert (listing.imported, listing.actual_state) == (True, ListingState.LIVE)
    assert market.writes() == []


def test_a_sale_of_a_listing_made_on_ebays_website_is_reported_with_what_to_do(account, market):
    store = market.sandbox.store
    legacy_id = store.add_legacy_listing("EN-WEB", title="Gretsch 6120", price="3100.00")
    with store.lock:  # the website listing sells: eBay reports the order (its listing stays invisible)
        store.offers["tmp"] = {
            "offerId": "tmp",
            "sku": "EN-WEB",
            "marketplaceId": "EBAY_US",
            "format": "FIXED_PRICE",
            "availableQuantity": 1,
            "pricingSummary": {"price": {"value": "3100.00", "currency": "USD"}},
            "status": "PUBLISHED",
            "listing": {"listingId": legacy_id, "listingStatus": "ACTIVE", "soldQuantity": 0},
        }
        store.items["EN-WEB"] = {
            "sku": "EN-WEB",
            "product": {"title": "Gretsch 6120"},
            "availability": {"shipToLocationAvailability": {"quantity": 1}},
        }
    order = store.sell("EN-WEB")
    with store.lock:
        del store.offers["tmp"], store.items["EN-WEB"]
        store.legacy_listings[legacy_id] = {"sku": "EN-WEB", "title": "Gretsch 6120", "price": "3100.00", "quantity": 1}

    connection_pull(connection_id=market.connection.pk)

    legacy = EbayLegacyListing.objects.get(connection=market.connection)
    assert (legacy.listing_id, legacy.sku, legacy.first_order_id) == (legacy_id, "EN-WEB", order["orderId"])
    assert legacy.what_to_do.startswith("Migrate it (action below)")
    assert Order.objects.get(external_id=order["orderId"]).note == "Lines not matched to any item: EN-WEB."

    from channels_ebay.services import legacy_listings_migrate

    assert legacy_listings_migrate(market.connection, [legacy_id]) == [
        f"{legacy_id}: migrated (SKU EN-WEB); the next pull imports it"
    ]
    legacy.refresh_from_db()
    assert legacy.migrated_at is not None
    connection_pull(connection_id=market.connection.pk)
    assert ChannelListing.objects.filter(connection=market.connection, item__sku="EN-WEB", imported=True).exists()


# --- admin ---------------------------------------------------------------------------------------


def form_data(sandbox, **changes) -> dict:
    fields = sandbox.connection_fields()
    data = {
        "name": "eBay US",
        "enabled": "on",
        "priority": "40",
        "client_id": fields["client_id"],
        "client_secret": fields["client_secret"],
        "refresh_token": fields["refresh_token"],
        "api_base_url": fields["api_base_url"],
        "token_url": fields["token_url"],
        "timeout_seconds": "15",
        "marketplace_id": "EBAY_US",
        "merchant_location_key": "main-warehouse",
        "fulfillment_policy_id": "6100001",
        "payment_policy_id": "6200001",
        "return_policy_id": "6300001",
        "category_ids": '{"Electric Guitars": "33034"}',
        "condition_ids": "{}",
        "verification_token": "",
        "endpoint_url": "",
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "3600",
        "stock_buffer_percent": "0",
    }
    data.update(changes)
    return data


def test_staff_connect_ebay_and_the_secrets_are_never_shown_back(admin_client_for, staff, account):
    client = admin_client_for(staff)
    with EbaySandbox() as sandbox:
        response = client.post(ADD_URL, form_data(sandbox))
        assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
        connection = EbayConnection.objects.get()
        assert (connection.account, connection.channel, connection.client_secret) == (
            account,
            "ebay",
            sandbox.client_secret,
        )

        page = client.get(f"/admin/channels_ebay/ebayconnection/{connection.pk}/change/").content.decode()
        assert sandbox.client_secret not in page and sandbox.refresh_token not in page
        assert "set, ends …" in page

        # blank keeps the stored secrets
        response = client.post(
            f"/admin/channels_ebay/ebayconnection/{connection.pk}/change/",
            form_data(sandbox, client_secret="", refresh_token="", name="eBay US main"),
        )
        assert response.status_code == 302
        connection.refresh_from_db()
        assert (connection.name, connection.client_secret, connection.refresh_token) == (
            "eBay US main",
            sandbox.client_secret,
            sandbox.refresh_token,
        )

        response = client.post(
            "/admin/channels_ebay/ebayconnection/",
            {"action": "check_connection", "_selected_action": [connection.pk]},
            follow=True,
        )
        message = [str(m) for m in response.context["messages"]][-1]
        assert message == (
            "eBay US main: Everything works: the refresh token gives an access token; location main-warehouse exists; "
            "fulfillment policy 6100001 exists on EBAY_US; payment policy 6200001 exists on EBAY_US; "
            "return policy 6300001 exists on EBAY_US; 1 mapped (eBay confirms a leaf category when the offer is "
            "published)"
        )


def test_the_serializer_keeps_secrets_write_only(account):
    from channels_ebay.serializers import EbayConnectionSerializer

    connection = EbayConnection.objects.create(
        account=account,
        name="eBay",
        client_id="app",
        client_secret="secret-0123456789",
        refresh_token="v^1.1#r-0123456789",
    )
    data = EbayConnectionSerializer(connection).data
    assert "client_secret" not in data and "refresh_token" not in data
    assert data["secrets"]["client_secret"] == "set, ends …6789"
    assert data["marketplace_id"] == "EBAY_US" and data["channel"] == "ebay"
    assert sync.DEFAULT_PRIORITY == 40


def test_migration_from_the_admin_asks_first_then_migrates(admin_client_for, staff, account, market):
    legacy_id = market.sandbox.store.add_legacy_listing("EN-OLD", title="Vox AC15", price="900.00")
    row = EbayLegacyListing.objects.create(
        account=account, connection=market.connection, listing_id=legacy_id, sku="EN-OLD"
    )
    client = admin_client_for(staff)
    url = "/admin/channels_ebay/ebaylegacylisting/"

    asked = client.post(url, {"action": "migrate_selected", "_selected_action": [row.pk]})
    assert asked.status_code == 200 and "one way" in asked.content.decode()
    assert market.sandbox.calls("POST", "/sell/inventory/v1/bulk_migrate_listing") == 0

    done = client.post(url, {"action": "migrate_selected", "_selected_action": [row.pk], "confirm": "yes"}, follow=True)
    assert [str(m) for m in done.context["messages"]] == [
        f"eBay: {legacy_id}: migrated (SKU EN-OLD); the next pull imports it"
    ]
    row.refresh_from_db()
    assert row.migrated_at is not None
    assert len(market.offered("EN-OLD")) == 1


def test_an_unpaid_order_reserves_payment_commits_and_a_cancellation_releases(account, market):
    listing = listed(account, market, n=5, sku="EN-PAY", quantity=2, condition="brand_new")
    store = market.sandbox.store

    order = store.sell("EN-PAY", 1, paid=False)
    connection_pull(connection_id=market.connection.pk)
    item = Item.objects.get(pk=listing.item_id)
    recorded = Order.objects.get(external_id=order["orderId"])
    assert (recorded.status, item.quantity_on_hand, item.quantity_locked) == ("open", 2, 1)

    store.set_order(order["orderId"], cancelState="CANCELED")
    connection_pull(connection_id=market.connection.pk)
    item.refresh_from_db()
    recorded.refresh_from_db()
    assert (recorded.status, item.quantity_on_hand, item.quantity_locked) == ("cancelled", 2, 0)

    second = store.sell("EN-PAY", 1, paid=False)
    connection_pull(connection_id=market.connection.pk)
    store.set_order(second["orderId"], orderPaymentStatus="PAID")
    connection_pull(connection_id=market.connection.pk)
    item.refresh_from_db()
    assert (Order.objects.get(external_id=second["orderId"]).status, item.quantity_on_hand, item.quantity_locked) == (
        "completed",
        1,
        0,
    )


def test_an_ebay_connection_over_the_api_secrets_write_only_check_in_plain_words(api, monkeypatch):
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    monkeypatch.setattr("inventory.tasks.enqueue_sync_request", lambda *a, **k: None)
    with EbaySandbox() as sandbox:
        fields = sandbox.connection_fields()
        body = {"channel": "ebay", "name": "eBay US", **fields, "category_ids": {"Amps": "38072"}}
        created = api.post("/api/v1/connections/", body, format="json")
        assert created.status_code == 201, created.content
        data = created.json()
        text = created.content.decode()
        assert fields["client_secret"] not in text and fields["refresh_token"] not in text
        assert set(data["secrets"]) == {"client_secret", "refresh_token", "verification_token"}
        assert (data["channel"], data["priority"], data["marketplace_id"]) == ("ebay", 40, "EBAY_US")

        checked = api.post(f"/api/v1/connections/{data['id']}/check/").json()
        assert checked["ok"] is True, checked

        kept = api.patch(f"/api/v1/connections/{data['id']}/", {"client_secret": "", "name": "eBay"}, format="json")
        assert kept.status_code == 200, kept.content
        assert EbayConnection.objects.get(pk=data["id"]).client_secret == fields["client_secret"]


def test_the_ebay_admin_pages_render(admin_client_for, staff, account, market):
    client = admin_client_for(staff)
    EbayLegacyListing.objects.create(account=account, connection=market.connection, listing_id="1101")
    for url in (
        "/admin/channels_ebay/ebayconnection/",
        f"/admin/channels_ebay/ebayconnection/{market.connection.pk}/change/",
        "/admin/channels_ebay/ebaylistingdetail/",
        "/admin/channels_ebay/ebaylegacylisting/",
        ADD_URL,
    ):
        assert client.get(url).status_code == 200, url


def test_a_relist_withdraws_and_publishes_the_same_offer_again(account, market):
    from inventory.services.listings import listings_relist

    listing = listed(account, market, n=6, sku="EN-RELIST")
    first_url = listing.external_url

    listings_relist(account=account, item_ids=[listing.item_id], actor=STAFF)
    outcome = converge_all()

    listing.refresh_from_db()
    assert outcome == ["ended; relisting; adopted"]
    assert (listing.actual_state, listing.external_id) == (
        ListingState.LIVE,
        market.offered("EN-RELIST")[0].external_id,
    )
    assert listing.external_url != first_url  # a new eBay item number for the same offer
    assert [w.kind for w in market.writes()] == ["end", "publish"]
    assert len(market.offered("EN-RELIST")) == 1
