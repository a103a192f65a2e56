"""The catalogue never loses track of what is live, whatever the channel does.

A marketplace can lose a listing, reuse its id for another SKU, or keep one live that we
ended (found by restarting `make run`: the loopback shops came back empty while the
database still said 14 items were live). Every such surprise must end in a true state
and an alert, never an unhandled error or a listing silently believed live.
Real HTTP against the loopback Reverb; the engine's services called as the worker would.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.models import Alert, AlertKind, ChannelListing, DesiredState, Item, ListingState
from inventory.services import Actor, item_update
from inventory.services.listings import listing_converge, listings_end, listings_publish
from inventory.services.sync import connection_pull, listings_audit
from inventory.tasks import converge_listing_task
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")


@pytest.fixture(autouse=True)
def _fresh_clients():
    reverb_sync._clients.__dict__.clear()


@pytest.fixture(autouse=True)
def _enqueued(monkeypatch):
    """What the engine enqueues is collected here and converged by the test, as a worker would."""
    from django.db import transaction

    queued: list[int] = []
    monkeypatch.setattr("inventory.tasks.enqueue_converge", queued.append)
    monkeypatch.setattr("inventory.tasks.enqueue_pull", lambda connection_id: None)
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    return queued


def converge_queued(queued: list[int]) -> None:
    while queued:
        listing_converge(queued.pop(0))


@pytest.fixture
def sandbox():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture
def connection(account, sandbox):
    return ReverbConnection.objects.create(
        account=account,
        name="Reverb main shop",
        api_token=DEFAULT_TOKEN,
        base_url=sandbox.base_url,
        timeout_seconds=2,
        listing_scan_interval_seconds=0,
    )


def list_items(account, connection, queued, skus):
    items = [make_item(account, n=n, sku=sku) for n, sku in enumerate(skus)]
    listings_publish(account=account, item_ids=[i.pk for i in items], actor=STAFF, connection_ids=[connection.pk])
    converge_queued(queued)
    return items


def listing_of(item, connection) -> ChannelListing:
    return ChannelListing.objects.get(item=item, connection=connection)


def restart(connection, old: ReverbSandbox) -> ReverbSandbox:
    """The marketplace comes back empty (a demo restart): same shop, nothing in it, ids from the start."""
    old.stop()
    fresh = ReverbSandbox()
    fresh.start()
    ReverbConnection.objects.filter(pk=connection.pk).update(base_url=fresh.base_url)
    reverb_sync._clients.__dict__.clear()
    return fresh


def test_after_the_marketplace_forgets_everything_each_listing_is_true_and_alerted(
    account, connection, sandbox, _enqueued
):
    one, two, withdrawn = list_items(account, connection, _enqueued, ["RS-1", "RS-2", "RS-3"])
    # Staff delisted one before the restart: that decision must survive it
    listings_end(account=account, item_ids=[withdrawn.pk], actor=STAFF)
    converge_queued(_enqueued)
    old_ids = {item.sku: listing_of(item, connection).external_id for item in (one, two)}

    fresh = restart(connection, sandbox)
    try:
        # When the next pull reads every listing and finds none of ours
        run = connection_pull(connection_id=connection.pk)

        # Then each vanished live listing is marked missing at once, with an alert, its stale id cleared
        for item in (one, two):
            listing = listing_of(item, connection)
            assert listing.actual_state == ListingState.MISSING
            assert listing.external_id == ""
            assert old_ids[item.sku] in listing.last_error
            assert Alert.objects.filter(kind=AlertKind.LISTING_MISSING, listing=listing).count() == 1
        assert run.ended == 2
        # And the ones still wanted live are published again, once each; the delisted one stays ended
        converge_queued(_enqueued)
        for item in (one, two):
            listing = listing_of(item, connection)
            assert listing.actual_state == ListingState.LIVE
            assert [lst["sku"] for lst in fresh.listings(sku=item.sku)] == [item.sku]
        assert fresh.listings(sku="RS-3") == []
        assert listing_of(withdrawn, connection).desired_state == DesiredState.ENDED
        # And the pull after that finds everything as believed
        connection_pull(connection_id=connection.pk)
        assert ChannelListing.objects.filter(actual_state=ListingState.MISSING).count() == 0
    finally:
        fresh.stop()


def test_an_id_the_marketplace_reuses_for_another_sku_never_crashes_and_is_never_adopted(
    account, connection, sandbox, _enqueued
):
    [first] = list_items(account, connection, _enqueued, ["ID-A"])
    reused_id = listing_of(first, connection).external_id
    fresh = restart(connection, sandbox)
    try:
        # When another item is published on the fresh marketplace, which hands out the same first id
        second = make_item(account, n=9, sku="ID-B")
        listings_publish(account=account, item_ids=[second.pk], actor=STAFF, connection_ids=[connection.pk])
        converge_queued(_enqueued)

        # Then no IntegrityError: the new listing holds the id, the old one is missing (and is republished)
        assert listing_of(second, connection).external_id == reused_id
        stale = listing_of(first, connection)
        assert Alert.objects.filter(kind=AlertKind.LISTING_MISSING, listing=stale).exists()
        assert stale.actual_state == ListingState.LIVE  # published again, under a new id
        assert stale.external_id not in ("", reused_id)
        assert sorted(lst["sku"] for lst in fresh.listings()) == ["ID-A", "ID-B"]
    finally:
        fresh.stop()


def test_the_audit_reports_a_mismatched_sku_instead_of_adopting_it(account, connection, sandbox, _enqueued):
    [ours] = list_items(account, connection, _enqueued, ["MM-1"])
    listing = listing_of(ours, connection)
    # The marketplace now shows another SKU under our listing's id
    sandbox.store.listings[int(listing.external_id)]["sku"] = "SOMEONE-ELSE"

    dry = listings_audit(connection_id=connection.pk, apply=False)

    assert dry.report["mismatched"] == [f"{listing.external_id}: SOMEONE-ELSE (ours: MM-1)"]
    listing.refresh_from_db()
    assert listing.actual_state == ListingState.LIVE  # a dry run changes nothing

    applied = listings_audit(connection_id=connection.pk, apply=True)

    assert applied.report["mismatched"]
    listing.refresh_from_db()
    assert listing.external_id != sandbox.listings(sku="SOMEONE-ELSE")[0]["id"]
    assert Alert.objects.filter(kind=AlertKind.LISTING_MISMATCH, listing=listing).exists()
    # Theirs was not linked to our item
    assert (
        not Item.objects.filter(sku="SOMEONE-ELSE", listings__connection=connection).exclude(needs_review=True).exists()
    )


def test_the_audit_finds_drift_missing_unknown_duplicates_and_live_listings_we_ended(
    account, connection, sandbox, _enqueued
):
    drifted, missing, _duplicated, ended_here = list_items(
        account, connection, _enqueued, ["AU-DRIFT", "AU-GONE", "AU-DUP", "AU-ENDED"]
    )
    listings_end(account=account, item_ids=[ended_here.pk], actor=STAFF)
    converge_queued(_enqueued)
    store = sandbox.store
    store.listings[int(listing_of(drifted, connection).external_id)]["price"] = Decimal("1.00")
    del store.listings[int(listing_of(missing, connection).external_id)]
    extra = sandbox.add_external_listing(sku="AU-DUP", title="Listed twice by hand")
    sandbox.add_external_listing(sku="NEVER-SEEN", title="Made on Reverb")
    sandbox.set_listing_state(listing_of(ended_here, connection).external_id, "live")

    run = listings_audit(connection_id=connection.pk, apply=False)

    report = run.report
    assert report["drifted"] == ["AU-DRIFT"]
    assert report["missing"] == ["AU-GONE"]
    assert report["duplicates"] == [f"AU-DUP ({extra['id']})"]
    assert report["unknown"] == ["NEVER-SEEN"]
    assert report["live_but_ended_here"] == ["AU-ENDED"]
    assert sandbox.writes == len([r for r in sandbox.requests() if r.is_write])  # reads only so far
    writes_before = sandbox.writes

    listings_audit(connection_id=connection.pk, apply=True)
    converge_queued(_enqueued)

    assert sandbox.writes > writes_before
    assert store.listings[int(listing_of(drifted, connection).external_id)]["price"] != Decimal("1.00")
    assert listing_of(missing, connection).actual_state == ListingState.LIVE  # published again
    assert store.listings[int(extra["id"])]["state"] == "ended"  # the duplicate was ended
    assert store.listings[int(listing_of(ended_here, connection).external_id)]["state"] == "ended"
    assert Item.objects.get(sku="NEVER-SEEN").needs_review is True


def test_a_revise_of_a_listing_the_marketplace_lost_publishes_it_again(account, connection, sandbox, _enqueued):
    [item] = list_items(account, connection, _enqueued, ["LOST-REV"])
    listing = listing_of(item, connection)
    del sandbox.store.listings[int(listing.external_id)]

    item_update(item_id=item.pk, actor=STAFF, changes={"title": "Now with a new title"})
    converge_queued(_enqueued)

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.LIVE
    [again] = sandbox.listings(sku="LOST-REV")
    assert str(again["id"]) == listing.external_id and again["title"] == "Now with a new title"
    assert Alert.objects.filter(kind=AlertKind.LISTING_MISSING, listing=listing).count() == 1


def test_a_disabled_connections_live_listing_is_still_ended_when_the_item_sells_elsewhere(
    account, connection, sandbox, _enqueued
):
    [item] = list_items(account, connection, _enqueued, ["DIS-1"])
    listing = listing_of(item, connection)
    # A connection switched off the old way, with its listing still live
    ReverbConnection.objects.filter(pk=connection.pk).update(enabled=False)

    listings_end(account=account, item_ids=[item.pk], actor=STAFF, reason="sold_elsewhere")
    converge_queued(_enqueued)

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ENDED
    assert sandbox.listing(listing.external_id)["state"]["slug"] == "ended"


def test_an_unexpected_exception_ends_in_a_visible_state_not_only_a_log(account, connection, sandbox, monkeypatch):
    item = make_item(account, n=1, sku="BUG-1")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = listing_of(item, connection)

    def broken(*args, **kwargs):
        raise KeyError("price")

    monkeypatch.setattr(reverb_sync, "publish", broken)
    converge_listing_task.apply(args=[listing.pk])  # eager: the retries run inline

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ERROR
    assert "Unexpected error: KeyError" in listing.last_error
    assert listing.attempts == 4
    alert = Alert.objects.get(kind=AlertKind.SYNC_ERROR, listing=listing)
    assert "KeyError" in alert.message


def test_a_listing_published_while_a_full_read_is_under_way_is_not_missing(account, connection, sandbox, monkeypatch):
    """Found by restarting `make run`: the first pull's full read raced the first publishes and
    marked 30 listings missing that had been created after the read passed their page."""
    from django.utils import timezone

    item = make_item(account, n=1, sku="RACE-1")
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = listing_of(item, connection)
    real_pull = reverb_sync.pull

    def pull_while_a_worker_publishes(conn, since, **kwargs):
        result = real_pull(conn, since, **kwargs)  # the read has passed: nothing of ours on it
        ChannelListing.objects.filter(pk=listing.pk).update(
            actual_state=ListingState.LIVE, external_id="71000999", last_synced_at=timezone.now()
        )
        return result

    monkeypatch.setattr(reverb_sync, "pull", pull_while_a_worker_publishes)
    connection_pull(connection_id=connection.pk)

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.LIVE
    assert not Alert.objects.filter(kind=AlertKind.LISTING_MISSING).exists()
