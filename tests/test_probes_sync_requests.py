"""Syncs staff ask for (issue 15, Redis down): a pull requested while the broker is unreachable is
answered 202 and carried out once the broker is back, not left "queued" for ever; the copies the
sweeper sends run it once; one nobody takes within the hour is failed with an alert."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory import tasks
from inventory.models import Alert, AlertKind, SyncRun, SyncStatus
from inventory.services.sync import SYNC_REQUEST_LEASE_SECONDS, sync_request_run
from tests.outage import broker_down

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_clients():
    reverb_sync._clients.__dict__.clear()


@pytest.fixture
def sandbox():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture
def connection(account, sandbox):
    return ReverbConnection.objects.create(
        account=account, name="Reverb", api_token=DEFAULT_TOKEN, base_url=sandbox.base_url
    )


@pytest.fixture
def sent(monkeypatch):
    """The sync-request tasks handed to the broker (instead of a real broker)."""
    handed = []
    monkeypatch.setattr(tasks.sync_request_task, "apply_async", lambda args, queue=None, **kw: handed.append(args[0]))
    return handed


def age(run_id: int, *, started_seconds: float, queued_seconds: float | None = None) -> None:
    now = timezone.now()
    SyncRun.objects.filter(pk=run_id).update(
        started_at=now - timedelta(seconds=started_seconds),
        queued_at=None if queued_seconds is None else now - timedelta(seconds=queued_seconds),
    )


def test_a_pull_asked_for_while_the_broker_is_down_is_carried_out_once_it_is_back(
    api, connection, sandbox, caplog, django_capture_on_commit_callbacks, monkeypatch
):
    sandbox.add_external_listing(sku="MADE-ON-REVERB", title="Listed on Reverb itself")
    with broker_down(), caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/connections/{connection.pk}/pull/")

    assert response.status_code == 202
    run = SyncRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.queued_at) == (SyncStatus.QUEUED, None)
    assert "could not queue inventory.sync_request" in caplog.text

    # Asking again while it waits answers the same run, whatever its age
    age(run.pk, started_seconds=900)
    assert api.post(f"/api/v1/connections/{connection.pk}/pull/").json()["id"] == run.pk

    # The broker is back: the next sweep hands it over
    handed = []
    monkeypatch.setattr(
        tasks.sync_request_task, "apply_async", lambda args, queue=None, **kw: handed.append((args[0], queue))
    )
    assert tasks.sweep_sync_requests_task() == 1
    assert handed == [(run.pk, "sync.reverb")]
    run.refresh_from_db()
    assert run.queued_at is not None

    done = sync_request_run(run_id=run.pk)
    assert done.status == SyncStatus.OK
    assert api.get(f"/api/v1/sync-runs/{run.pk}/").json()["status"] == "ok"


def test_the_sweeper_sends_only_runs_nobody_took_and_not_twice_in_two_minutes(connection, sent):
    def run(status=SyncStatus.QUEUED, **ages):
        row = SyncRun.objects.create(account=connection.account, connection=connection, kind="pull", status=status)
        age(row.pk, **ages)
        return row.pk

    never_sent = run(started_seconds=60)
    lost = run(started_seconds=600, queued_seconds=300)
    run(started_seconds=600, queued_seconds=30)  # handed over a moment ago: still on its way
    run(started_seconds=5)  # its on-commit send may not have happened yet
    run(SyncStatus.RUNNING, started_seconds=600, queued_seconds=600)
    run(SyncStatus.OK, started_seconds=600, queued_seconds=600)

    assert tasks.sweep_sync_requests_task() == 2
    assert sorted(sent) == sorted([never_sent, lost])
    # Handed over again just now: the next minute's sweep leaves them alone
    assert tasks.sweep_sync_requests_task() == 0


def test_a_copy_of_the_task_while_another_worker_holds_the_run_does_nothing(connection, sandbox):
    run = SyncRun.objects.create(account=connection.account, connection=connection, kind="pull", status="queued")
    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.RUNNING, claimed_at=timezone.now())
    calls = sandbox.calls()

    again = sync_request_run(run_id=run.pk)

    assert again.status == SyncStatus.RUNNING
    assert sandbox.calls() == calls  # nothing was read from Reverb a second time


def test_a_run_whose_worker_died_is_taken_over_after_its_lease(connection):
    run = SyncRun.objects.create(account=connection.account, connection=connection, kind="pull", status="queued")
    claimed = timezone.now() - timedelta(seconds=SYNC_REQUEST_LEASE_SECONDS + 1)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncStatus.RUNNING, claimed_at=claimed)

    assert sync_request_run(run_id=run.pk).status == SyncStatus.OK


def test_a_run_nobody_took_within_the_hour_fails_with_an_alert_and_can_be_asked_for_again(
    api, connection, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(f"/api/v1/connections/{connection.pk}/pull/").json()
    age(first["id"], started_seconds=3700, queued_seconds=3700)
    sent.clear()

    assert tasks.sweep_sync_requests_task() == 0
    run = SyncRun.objects.get(pk=first["id"])
    assert run.status == SyncStatus.FAILED and run.finished_at is not None
    assert "No worker took this pull within 60 minutes" in run.error_text
    assert "sync.reverb" in run.error_text and "ask for it again" in run.error_text
    alert = Alert.objects.get(kind=AlertKind.SYNC_ERROR, connection=connection)
    assert "never carried out" in alert.title
    assert sent == []
    # A late copy of its task does nothing to a run given up
    assert sync_request_run(run_id=run.pk).status == SyncStatus.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        second = api.post(f"/api/v1/connections/{connection.pk}/pull/").json()
    assert second["id"] != first["id"] and second["status"] == "queued"
    assert sent == [second["id"]]
