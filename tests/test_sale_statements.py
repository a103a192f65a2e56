"""What one sale costs in SQL, step by step, so the sale path cannot grow back (issue 14).

A one-of-a-kind item listed on three loopback Reverb shops sells on one of them: the
webhook is POSTed to the app, the stored delivery is processed (the order read back from
Reverb and recorded), and the two other listings are converged (ended and read back).
Every statement the database receives is counted per step, transaction control
(BEGIN, COMMIT, SAVEPOINT) included, in autocommit as production runs (transaction=True).
Tasks are not sent: their apply_async is replaced by a list, so the code that enqueues
them is counted too. The figures are the ceiling: lower is welcome (then lower them here),
higher fails. bench/sale_steps.py prints the same steps with their CPU time.
"""

from __future__ import annotations

import json
import uuid
from unittest import mock

import pytest
from celery.app.trace import build_tracer
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from accounts.rls import worker_owns_sessions
from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection, ReverbListingDetail
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory import tasks
from inventory.models import (
    Alert,
    AlertKind,
    ChannelConnection,
    ChannelListing,
    ItemStateChange,
    ListingState,
    Order,
    StockMovement,
    SyncKind,
    SyncRun,
    WebhookEvent,
)
from inventory.services import Actor
from inventory.services.alerts import alert_raise
from inventory.services.batching import listing_converge_batched
from inventory.services.listings import listings_publish
from inventory.services.returning import update_returning_instance, update_returning_joined
from inventory.services.sync import webhook_process
from tests.factories import make_item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# The ceilings (statements per step, 3 shops, so 2 ends per sale).
WEBHOOK_STORE = 2  # the connection (and whether a "webhooks stopped" alert is open), the upsert
# The delivery and its connection, the existing order, then the sale's transaction: BEGIN, the
# item's lock, the order with its line (one INSERT), the listings' UPDATE carrying the lock,
# ledger and history inserts, the item's UPDATE and the delivery's processed mark, COMMIT.
SALE_RECORD = 7
# The lease (answering the listing with its connection) and the record (letting go of the lease,
# answering whether a sync alert is open, and inserting the SyncRun and Reverb's detail row).
CONVERGE_EACH = 2
# With row-level security on (production), through the tasks as a worker runs them: the
# webhook view sets its shop's scope and puts it back (2); the worker sets the shop's scope
# once for its tasks (the account comes with each task, no lookup) and keeps it on its
# session for the next task of that shop (0, or 1 when the shop changes).
RLS_WEBHOOK_STORE = WEBHOOK_STORE + 2
RLS_FIRST_SALE = RLS_WEBHOOK_STORE + SALE_RECORD + 2 * CONVERGE_EACH + 1
RLS_NEXT_SALE = RLS_WEBHOOK_STORE + SALE_RECORD + 2 * CONVERGE_EACH


@pytest.fixture
def shops(account):
    sandboxes = [ReverbSandbox().__enter__() for _ in range(3)]
    reverb_sync._clients.__dict__.clear()
    connections = [
        ReverbConnection.objects.create(
            account=account,
            name=f"Reverb {n}",
            priority=n,
            api_token=DEFAULT_TOKEN,
            base_url=sandbox.base_url,
            timeout_seconds=5,
        )
        for n, sandbox in enumerate(sandboxes, start=1)
    ]
    yield list(zip(sandboxes, connections, strict=True))
    for sandbox in sandboxes:
        sandbox.stop()


def _for_service(kwargs: dict) -> dict:
    """What a task passes on to its service: all it was sent but the account (the task's scope)."""
    return {name: value for name, value in kwargs.items() if name != "account_id"}


def _sent(queue: list):
    def apply_async(args=None, kwargs=None, **options):
        queue.append((args[0], kwargs or {}))

    return apply_async


def _converge(sent) -> str:
    """What the converge task runs, with the arguments it was sent (its channel among them)."""
    listing_id, kwargs = sent
    return listing_converge_batched(listing_id, **_for_service(kwargs))


def _statements(queries: CaptureQueriesContext) -> str:
    return "\n".join(q["sql"][:160] for q in queries.captured_queries)


def test_one_sale_costs_at_most_its_statements_per_step(account, shops, client):
    events, converges = [], []
    with (
        mock.patch.object(tasks.process_webhook_event_task, "apply_async", _sent(events)),
        mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)),
        mock.patch.object(tasks.pull_connection_task, "apply_async", _sent([])),
    ):
        # Given a guitar listed on the three shops (and a sale made before, so nothing is a first time)
        warm, item = (make_item(account, n=n, sku=f"SQL-{n}") for n in (1, 2))
        listings_publish(account=account, item_ids=[warm.pk, item.pk], actor=Actor(source="test"))
        while converges:
            _converge(converges.pop())
        assert ChannelListing.objects.filter(actual_state=ListingState.LIVE).count() == 6
        for sku, (sandbox, connection) in ((warm.sku, shops[0]), (item.sku, shops[1])):
            order = sandbox.simulate_sale(sku, deliver_webhook=False)

            # When it sells on one shop: the webhook arrives, is processed, the other two end
            with CaptureQueriesContext(db) as store:
                answer = client.post(connection.webhook_path, json.dumps(order), content_type="application/json")
            with CaptureQueriesContext(db) as record:
                event_id, kwargs = events.pop()
                outcome = webhook_process(event_id=event_id, **_for_service(kwargs))
            ends = []
            for sent in list(converges):
                with CaptureQueriesContext(db) as converge:
                    assert _converge(sent) == "ended"
                ends.append(converge)
            converges.clear()
        # A redelivery (Reverb retries what it did not hear answered) is counted, not stored again
        again = client.post(connection.webhook_path, json.dumps(order), content_type="application/json")

    # Then every guarantee holds: one order, the item sold with its history and ledger, both ends confirmed
    assert (answer.status_code, answer.content, outcome) == (200, b"stored", "1 order(s) recorded")
    assert (again.content, events) == (b"duplicate", [])
    delivery = WebhookEvent.objects.get(connection=connection)
    assert (delivery.deliveries, delivery.status, delivery.attempts, delivery.last_error) == (2, "processed", 1, "")
    assert delivery.processed_at is not None
    sold = Order.objects.get(connection=connection, external_id=str(order["order_number"]))
    assert sold.status == "completed"
    assert list(sold.lines.values_list("item_id", "sku", "stock_lock__status")) == [(item.pk, item.sku, "committed")]
    item.refresh_from_db()
    assert (item.state, item.quantity_on_hand, item.quantity_locked, item.sold_on_id) == ("sold", 0, 0, connection.pk)
    kinds = list(StockMovement.objects.filter(item=item).order_by("pk").values_list("kind", flat=True))
    assert kinds[-2:] == ["locked", "committed"]
    assert ItemStateChange.objects.filter(item=item, to_state="sold").count() == 1
    ended = ChannelListing.objects.filter(item=item, end_reason="sold_elsewhere", actual_state=ListingState.ENDED)
    assert ended.exclude(ended_at=None).count() == 2
    # Each end is on record as a push of its connection, written with the listing's last write
    pushes = SyncRun.objects.filter(kind=SyncKind.PUSH, ended=1, finished_at__gte=ended.earliest("ended_at").ended_at)
    assert sorted(pushes.values_list("connection_id", "status", "created", "updated", "errors")) == sorted(
        (listing.connection_id, "ok", 0, 0, 0) for listing in ended
    )
    assert all(run.account_id == account.pk and run.duration_ms >= 0 for run in pushes)
    # What Reverb answered to the read-back is kept too, written with that last write
    assert sorted(
        ReverbListingDetail.objects.filter(connection_id=listing.connection_id, listing_id=listing.external_id)
        .values_list("connection_id", "state")
        .get()
        for listing in ended
    ) == sorted((listing.connection_id, "ended") for listing in ended)
    # And each step stays within its statements
    assert len(store) <= WEBHOOK_STORE, _statements(store)
    assert len(record) <= SALE_RECORD, _statements(record)
    assert len(ends) == 2
    for converge in ends:
        assert len(converge) <= CONVERGE_EACH, _statements(converge)


def test_a_listing_answered_by_its_update_is_the_listing_the_orm_reads(account, shops):
    # Given a listed guitar, with content pushed (a JSON field) and times set
    converges = []
    with mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)):
        item = make_item(account, n=1, sku="SQL-RET")
        listings_publish(account=account, item_ids=[item.pk], actor=Actor(source="test"))
        while converges:
            _converge(converges.pop())
    listing = ChannelListing.objects.filter(item=item).first()

    # When the UPDATE ... RETURNING of the lease answers it
    answered = update_returning_instance(ChannelListing.objects.filter(pk=listing.pk), {"lease_until": None})

    # Then every field is what the ORM reads (the JSON parsed, not its text)
    assert isinstance(answered.pushed_content, dict) and answered.pushed_content["sku"] == "SQL-RET"
    fresh = ChannelListing.objects.get(pk=listing.pk)
    for field in ChannelListing._meta.concrete_fields:
        assert getattr(answered, field.attname) == getattr(fresh, field.attname), field.name


def test_a_listing_claimed_with_its_connection_is_what_the_orm_reads(account, shops):
    # Given a listed guitar (its connection's API token stored encrypted)
    converges = []
    with mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)):
        item = make_item(account, n=1, sku="SQL-JOIN")
        listings_publish(
            account=account, item_ids=[item.pk], actor=Actor(source="test"), connection_ids=[shops[0][1].pk]
        )
        while converges:
            _converge(converges.pop())
    listing = ChannelListing.objects.get(item=item)

    # When the lease's UPDATE answers the listing with its Reverb connection and account
    answered, connection = update_returning_joined(
        ChannelListing.objects.filter(pk=listing.pk), {"lease_until": None}, ReverbConnection
    )

    # Then both are what the ORM reads, the secrets decrypted and the account loaded
    fresh = ReverbConnection.objects.select_related("account").get(pk=listing.connection_id)
    for field in ReverbConnection._meta.concrete_fields:
        assert getattr(connection, field.attname) == getattr(fresh, field.attname), field.name
    assert connection.api_token == DEFAULT_TOKEN and connection.account.slug == account.slug
    assert answered.pushed_content["sku"] == "SQL-JOIN"
    # And a listing of another channel's model comes back without a connection (the caller reads it)
    other = next(m for m in ChannelConnection.__subclasses__() if m is not ReverbConnection)
    answered, none = update_returning_joined(ChannelListing.objects.filter(pk=listing.pk), {"lease_until": None}, other)
    assert answered.pk == listing.pk and none is None


def test_an_end_closes_the_listings_open_sync_alert_and_a_delivery_the_webhooks_stopped_one(account, shops, client):
    events, converges = [], []
    with (
        mock.patch.object(tasks.process_webhook_event_task, "apply_async", _sent(events)),
        mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)),
        mock.patch.object(tasks.pull_connection_task, "apply_async", _sent([])),
    ):
        # Given a guitar on three shops, one listing with an open "not ended" alert, and a
        # "webhooks stopped" alert open on the shop it sells on
        item = make_item(account, n=1, sku="SQL-ALERT")
        listings_publish(account=account, item_ids=[item.pk], actor=Actor(source="test"))
        while converges:
            _converge(converges.pop())
        sandbox, connection = shops[0]
        flagged = ChannelListing.objects.get(item=item, connection=shops[1][1])
        alert_raise(
            account_id=account.pk, kind=AlertKind.NOT_ENDED, dedupe_key="t-not-ended", title="t", listing=flagged
        )
        alert_raise(
            account_id=account.pk,
            kind=AlertKind.WEBHOOKS_STOPPED,
            dedupe_key=f"webhooks-stopped:{connection.pk}",
            title="t",
            connection=connection,
        )

        # When it sells there: the delivery is stored and processed, the others end
        order = sandbox.simulate_sale(item.sku, deliver_webhook=False)
        client.post(connection.webhook_path, json.dumps(order), content_type="application/json")
        event_id, kwargs = events.pop()
        webhook_process(event_id=event_id, **_for_service(kwargs))
        outcomes = [_converge(sent) for sent in converges]

    # Then both alerts are closed, and both ends were confirmed
    assert outcomes == ["ended", "ended"]
    assert not Alert.objects.get(dedupe_key="t-not-ended").is_open
    assert not Alert.objects.get(dedupe_key=f"webhooks-stopped:{connection.pk}").is_open
    assert ChannelListing.objects.filter(item=item, lease_until=None).count() == 3


def _in_worker(task, sent):
    """Run a sent task as the worker does (Celery's tracer: task_prerun, the task), not eagerly."""
    trace = build_tracer(task.name, task, app=task.app, eager=False, propagate=True)
    return trace(str(uuid.uuid4()), [sent[0]], sent[1], {})[0]


def test_with_row_level_security_a_sale_through_the_workers_tasks_costs_at_most_its_statements(
    account, shops, client, settings
):
    settings.DATABASE_ROW_LEVEL_SECURITY = True
    worker_owns_sessions()
    events, converges = [], []
    try:
        with (
            mock.patch.object(tasks.process_webhook_event_task, "apply_async", _sent(events)),
            mock.patch.object(tasks.converge_listing_task, "apply_async", _sent(converges)),
            mock.patch.object(tasks.pull_connection_task, "apply_async", _sent([])),
        ):
            # Given four guitars listed on the three shops, two sold before (nothing is a first time)
            items = [make_item(account, n=n, sku=f"RLS-{n}") for n in (1, 2, 3, 4)]
            listings_publish(account=account, item_ids=[i.pk for i in items], actor=Actor(source="test"))
            while converges:
                _converge(converges.pop())
            counts = []
            for n, item in enumerate(items):
                sandbox, connection = shops[n % 3]
                if n == 2:
                    db.close()  # a worker starting afresh: its session holds no scope yet
                order = sandbox.simulate_sale(item.sku, deliver_webhook=False)

                # When each sells: the webhook is stored, and its task and the two ends run in the worker
                with CaptureQueriesContext(db) as store:
                    client.post(connection.webhook_path, json.dumps(order), content_type="application/json")
                with CaptureQueriesContext(db) as sale:
                    sent = events.pop()
                    assert sent[1]["account_id"] == account.pk
                    outcomes = [_in_worker(tasks.process_webhook_event_task, sent)]
                    assert all(kwargs["account_id"] == account.pk for _, kwargs in converges)
                    outcomes += [_in_worker(tasks.converge_listing_task, c) for c in converges]
                converges.clear()
                counts.append((store, sale))
    finally:
        worker_owns_sessions(False)

    # Then both sold and ended everywhere else, within the statements
    assert outcomes == ["1 order(s) recorded", "ended", "ended"]
    assert ChannelListing.objects.filter(end_reason="sold_elsewhere").exclude(ended_at=None).count() == 8
    _, _, (first_store, first_sale), (next_store, next_sale) = counts
    for store in (first_store, next_store):
        assert len(store) <= RLS_WEBHOOK_STORE, _statements(store)
    assert len(first_store) + len(first_sale) <= RLS_FIRST_SALE, _statements(first_sale)
    assert len(next_store) + len(next_sale) <= RLS_NEXT_SALE, _statements(next_sale)
