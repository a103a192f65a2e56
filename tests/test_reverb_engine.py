"""The Reverb channel driven by the inventory engine's own services, against the loopback Reverb.

Only the seams between the two: the engine lists an item, a sale made on Reverb arrives
by webhook and by pull, and an item withdrawn here is ended there and read back.
"""

import json

import pytest

from channels_reverb import sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.models import ChannelListing, ListingState, Order, WebhookEvent
from inventory.services import Actor
from inventory.services.listings import listing_converge, listings_end, listings_publish
from inventory.services.sync import connection_pull, webhook_process, webhook_receive
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")


@pytest.fixture
def sandbox():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()


@pytest.fixture
def connection(account, sandbox):
    return ReverbConnection.objects.create(
        account=account, name="Reverb", api_token=DEFAULT_TOKEN, base_url=sandbox.base_url, timeout_seconds=2
    )


@pytest.fixture
def listed(account, connection, sandbox):
    """An item the engine listed on Reverb."""
    item = make_item(account, n=1, sku="BN-7001", brand="Gibson", model="ES-335", condition="very_good")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = ChannelListing.objects.get(item=item, connection=connection)
    listing_converge(listing.pk)
    listing.refresh_from_db()
    return item, listing


def test_the_engine_lists_an_item_on_reverb_once(listed, sandbox):
    _item, listing = listed

    [on_reverb] = sandbox.listings(sku="BN-7001")
    assert (listing.actual_state, listing.external_id) == (ListingState.LIVE, str(on_reverb["id"]))
    assert listing.external_url == on_reverb["_links"]["web"]["href"]
    assert (on_reverb["make"], on_reverb["model"], on_reverb["state"]["slug"]) == ("Gibson", "ES-335", "live")
    assert sandbox.calls(method="POST", path_prefix="/listings") == 1


def test_a_sale_on_reverb_arrives_by_webhook_once_and_sells_the_item(listed, sandbox, connection, client):
    item, _ = listed
    order = sandbox.simulate_sale("BN-7001", deliver_webhook=False)
    body = json.dumps(order).encode()

    first = client.post(connection.webhook_path, body, content_type="application/json")
    again = client.post(connection.webhook_path, body, content_type="application/json")  # Reverb retried

    assert (first.status_code, first.content, again.content) == (200, b"stored", b"duplicate")
    event = WebhookEvent.objects.get()
    assert (event.topic, event.deliveries) == ("orders/create", 2)
    assert webhook_process(event_id=event.pk) == "1 order(s) recorded"
    recorded = Order.objects.get(external_id=order["order_number"])
    assert recorded.lines.get().item == item
    item.refresh_from_db()
    assert item.state == "sold"


def test_a_sale_on_reverb_arrives_by_pull_when_no_webhook_came(listed, sandbox, connection):
    order = sandbox.simulate_sale("BN-7001", deliver_webhook=False)

    run = connection_pull(connection_id=connection.pk)

    assert run.status == "ok"
    assert Order.objects.filter(external_id=order["order_number"]).count() == 1
    connection.refresh_from_db()
    assert connection.watermark is not None
    assert sandbox.writes == 1  # the publish; the pull wrote nothing


def test_an_item_withdrawn_here_is_ended_on_reverb_and_read_back(listed, account, sandbox):
    item, listing = listed
    sandbox.reset_log()

    listings_end(account=account, item_ids=[item.pk], actor=STAFF)
    listing_converge(listing.pk)

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ENDED
    assert sandbox.listing(listing.external_id)["state"]["slug"] == "ended"
    assert [(r.method, r.path) for r in sandbox.requests()] == [
        ("PUT", f"/my/listings/{listing.external_id}/state/end"),
        ("GET", f"/listings/{listing.external_id}"),
    ]


def test_a_forged_delivery_records_no_order(connection, client, sandbox):
    forged = {"order_number": "999", "status": "paid", "created_at": "2026-03-01T12:00:00Z", "sku": "BN-7001"}

    client.post(connection.webhook_path, json.dumps(forged), content_type="application/json")
    webhook_process(event_id=WebhookEvent.objects.get().pk)

    assert not Order.objects.exists()
    assert sandbox.requests()[-1].path == "/my/orders/selling/999"  # asked Reverb, which has no such order


def test_webhook_receive_rejects_a_body_that_is_not_json_and_stores_nothing(connection):
    from inventory.channels import PermanentChannelError

    with pytest.raises(PermanentChannelError):
        webhook_receive(connection=connection, headers={}, body=b"not json")

    assert not WebhookEvent.objects.exists()


def test_every_push_that_sends_something_is_a_sync_run(listed, connection, account):
    from inventory.models import SyncRun
    from inventory.services import item_update

    item, listing = listed
    assert list(SyncRun.objects.filter(kind="push").values_list("created", "updated", "ended", "status")) == [
        (1, 0, 0, "ok")
    ]
    listing_converge(listing.pk)  # in sync: nothing sent, nothing recorded
    assert SyncRun.objects.filter(kind="push").count() == 1
    item_update(item_id=item.pk, actor=STAFF, changes={"title": "1965 Gibson ES-335 TDC"})
    listing_converge(listing.pk)
    assert SyncRun.objects.filter(kind="push").order_by("-id").values_list("updated", "status").first() == (1, "ok")
