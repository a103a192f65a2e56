"""The circuit breaker per connection (inventory/services/circuit.py), against the loopback Reverb:
repeated failed pushes pause pushes with an alert, reads go on, a successful probe resumes them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    PermanentChannelError,
    RateLimited,
    StillProcessing,
    TransientChannelError,
)
from inventory.models import Alert, ChannelConnection, ChannelListing, ListingState
from inventory.services.circuit import circuit_counts
from inventory.services.listings import listing_converge
from inventory.services.sync import connection_pull
from tests.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture
def shop(account, sandbox, settings):
    settings.CIRCUIT_BREAKER_FAILURES = 3
    settings.CIRCUIT_BREAKER_PROBE_SECONDS = 60
    reverb_sync._clients.__dict__.clear()
    connection = ReverbConnection.objects.create(
        account=account, name="Reverb main shop", api_token=DEFAULT_TOKEN, base_url=sandbox.base_url, timeout_seconds=2
    )
    listings = [
        ChannelListing.objects.create(account=account, item=make_item(account, n=n), connection=connection)
        for n in range(5)
    ]
    yield connection, listings
    reverb_sync._clients.__dict__.clear()


def _fail(listing):
    with pytest.raises(TransientChannelError):
        listing_converge(listing.pk)


def _state(connection) -> ChannelConnection:
    return ChannelConnection.objects.get(pk=connection.pk)


def test_repeated_failures_open_the_circuit_with_an_alert_and_pushes_stop(sandbox, shop):
    connection, listings = shop
    sandbox.set_faults(error_rate=1.0)

    _fail(listings[0])
    _fail(listings[1])
    assert _state(connection).circuit_opened_at is None
    _fail(listings[2])

    state = _state(connection)
    assert state.push_failures == 3 and state.circuit_opened_at is not None
    [alert] = Alert.objects.filter(connection=connection, resolved_at__isnull=True)
    assert "changes are paused" in alert.title and "still recorded" in alert.message
    sent = len(sandbox.requests())
    assert listing_converge(listings[3].pk).startswith("pushes paused")
    assert len(sandbox.requests()) == sent  # nothing was sent to the failing channel
    assert ChannelListing.objects.get(pk=listings[3].pk).actual_state == ListingState.PENDING


def test_reads_go_on_while_the_pushes_are_paused(sandbox, shop):
    connection, listings = shop
    sandbox.set_faults(error_rate=1.0)
    for listing in listings[:3]:
        _fail(listing)
    sandbox.set_faults(error_rate=0.0)

    run = connection_pull(connection_id=connection.pk)

    assert run.status == "ok"
    assert _state(connection).circuit_opened_at is not None


def test_a_successful_probe_closes_the_circuit_resolves_the_alert_and_pushes_resume(sandbox, shop):
    connection, listings = shop
    sandbox.set_faults(error_rate=1.0)
    for listing in listings[:3]:
        _fail(listing)
    sandbox.set_faults(error_rate=0.0)
    assert listing_converge(listings[3].pk).startswith("pushes paused")  # not yet: the probe is not due

    ChannelConnection.objects.filter(pk=connection.pk).update(circuit_probe_at=timezone.now() - timedelta(seconds=61))
    listing_converge(listings[3].pk)

    state = _state(connection)
    assert (state.push_failures, state.circuit_opened_at, state.circuit_probe_at) == (0, None, None)
    assert ChannelListing.objects.get(pk=listings[3].pk).actual_state == ListingState.LIVE
    assert not Alert.objects.filter(connection=connection, resolved_at__isnull=True).exists()
    listing_converge(listings[4].pk)
    assert ChannelListing.objects.get(pk=listings[4].pk).actual_state == ListingState.LIVE


def test_a_failed_probe_keeps_the_circuit_open_until_the_next_probe(sandbox, shop):
    connection, listings = shop
    sandbox.set_faults(error_rate=1.0)
    for listing in listings[:3]:
        _fail(listing)
    ChannelConnection.objects.filter(pk=connection.pk).update(circuit_probe_at=timezone.now() - timedelta(seconds=61))

    _fail(listings[3])  # the probe, still failing

    state = _state(connection)
    assert state.circuit_opened_at is not None and state.push_failures == 4
    assert state.circuit_probe_at > timezone.now() - timedelta(seconds=5)
    assert listing_converge(listings[4].pk).startswith("pushes paused")
    assert Alert.objects.filter(connection=connection, resolved_at__isnull=True).count() == 1


def test_a_success_between_failures_starts_the_count_again(sandbox, shop):
    connection, listings = shop
    sandbox.set_faults(error_rate=1.0)
    _fail(listings[0])
    _fail(listings[1])
    sandbox.set_faults(error_rate=0.0)
    listing_converge(listings[2].pk)
    sandbox.set_faults(error_rate=1.0)
    _fail(listings[3])

    state = _state(connection)
    assert (state.push_failures, state.circuit_opened_at) == (1, None)


def test_only_the_channels_own_failures_count_not_refusals_or_rate_limits():
    assert circuit_counts(TransientChannelError("502 from the channel"))
    assert not circuit_counts(RateLimited("slow down", retry_after=2))
    assert not circuit_counts(PermanentChannelError("category required"))
    assert not circuit_counts(StillProcessing("Amazon accepted it and is still processing"))
    assert not circuit_counts(ValueError("a bug"))


def test_an_open_circuit_never_holds_back_the_end_of_an_item_sold_elsewhere(sandbox, shop):
    connection, listings = shop
    live = listings[4]
    assert listing_converge(live.pk) == "published"
    sandbox.set_faults(error_rate=1.0)
    for listing in listings[:3]:
        _fail(listing)
    assert _state(connection).circuit_opened_at is not None
    sandbox.set_faults(error_rate=0.0)
    now = timezone.now()
    ChannelListing.objects.filter(pk=live.pk).update(
        desired_state="ended", end_reason=END_SOLD_ELSEWHERE, desired_changed_at=now
    )
    ChannelConnection.objects.filter(pk=connection.pk).update(circuit_probe_at=now)  # no probe due

    assert listing_converge(live.pk) == "ended"

    live.refresh_from_db()
    assert live.actual_state == ListingState.ENDED and live.ended_at is not None
    assert sandbox.store.listings[int(live.external_id)]["state"] == "ended"
