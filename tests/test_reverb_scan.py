"""Reverb's periodic listing scan through the engine: its cost does not grow per unchanged listing,
what changed on Reverb still takes the service path, and the scans are spread and sized by cost."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_reverb import mappers, sync
from channels_reverb.models import ReverbConnection, ReverbListingDetail
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.channels import TransientChannelError
from inventory.models import Alert, ChannelListing, DesiredState, Item, ItemStateChange, ListingState
from inventory.services.listings import content_fingerprint, listing_payload, payload_content
from inventory.services.sync import connection_pull
from tests.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()
    yield
    sync._clients.__dict__.clear()


def shop_on_reverb(account, sandbox, name: str, count: int) -> ReverbConnection:
    """A connection whose `count` items are live on Reverb, linked, with what was pushed."""
    connection = ReverbConnection.objects.create(
        account=account, name=name, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url
    )
    for n in range(count):
        item = make_item(account, n=n, sku=f"{name[:3].upper()}-{n:04d}", price=Decimal("900.00") + n)
        listing = ChannelListing(account=account, item=item, connection=connection)
        payload = listing_payload(listing)
        status, answer = sandbox.store.create_listing({**mappers.listing_body(payload), "publish": True})
        assert status == 201, answer
        content = payload_content(payload)
        listing.external_id = str(answer["listing"]["id"])
        listing.actual_state = ListingState.LIVE
        listing.pushed_content = content
        listing.pushed_fingerprint = content_fingerprint(content)
        listing.last_synced_at = timezone.now() - timedelta(minutes=5)
        listing.save()
    return connection


def steady_scan(connection):
    """A pull whose listing scan is due, after the first pull linked everything: its statements."""
    with CaptureQueriesContext(db) as queries:
        run = connection_pull(connection_id=connection.pk, full_scan=True)
    return run, queries


def written_tables(queries) -> set[str]:
    tables = set()
    for query in queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            tables.add(sql.split('"')[1])
    return tables


def test_a_steady_scan_of_unchanged_listings_costs_the_same_statements_for_5_or_40(account):
    with ReverbSandbox() as small_market, ReverbSandbox() as large_market:
        small = shop_on_reverb(account, small_market, "Small", 5)
        large = shop_on_reverb(account, large_market, "Large", 40)
        for connection in (small, large):
            assert connection_pull(connection_id=connection.pk).status == "ok"  # the first pull

        small_run, small_queries = steady_scan(small)
        large_run, large_queries = steady_scan(large)

    assert (small_run.skipped, large_run.skipped) == (5, 40)
    assert (large_run.updated, large_run.created, large_run.ended, large_run.errors) == (0, 0, 0, 0)
    assert len(large_queries) == len(small_queries)
    # Nothing is written for an unchanged listing: only the run, the connection and its schedule
    # (and the "pull failing" alert's resolution, which every pull that worked does).
    assert written_tables(large_queries) <= {
        "inventory_syncrun",
        "inventory_alert",
        "inventory_channelconnection",
        "channels_reverb_reverbconnection",
    }


def test_what_changed_on_reverb_still_takes_the_service_path_in_a_bulk_scan(account):
    with ReverbSandbox() as market:
        connection = shop_on_reverb(account, market, "Shop", 12)
        connection_pull(connection_id=connection.pk)
        listings = list(ChannelListing.objects.filter(connection=connection).order_by("pk"))
        ended, repriced, lost = listings[0], listings[1], listings[2]
        market.set_listing_state(ended.external_id, "ended")
        with market.store.lock:
            market.store.listings[int(repriced.external_id)]["price"] += Decimal("25.00")
            del market.store.listings[int(lost.external_id)]
        made_there = market.add_external_listing("MADE-ON-REVERB", title="Vox AC30")
        history_before = ItemStateChange.objects.filter(item=repriced.item).count()

        run = connection_pull(connection_id=connection.pk, full_scan=True)

    ended.refresh_from_db()
    assert (ended.actual_state, ended.desired_state, ended.end_reason) == (
        ListingState.ENDED,
        DesiredState.ENDED,
        "ended_on_channel",
    )
    repriced.refresh_from_db()
    assert repriced.needs_push  # ours wins (the default): pushed back, with a history row
    assert ItemStateChange.objects.filter(item=repriced.item).count() == history_before + 1
    lost.refresh_from_db()
    assert lost.actual_state == ListingState.MISSING
    assert Alert.objects.filter(listing=lost, resolved_at__isnull=True).exists()
    imported = Item.objects.get(account=account, sku="MADE-ON-REVERB")
    assert imported.needs_review
    assert ChannelListing.objects.get(item=imported).external_id == str(made_there["id"])
    assert (run.created, run.updated, run.ended, run.skipped) == (1, 2, 1, 9)
    # The detail rows: one more, for the listing made on Reverb.
    assert ReverbListingDetail.objects.filter(connection=connection).count() == 13


def test_the_scan_is_spread_over_its_interval_and_due_only_at_its_moment(account):
    with ReverbSandbox() as market:
        first = shop_on_reverb(account, market, "First", 3)
        second = ReverbConnection.objects.create(
            account=account, name="Second", api_token=DEFAULT_TOKEN, base_url=market.base_url
        )
        for connection in (first, second):
            connection_pull(connection_id=connection.pk)
        first.refresh_from_db()
        second.refresh_from_db()

        interval = first.listing_scan_interval_seconds
        for connection in (first, second):
            after = connection.listing_scan_next_at - connection.listing_scan_started_at
            assert timedelta(seconds=interval / 2) <= after < timedelta(seconds=interval * 1.5)
        assert first.listing_scan_next_at != second.listing_scan_next_at  # each at its own moment
        assert (first.listing_scan_listings, first.listing_scan_effective_seconds) == (3, interval)
        assert first.listing_scan_seconds > 0
        assert "Last scan took" in first.listing_scan_summary and "3 listings" in first.listing_scan_summary

        market.reset_log()
        connection_pull(connection_id=first.pk)  # not due yet: orders only
        assert market.calls(path_prefix="/my/listings") == 0

        ReverbConnection.objects.filter(pk=first.pk).update(listing_scan_next_at=timezone.now())
        connection_pull(connection_id=first.pk)  # due: every listing is read
        assert market.calls(path_prefix="/my/listings") == 1


def test_a_listing_scan_that_failed_is_due_again_at_the_next_pull(account):
    with ReverbSandbox() as market:
        connection = shop_on_reverb(account, market, "Shop", 2)
        connection_pull(connection_id=connection.pk)
        ReverbConnection.objects.filter(pk=connection.pk).update(listing_scan_next_at=timezone.now())
        market.fail_next("error", method="GET", path_prefix="/my/listings")

        with pytest.raises(TransientChannelError):
            connection_pull(connection_id=connection.pk)
        connection.refresh_from_db()
        assert connection.listing_scan_next_at is None

        market.reset_log()
        connection_pull(connection_id=connection.pk)
        assert market.calls(path_prefix="/my/listings") == 1


def test_the_interval_grows_when_all_shops_scans_would_not_fit_the_workers(account, settings):
    settings.LISTING_SCAN_WORKERS = 2
    settings.LISTING_SCAN_SHARE = 0.5
    with ReverbSandbox() as market:
        connection = shop_on_reverb(account, market, "Shop", 2)
        busy = ReverbConnection.objects.create(
            account=account, name="Busy", api_token=DEFAULT_TOKEN, base_url=market.base_url
        )
        # Another shop's last scan took 1,500 s: with this one's, more than half of 2 workers' 900 s.
        ReverbConnection.objects.filter(pk=busy.pk).update(listing_scan_seconds=1500.0)

        connection_pull(connection_id=connection.pk)

    connection.refresh_from_db()
    assert connection.listing_scan_effective_seconds == pytest.approx(1500 + connection.listing_scan_seconds, abs=1)
    assert connection.listing_scan_effective_seconds > connection.listing_scan_interval_seconds == 900
    assert "configured 900 s" in connection.listing_scan_summary
    assert sync.listing_scan_interval(connection, 10.0) == 1510
