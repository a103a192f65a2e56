"""Retention (inventory/services/retention.py): old finished runs and processed deliveries go; open work,
and what open alerts and conflicts point to, stays."""

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from channels_reverb.models import ReverbConnection
from inventory.models import Alert, ChannelListing, Conflict, Order, SyncRun, WebhookEvent
from inventory.services.retention import history_prune
from tests.factories import make_item

pytestmark = pytest.mark.django_db

OLD = timedelta(days=120)


def _run(connection, status="ok", age=OLD):
    run = SyncRun.objects.create(account=connection.account, connection=connection, kind="pull", status=status)
    SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - age)
    return run


def _event(connection, key, status="processed", age=OLD):
    event = WebhookEvent.objects.create(
        account=connection.account,
        connection=connection,
        topic="orders/create",
        dedupe_key=key,
        payload={},
        status=status,
    )
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - age)
    return event


@pytest.fixture
def shop(account):
    main = ReverbConnection.objects.create(account=account, name="Main", api_token="rvb-0123456789")
    outlet = ReverbConnection.objects.create(account=account, name="Outlet", api_token="rvb-9876543210")
    return main, outlet


def test_old_finished_runs_and_processed_deliveries_are_deleted_and_open_work_is_kept(settings, shop):
    settings.RETENTION_DAYS = 90
    main, _ = shop
    old_ok, old_failed = _run(main), _run(main, status="failed")
    running, recent = _run(main, status="running"), _run(main, age=timedelta(days=10))
    old_done = _event(main, "a")
    pending, failed = _event(main, "b", status="pending"), _event(main, "c", status="failed")
    recent_event = _event(main, "d", age=timedelta(days=1))

    result = history_prune()

    assert (result.sync_runs, result.webhook_events) == (2, 1)
    assert set(SyncRun.objects.values_list("pk", flat=True)) == {running.pk, recent.pk}
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {pending.pk, failed.pk, recent_event.pk}
    assert not SyncRun.objects.filter(pk__in=[old_ok.pk, old_failed.pk]).exists()
    assert not WebhookEvent.objects.filter(pk=old_done.pk).exists()


def test_nothing_of_a_connection_an_open_alert_points_to_is_deleted(account, shop):
    main, outlet = shop
    kept_run, kept_event = _run(main), _event(main, "a")
    gone_run = _run(outlet)
    Alert.objects.create(account=account, kind="sync_error", title="Pulls failing", dedupe_key="x", connection=main)

    result = history_prune(older_than=timedelta(days=30))

    assert result.kept_connections == (main.pk,)
    assert SyncRun.objects.filter(pk=kept_run.pk).exists() and WebhookEvent.objects.filter(pk=kept_event.pk).exists()
    assert not SyncRun.objects.filter(pk=gone_run.pk).exists()

    Alert.objects.filter(connection=main).update(resolved_at=timezone.now())
    history_prune(older_than=timedelta(days=30))
    assert not SyncRun.objects.filter(pk=kept_run.pk).exists()


def test_an_alert_on_a_listing_and_an_open_conflict_keep_their_connections_history(account, shop):
    main, outlet = shop
    item = make_item(account, n=1)
    other = make_item(account, n=2)
    listing = ChannelListing.objects.create(account=account, item=item, connection=main)
    ChannelListing.objects.create(account=account, item=other, connection=outlet)
    Alert.objects.create(account=account, kind="sync_error", title="Not ended", dedupe_key="y", listing=listing)
    common = {"account": account, "channel": "reverb", "placed_at": timezone.now()}
    first = Order.objects.create(connection=outlet, external_id="1", **common)
    second = Order.objects.create(connection=outlet, external_id="2", **common)
    Conflict.objects.create(account=account, item=other, winning_order=first, losing_order=second)
    runs = [_run(main), _run(outlet)]

    result = history_prune(older_than=timedelta(days=30))

    assert result.kept_connections == tuple(sorted((main.pk, outlet.pk)))
    assert result.sync_runs == 0
    assert SyncRun.objects.filter(pk__in=[r.pk for r in runs]).count() == 2


def test_the_command_is_a_dry_run_when_asked_and_refuses_a_zero_age(shop):
    main, _ = shop
    _run(main)
    out = io.StringIO()

    call_command("prune_history", "--dry-run", "--days", "30", stdout=out)

    assert "would delete 1 sync run(s) and 0 webhook event(s) older than 30 days" in out.getvalue()
    assert SyncRun.objects.count() == 1
    with pytest.raises(CommandError, match="--days must be 1 or more"):
        call_command("prune_history", "--days", "0", stdout=io.StringIO())
    call_command("prune_history", "--days", "30", stdout=io.StringIO())
    assert SyncRun.objects.count() == 0
