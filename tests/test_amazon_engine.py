"""The Amazon channel driven by the inventory engine's own services, against the loopback SP-API:
the engine lists, a pending order reserves and its cancellation releases, a withdrawal ends by
quantity 0, an item without an ASIN fails visibly, a notification is stored once."""

from __future__ import annotations

import json

import pytest

from channels_amazon import sync
from channels_amazon.models import AmazonConnection
from channels_amazon.sandbox import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SELLER_ID,
    AmazonSandbox,
)
from inventory.models import ChannelListing, ListingState, Order, WebhookEvent
from inventory.services import Actor
from inventory.services.listings import listing_converge, listings_end, listings_publish
from inventory.services.sync import connection_pull, webhook_process, webhook_receive
from inventory.states import ItemState
from tests.amazon_market import give_asin
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()


@pytest.fixture
def sandbox():
    with AmazonSandbox(rate_scale=100.0) as box:
        yield box
    assert box.violations == []


@pytest.fixture
def connection(account, sandbox):
    return AmazonConnection.objects.create(
        account=account,
        name="Amazon",
        seller_id=DEFAULT_SELLER_ID,
        lwa_client_id=DEFAULT_CLIENT_ID,
        lwa_client_secret=DEFAULT_CLIENT_SECRET,
        refresh_token=DEFAULT_REFRESH_TOKEN,
        api_base_url=sandbox.base_url,
        token_url=sandbox.token_url,
        default_product_type="GUITARS",
        timeout_seconds=2,
    )


def list_item(account, connection, sku="AE-100", asin=True):
    item = make_item(account, n=1, sku=sku)
    if asin:
        give_asin(item)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = ChannelListing.objects.get(item=item, connection=connection)
    listing_converge(listing.pk)
    listing.refresh_from_db()
    return item, listing


def test_the_engine_lists_an_item_on_amazon_once(account, connection, sandbox):
    _item, listing = list_item(account, connection)
    assert (listing.actual_state, listing.external_id) == (ListingState.LIVE, "AE-100")
    assert listing.external_url == "https://www.amazon.com/dp/B07N4M94X4"
    assert len(sandbox.listings()) == 1


def test_an_item_without_an_asin_fails_visibly_with_how_to_find_one(account, connection, sandbox):
    _item, listing = list_item(account, connection, sku="AE-NOASIN", asin=False)
    assert listing.actual_state == ListingState.ERROR
    assert "has no ASIN" in listing.last_error and "/dp/" in listing.last_error
    assert sandbox.listings() == []


def test_a_pending_order_reserves_and_its_cancellation_releases(account, connection, sandbox):
    item, _listing = list_item(account, connection)
    order = sandbox.simulate_sale("AE-100", status="PENDING", notify=False)

    connection_pull(connection_id=connection.pk)
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked) == (1, 1)  # reserved, not sold yet
    assert Order.objects.get(external_id=order["orderId"]).status != "cancelled"

    sandbox.update_order(order["orderId"], "CANCELLED", notify=False)
    connection_pull(connection_id=connection.pk)
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked) == (1, 0)
    assert Order.objects.get(external_id=order["orderId"]).status == "cancelled"


def test_an_unshipped_order_commits_the_sale(account, connection, sandbox):
    item, _listing = list_item(account, connection)
    sandbox.simulate_sale("AE-100", notify=False)
    connection_pull(connection_id=connection.pk)
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand, item.sold_on_id) == (ItemState.SOLD, 0, connection.pk)


def test_withdrawing_ends_by_quantity_zero_and_reads_it_back(account, connection, sandbox):
    item, listing = list_item(account, connection)
    sandbox.reset_log()
    listings_end(account=account, item_ids=[item.pk], actor=STAFF)
    listing_converge(listing.pk)
    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ENDED and listing.ended_at is not None
    assert sandbox.listing("AE-100")["fulfillmentAvailability"][0]["quantity"] == 0
    assert [r.operation for r in sandbox.requests()] == ["getListingsItem", "patchListingsItem", "getListingsItem"]


def test_a_notification_posted_twice_is_stored_once_and_becomes_one_order(account, connection, sandbox, monkeypatch):
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: None)
    list_item(account, connection)
    order = sandbox.simulate_sale("AE-100", notify=False)
    body = json.dumps(sandbox.order_notification(order["orderId"], "nid-1")).encode()

    event, created = webhook_receive(connection=connection, headers={}, body=body)
    again, created_again = webhook_receive(connection=connection, headers={}, body=body)
    webhook_process(event_id=event.pk)

    assert (created, created_again, again.pk) == (True, False, event.pk)
    assert WebhookEvent.objects.get().deliveries == 2
    assert Order.objects.filter(external_id=order["orderId"]).count() == 1
