"""Leases sized to the converge task's time limit (issue 15): a worker killed mid-publish holds
its listings only until its task could have run at most, then the sweeper hands them on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_reverb.models import ReverbConnection
from inventory import tasks
from inventory.models import ChannelListing, DesiredState, ListingState
from inventory.services.listings import _claim, lease_length
from tests.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def listing(account):
    connection = ReverbConnection.objects.create(
        account=account, name="Reverb", api_token="t", base_url="http://127.0.0.1:9/"
    )
    item = make_item(account, n=1, sku="LEASE-1")
    row = ChannelListing.objects.create(
        account=account,
        item=item,
        connection=connection,
        desired_state=DesiredState.LIVE,
        actual_state=ListingState.PENDING,
    )
    ChannelListing.objects.filter(pk=row.pk).update(desired_changed_at=timezone.now() - timedelta(minutes=10))
    return row


def test_the_lease_is_the_converge_time_limit_plus_a_margin_not_an_hour(monkeypatch):
    assert tasks.converge_listing_task.time_limit == 90  # settings.SYNC_CONVERGE_TIME_LIMIT_SECONDS
    assert lease_length() == timedelta(seconds=120)
    monkeypatch.setattr(tasks.converge_listing_task, "time_limit", 300)
    assert lease_length() == timedelta(seconds=330)


def test_a_claim_holds_the_listing_for_the_lease_length(listing, monkeypatch):
    monkeypatch.setattr(tasks.converge_listing_task, "time_limit", 240)
    before = timezone.now()

    assert _claim(listing.pk)
    assert not _claim(listing.pk)  # held

    listing.refresh_from_db()
    held = listing.lease_until - before
    assert timedelta(seconds=270) <= held < timedelta(seconds=275)


def test_the_sweeper_reclaims_a_listing_whose_worker_died_once_its_lease_expired(listing, monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.converge_listing_task, "apply_async", lambda args, queue=None, **kw: sent.append(args))

    assert _claim(listing.pk)  # the worker that was then killed with SIGKILL
    assert tasks.sweep_listings_task() == 0  # still leased: nobody else touches it
    ChannelListing.objects.filter(pk=listing.pk).update(lease_until=timezone.now() - timedelta(seconds=1))

    assert tasks.sweep_listings_task() == 1
    assert sent == [[listing.pk]]
    assert _claim(listing.pk)  # the next worker takes it
