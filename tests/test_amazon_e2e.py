"""Amazon and Reverb, end to end: a real Celery worker over Redis on PostgreSQL, the live server,
the loopback SP-API, the loopback Reverb, and a real SQS API (moto's server mode on 127.0.0.1)
that the Amazon sandbox publishes notifications to and the product's boto3 consumer reads."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from inventory.models import ChannelListing, Conflict, Item, ListingState, Order, WebhookEvent
from inventory.selectors import stock_problems
from inventory.services import Actor
from inventory.services.listings import listings_publish
from inventory.services.sync import connection_pull
from inventory.states import ItemState
from inventory.tasks import converge_listing_task, enqueue_pull, process_webhook_event_task
from tests.amazon_market import AmazonMarket, give_asin, moto_sqs, new_queue, sqs_consumer
from tests.factories import make_item
from tests.test_sync_e2e_harness import (
    LoopbackMarket,
    Write,
    all_converged,
    lagging,
    real_worker,
    shop_on_business_plan,
    wait_until,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

STAFF = Actor(source="test")


@pytest.fixture(scope="module")
def sqs_endpoint():
    with moto_sqs() as endpoint:
        yield endpoint


@pytest.fixture
def markets(account, live_server, sqs_endpoint, request):
    shop_on_business_plan(account)
    queue = new_queue(sqs_endpoint, f"amazon-{request.node.name[:60]}")
    with (
        AmazonMarket(account, "Amazon US", priority=1, sqs=queue) as amazon,
        LoopbackMarket(account, "Reverb", webhook_base=live_server.url, priority=2) as reverb,
    ):
        yield amazon, reverb


@pytest.fixture
def worker(markets):
    amazon, _ = markets
    with real_worker(), sqs_consumer([amazon.connection.pk]):
        yield


def listed_everywhere(account, markets, item) -> dict[str, ChannelListing]:
    give_asin(item)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)
    assert wait_until(all_converged), lagging()
    for market in markets:
        market.reset_log()
    return {m.name: ChannelListing.objects.get(item=item, connection=m.connection) for m in markets}


def test_listed_on_amazon_and_reverb_once_each(account, markets, worker):
    amazon, reverb = markets
    item = make_item(account, n=1, sku="AE-LIST", price=Decimal("1500.00"))
    give_asin(item)

    listings_publish(account=account, item_ids=[item.pk], actor=STAFF)

    assert wait_until(all_converged), lagging()
    listing = ChannelListing.objects.get(item=item, connection=amazon.connection)
    [seen] = amazon.offered("AE-LIST")
    assert (listing.actual_state, listing.external_id) == (ListingState.LIVE, "AE-LIST")
    assert (seen.state, seen.price, seen.quantity) == ("live", Decimal("1500.00"), 1)
    assert [w.kind for w in amazon.writes()] == ["create"]
    assert len(reverb.offered("AE-LIST")) == 1
    assert amazon.sandbox.violations == []


def test_a_sale_on_amazon_arrives_by_sqs_and_ends_the_reverb_listing(account, markets, worker):
    amazon, reverb = markets
    item = make_item(account, n=2, sku="AE-SELL")
    listings = listed_everywhere(account, markets, item)
    on_reverb = listings["Reverb"]

    started = time.monotonic()
    order_id = amazon.sell("AE-SELL")  # ORDER_CHANGE goes to the SQS queue

    def ended_on_reverb() -> bool:
        return ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED

    assert wait_until(ended_on_reverb, timeout=30), lagging()
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # seconds, not the minutes polling would take
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, amazon.connection.pk)
    order = Order.objects.get(external_id=order_id)
    assert order.connection_id == amazon.connection.pk and order.lines.get().item_id == item.pk
    [event] = WebhookEvent.objects.all()
    assert (event.topic, event.deliveries) == ("ORDER_CHANGE", 1)
    assert wait_until(lambda: WebhookEvent.objects.get().status == "processed")
    assert reverb.seen(on_reverb.external_id).state == "ended"
    # Nothing was written to Amazon after its own sale, and the queue is empty (deleted once stored)
    assert amazon.writes() == []
    assert wait_until(lambda: amazon.sqs.waiting() == 0)
    assert ChannelListing.objects.get(pk=listings["Amazon US"].pk).actual_state == ListingState.SOLD
    assert stock_problems() == []


def test_the_same_notification_delivered_twice_is_one_order(account, markets, worker):
    amazon, _ = markets
    item = make_item(account, n=3, sku="AE-TWICE")
    listed_everywhere(account, markets, item)
    order_id = amazon.sell("AE-TWICE", webhook=False)
    notification = amazon.sandbox.order_notification(order_id, notification_id="same-id")

    amazon.sqs.publish(notification)
    amazon.sqs.publish(json.loads(json.dumps(notification)))

    assert wait_until(lambda: amazon.sqs.waiting() == 0 and WebhookEvent.objects.filter(deliveries=2).exists())
    assert wait_until(lambda: Order.objects.filter(external_id=order_id).exists())
    time.sleep(0.5)
    assert Order.objects.filter(external_id=order_id).count() == 1
    assert WebhookEvent.objects.count() == 1


def test_a_sale_on_reverb_sets_quantity_zero_on_amazon_and_reads_it_back(account, markets, worker):
    amazon, reverb = markets
    item = make_item(account, n=4, sku="AE-REVERB")
    listings = listed_everywhere(account, markets, item)

    reverb.sell("AE-REVERB")

    on_amazon = listings["Amazon US"]
    assert wait_until(
        lambda: ChannelListing.objects.get(pk=on_amazon.pk).actual_state == ListingState.ENDED, timeout=30
    ), lagging()
    assert amazon.writes() == [Write("end", "AE-REVERB", {"quantity": 0}, 200)]
    kinds = [w.kind for w in amazon.requests()]
    assert kinds == ["read", "end", "read"]  # product type, quantity 0, read back
    seen = amazon.seen("AE-REVERB")
    assert (seen.state, seen.quantity) == ("ended", 0)
    item.refresh_from_db()
    assert (item.state, item.sold_on_id) == (ItemState.SOLD, reverb.connection.pk)


def test_a_double_sale_opens_one_conflict(account, markets, worker):
    amazon, reverb = markets
    item = make_item(account, n=5, sku="AE-DOUBLE")
    listed_everywhere(account, markets, item)

    # Both buyers check out before either sale is recorded
    reverb.sell("AE-DOUBLE", webhook=False)
    amazon.sell("AE-DOUBLE", webhook=False)
    connection_pull(connection_id=reverb.connection.pk)
    connection_pull(connection_id=amazon.connection.pk)

    assert wait_until(lambda: Conflict.objects.count() == 1)
    time.sleep(0.5)
    assert Conflict.objects.count() == 1
    assert Order.objects.filter(lines__item=item).count() == 2
    item.refresh_from_db()
    assert item.state == ItemState.SOLD


@pytest.fixture
def polling_markets(account, live_server):
    shop_on_business_plan(account)
    with (
        AmazonMarket(account, "Amazon US", priority=1) as amazon,
        LoopbackMarket(account, "Reverb", webhook_base=live_server.url, priority=2) as reverb,
    ):
        yield amazon, reverb


def test_without_a_queue_a_sale_on_amazon_is_read_by_the_scheduled_pull(account, polling_markets):
    amazon, _reverb = polling_markets
    with real_worker():
        item = make_item(account, n=6, sku="AE-POLL")
        listings = listed_everywhere(account, polling_markets, item)
        amazon.sell("AE-POLL", webhook=False)

        enqueue_pull(amazon.connection.pk)  # what beat does every pull interval

        on_reverb = listings["Reverb"]
        assert wait_until(
            lambda: ChannelListing.objects.get(pk=on_reverb.pk).actual_state == ListingState.ENDED, timeout=30
        ), lagging()
        assert len(amazon.sandbox.requests("searchOrders")) == 1


# --- 20% faults --------------------------------------------------------------------------------


def test_under_twenty_percent_faults_no_order_is_lost_and_no_listing_doubled(
    account, live_server, settings, monkeypatch
):
    """One call in five fails on both marketplaces (500s, 429s, timeouts). Amazon's rates are scaled
    x100 (the sandbox reports them in x-amzn-RateLimit-Limit) so the 429 waits fit in seconds."""
    shop_on_business_plan(account)
    settings.SYNC_RETRY_BACKOFF_BASE = 0.05
    settings.SYNC_RETRY_BACKOFF_MAX = 0.4
    monkeypatch.setattr(converge_listing_task, "max_retries", 25)
    monkeypatch.setattr(process_webhook_event_task, "max_retries", 25)
    faults = {"error_rate": 0.08, "rate_limit_rate": 0.06, "timeout_rate": 0.06, "timeout_delay": 0.5}
    with (
        AmazonMarket(account, "Amazon US", priority=1, timeout=0.25, seed=5, rate_scale=100.0, **faults) as amazon,
        LoopbackMarket(
            account, "Reverb", webhook_base=live_server.url, priority=2, timeout=0.25, seed=6, retry_after=1, **faults
        ) as reverb,
        real_worker(),
    ):
        items = [make_item(account, n=10 + n, sku=f"AE-F{n}") for n in range(6)]
        for item in items:
            give_asin(item)
        listings_publish(account=account, item_ids=[i.pk for i in items], actor=STAFF)
        assert wait_until(all_converged, timeout=90), lagging()

        sold_on_amazon = [amazon.sell(f"AE-F{n}", webhook=False) for n in range(3)]
        sold_on_reverb = [reverb.sell(f"AE-F{n}", webhook=False) for n in range(3, 6)]
        for market in (amazon, reverb):
            for _ in range(30):
                try:
                    if connection_pull(connection_id=market.connection.pk).status == "ok":
                        break
                except Exception:
                    continue

        def done() -> bool:
            return (
                Item.objects.filter(pk__in=[i.pk for i in items], state=ItemState.SOLD).count() == 6 and all_converged()
            )

        assert wait_until(done, timeout=120), lagging()

    # 0 lost orders
    assert set(Order.objects.filter(connection=amazon.connection).values_list("external_id", flat=True)) == set(
        sold_on_amazon
    )
    assert set(Order.objects.filter(connection=reverb.connection).values_list("external_id", flat=True)) == {
        str(o) for o in sold_on_reverb
    }
    # 0 duplicate listings
    assert all(count == 1 for count in amazon.listing_count_by_sku().values())
    assert all(count == 1 for count in reverb.listing_count_by_sku().values())
    # every end landed: sold on Reverb -> quantity 0 on Amazon; sold on Amazon -> ended on Reverb
    for n in range(3, 6):
        assert amazon.seen(f"AE-F{n}").quantity == 0
    for n in range(3):
        [seen] = reverb.offered(f"AE-F{n}")
        assert seen.state == "ended"
    assert not Conflict.objects.exists()
    assert amazon.sandbox.violations == []


def test_register_webhooks_subscribes_the_queue_once_with_a_grantless_destination(account, sqs_endpoint):
    from channels_amazon import sync

    queue = new_queue(sqs_endpoint, "amazon-register")
    with AmazonMarket(account, "Amazon US", sqs=queue) as amazon:
        first = sync.register_webhooks(amazon.connection, "https://shop.example")
        again = sync.register_webhooks(amazon.connection, "https://shop.example")

        assert first[0].startswith("Destination ") and "created" in first[0] and "arn:aws:sqs" in first[0]
        assert first[1:] == [
            "ORDER_CHANGE: subscribed.",
            "LISTINGS_ITEM_STATUS_CHANGE: subscribed.",
            "LISTINGS_ITEM_ISSUES_CHANGE: subscribed.",
        ]
        assert "kept" in again[0] and all(line.endswith("(kept).") for line in again[1:])
        assert len(amazon.sandbox.destinations) == 1 and len(amazon.sandbox.subscriptions) == 3
        assert [r.operation for r in amazon.sandbox.requests() if r.operation.startswith("create")] == [
            "createDestination",
            "createSubscription",
            "createSubscription",
            "createSubscription",
        ]
        assert amazon.sandbox.violations == []


def test_the_consumer_deletes_only_what_it_stored(account, sqs_endpoint):
    from channels_amazon.sqs import receive_once

    queue = new_queue(sqs_endpoint, "amazon-consumer")
    with AmazonMarket(account, "Amazon US", sqs=queue) as amazon:
        amazon.sandbox.add_external_listing("C-1", asin="B07N4M94X4", price="10.00", quantity=1)
        order_id = amazon.sell("C-1")  # a valid ORDER_CHANGE on the queue
        queue.client().send_message(
            QueueUrl=queue.queue_url, MessageBody=json.dumps({"NotificationType": "ORDER_CHANGE"})
        )

        report = receive_once(amazon.connection, wait_seconds=1)

        assert (report.stored, report.duplicates, len(report.refused)) == (1, 0, 1)
        assert "does not match its schema" in report.refused[0]
        [event] = WebhookEvent.objects.all()
        assert event.payload["Payload"]["OrderChangeNotification"]["AmazonOrderId"] == order_id
        # The refused message stays for the queue's dead-letter policy; the stored one is gone
        assert queue.waiting() == 1


def test_the_sandbox_command_publishes_notifications_to_the_queue_it_is_given(sqs_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")  # boto3 reads keys from the environment; moto takes any
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from channels_amazon.management.commands.amazon_sandbox import Command
    from channels_amazon.notifications import problems

    queue = new_queue(sqs_endpoint, "amazon-command")
    publish = Command._publisher(
        {"sqs_queue_url": queue.queue_url, "sqs_endpoint_url": sqs_endpoint, "sqs_region": "us-east-1"}
    )
    from channels_amazon.sandbox import AmazonSandbox

    with AmazonSandbox(notify=publish) as sandbox:
        sandbox.add_external_listing("Q-1", asin="B07N4M94X4", price="10.00", quantity=1)
        sandbox.simulate_sale("Q-1")
    [message] = queue.client().receive_message(QueueUrl=queue.queue_url, WaitTimeSeconds=1)["Messages"]
    assert problems(json.loads(message["Body"])) == []
