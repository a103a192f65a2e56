"""Connections as a managed resource over the REST API: connect, edit, test, pause, disconnect,
webhooks and syncs on demand, for every channel in settings.CHANNELS, scoped to the account.
"""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import PeriodicTask

from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.channels import channel
from inventory.models import ChannelConnection, ChannelListing, DesiredState, ListingState, SyncRun, WebhookEvent
from inventory.services import Actor
from inventory.services.listings import listing_converge, listings_end, listings_publish
from inventory.services.sync import sync_request_run
from tests.factories import make_item

pytestmark = pytest.mark.django_db(transaction=False)

STAFF = Actor(source="test")
TOKEN = "rvb-token-0123456789abcd"


@pytest.fixture(autouse=True)
def _fresh_clients():
    reverb_sync._clients.__dict__.clear()


@pytest.fixture(autouse=True)
def _commit_callbacks_run(monkeypatch):
    """Side effects scheduled on commit (schedules, enqueues) run at once: these tests run inside a
    transaction that never commits. Enqueued tasks are not sent anywhere: tests call services directly."""
    from django.db import transaction

    sent = []
    monkeypatch.setattr("inventory.tasks.enqueue_converge", sent.append)
    monkeypatch.setattr("inventory.tasks.enqueue_sync_request", sent.append)
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    return sent


@pytest.fixture
def sandbox():
    with ReverbSandbox() as running:
        yield running


def _create(api, **fields):
    body = {"channel": "reverb", "name": "Reverb main shop", "api_token": TOKEN, **fields}
    return api.post("/api/v1/connections/", body, format="json")


def _pull_tasks(connection_id: int):
    return PeriodicTask.objects.filter(task="inventory.pull_connection", args=json.dumps([connection_id]))


def test_a_connection_is_created_over_the_api_with_its_secret_write_only_and_its_schedule_at_once(api):
    response = _create(api, base_url="https://sandbox.reverb.com/api", pull_interval_seconds=120)

    assert response.status_code == 201, response.content
    data = response.json()
    assert TOKEN not in response.content.decode()
    assert "api_token" not in data
    assert data["secrets"] == {"api_token": "set, ends …abcd"}
    assert data["channel"] == "reverb" and data["status"] == "active"
    assert data["priority"] == channel("reverb").DEFAULT_PRIORITY == 20
    connection = ReverbConnection.objects.get(pk=data["id"])
    assert connection.api_token == TOKEN
    assert data["webhook_url"].endswith(connection.webhook_path)
    # The pull is scheduled now: no declare_schedules needed
    [task] = _pull_tasks(connection.pk)
    assert (task.interval.every, task.queue, task.enabled) == (120, "sync.reverb", True)


def test_an_update_keeps_the_secret_when_it_is_left_blank_and_the_schedule_follows(api):
    connection_id = _create(api).json()["id"]

    response = api.patch(
        f"/api/v1/connections/{connection_id}/",
        {"api_token": "", "name": "Reverb outlet", "pull_interval_seconds": 300},
        format="json",
    )

    assert response.status_code == 200, response.content
    connection = ReverbConnection.objects.get(pk=connection_id)
    assert (connection.api_token, connection.name) == (TOKEN, "Reverb outlet")
    [task] = _pull_tasks(connection_id)
    assert task.interval.every == 300 and "Reverb outlet" in task.name
    api.patch(f"/api/v1/connections/{connection_id}/", {"api_token": "rvb-new-token-99998888"}, format="json")
    assert ReverbConnection.objects.get(pk=connection_id).api_token == "rvb-new-token-99998888"


def test_bad_input_says_what_to_fix_and_writes_nothing(api):
    unknown = api.post("/api/v1/connections/", {"channel": "myspace", "name": "x"}, format="json")
    assert unknown.status_code == 400
    assert "reverb" in unknown.json()["channel"][0]

    no_token = api.post("/api/v1/connections/", {"channel": "reverb", "name": "No token"}, format="json")
    assert no_token.status_code == 400 and "api_token" in no_token.json()

    too_fast = _create(api, pull_interval_seconds=1)
    assert too_fast.status_code == 400 and "pull_interval_seconds" in too_fast.json()

    _create(api)
    twice = _create(api)
    assert twice.status_code == 400
    assert ChannelConnection.objects.count() == 1
    assert PeriodicTask.objects.filter(task="inventory.pull_connection").count() == 1


def test_the_plan_gate_refuses_a_connection_with_402_and_the_upgrade_hint(api, account, settings):
    from billing.models import Plan

    settings.BILLING_DEFAULT_PLAN = "free"
    Plan.objects.filter(code="free").update(max_channels=0)

    response = _create(api)

    assert response.status_code == 402, response.content
    assert "connected channels" in response.json()["detail"]
    assert not ChannelConnection.objects.exists()


def test_another_account_cannot_see_edit_test_or_delete_a_connection(api, other_api):
    connection_id = _create(api).json()["id"]

    assert other_api.get("/api/v1/connections/").json()["results"] == []
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "check/"),
        ("post", "pause/"),
        ("post", "disconnect/"),
        ("post", "pull/"),
        ("get", "webhooks/"),
    ]:
        response = getattr(other_api, method)(f"/api/v1/connections/{connection_id}/{path}", {}, format="json")
        assert response.status_code == 404, (method, path)
    assert ReverbConnection.objects.get(pk=connection_id).name == "Reverb main shop"


def test_check_says_in_plain_words_what_works_and_what_to_fix(api, sandbox):
    good = _create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    bad = _create(api, name="Wrong token", base_url=sandbox.base_url).json()["id"]

    works = api.post(f"/api/v1/connections/{good}/check/").json()
    fails = api.post(f"/api/v1/connections/{bad}/check/").json()

    assert works["ok"] is True
    assert [step["label"] for step in works["steps"]] == ["Token", "Listings"]
    assert fails["ok"] is False
    assert fails["steps"][0]["label"] == "Token"
    assert "api_settings" in fails["summary"]  # where to get a new token


def test_reverb_webhooks_are_pasted_not_registered_and_the_api_says_where(api):
    connection_id = _create(api).json()["id"]

    setup = api.get(f"/api/v1/connections/{connection_id}/webhooks/").json()
    register = api.post(f"/api/v1/connections/{connection_id}/webhooks/")

    assert setup["by_api"] is False and "reverb.com/my/webhooks" in setup["instructions"]
    assert setup["url"].endswith(ReverbConnection.objects.get(pk=connection_id).webhook_path)
    assert register.status_code == 409 and "Paste this URL" in register.json()["detail"]


def _listed(account, connection, sandbox, sku="BN-1"):
    item = make_item(account, n=1, sku=sku)
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
    listing = ChannelListing.objects.get(item=item, connection=connection)
    listing_converge(listing.pk)
    listing.refresh_from_db()
    assert listing.actual_state == ListingState.LIVE
    return item, listing


def test_pause_stops_new_listings_but_ends_still_happen(api, account, sandbox):
    connection = ReverbConnection.objects.get(
        pk=_create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    )
    item, listing = _listed(account, connection, sandbox)

    paused = api.post(f"/api/v1/connections/{connection.pk}/pause/").json()
    assert paused["status"] == "paused"

    # Nothing new is listed there
    other = make_item(account, n=2, sku="BN-2")
    refused = api.post(f"/api/v1/items/{other.pk}/list/", {"connections": [connection.pk]}, format="json")
    assert refused.status_code == 400 and "paused" in refused.json()["connections"][0]
    # But its own listing is still ended when the item sells elsewhere (or is withdrawn)
    listings_end(account=account, item_ids=[item.pk], actor=STAFF)
    listing_converge(listing.pk)
    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ENDED
    assert sandbox.listing(listing.external_id)["state"]["slug"] == "ended"

    assert api.post(f"/api/v1/connections/{connection.pk}/resume/").json()["status"] == "active"


def test_disconnect_is_a_dry_run_first_then_ends_every_listing_and_disables(api, account, sandbox):
    connection = ReverbConnection.objects.get(
        pk=_create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    )
    _item, listing = _listed(account, connection, sandbox)

    dry = api.post(f"/api/v1/connections/{connection.pk}/disconnect/", {}, format="json").json()
    assert (dry["live"], dry["applied"], dry["skus"]) == (1, False, ["BN-1"])
    assert "will end 1 listing" in dry["text"]
    listing.refresh_from_db()
    assert listing.desired_state == DesiredState.LIVE  # nothing changed

    done = api.post(f"/api/v1/connections/{connection.pk}/disconnect/", {"apply": True}, format="json").json()
    assert done["applied"] is True and done["disabled"] is False  # not before the end is read back
    assert api.get(f"/api/v1/connections/{connection.pk}/").json()["status"] == "disconnecting"

    listing_converge(listing.pk)

    connection.refresh_from_db()
    listing.refresh_from_db()
    assert listing.actual_state == ListingState.ENDED
    assert sandbox.listing(listing.external_id)["state"]["slug"] == "ended"
    assert connection.enabled is False and connection.status == "disconnected"
    assert not _pull_tasks(connection.pk).exists()


def test_disabling_a_connection_with_live_listings_is_refused_with_what_to_do_instead(api, account, sandbox):
    connection = ReverbConnection.objects.get(
        pk=_create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    )
    _listed(account, connection, sandbox)

    response = api.patch(f"/api/v1/connections/{connection.pk}/", {"enabled": False}, format="json")

    assert response.status_code == 409
    assert "Pause" in response.json()["detail"] and "disconnect" in response.json()["detail"]
    connection.refresh_from_db()
    assert connection.enabled is True


def test_a_used_connection_is_kept_as_history_and_an_unused_one_can_be_deleted(api, account, sandbox):
    used = ReverbConnection.objects.get(
        pk=_create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    )
    _listed(account, used, sandbox)
    unused = _create(api, name="Never used").json()["id"]

    assert api.delete(f"/api/v1/connections/{used.pk}/").status_code == 409
    assert api.delete(f"/api/v1/connections/{unused}/").status_code == 204
    assert not ChannelConnection.objects.filter(pk=unused).exists()
    assert not _pull_tasks(unused).exists()


def test_a_pull_asked_for_answers_202_with_the_sync_run_the_worker_then_fills(api, account, sandbox):
    connection_id = _create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    sandbox.add_external_listing(sku="MADE-ON-REVERB", title="Listed on Reverb itself")

    response = api.post(f"/api/v1/connections/{connection_id}/pull/")

    assert response.status_code == 202
    queued = response.json()
    assert (queued["kind"], queued["status"]) == ("pull", "queued")
    # The worker takes that very row over (run here instead of on a queue)
    run = sync_request_run(run_id=queued["id"])
    assert run.pk == queued["id"] and run.status == "ok"
    followed = api.get(f"/api/v1/sync-runs/{queued['id']}/").json()
    assert followed["status"] == "ok"
    # A pull by hand reads every listing now: the one made on Reverb is imported for review
    assert ChannelListing.objects.filter(connection_id=connection_id, item__sku="MADE-ON-REVERB").exists()
    assert SyncRun.objects.filter(connection_id=connection_id, kind="pull").count() == 1


def test_audit_and_import_asked_for_are_dry_runs_unless_applied(api, sandbox):
    connection_id = _create(api, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url).json()["id"]
    sandbox.add_external_listing(sku="MADE-ON-REVERB", title="Listed on Reverb itself")

    audit = api.post(f"/api/v1/connections/{connection_id}/audit/", {}, format="json").json()
    run = sync_request_run(run_id=audit["id"])
    assert run.report["unknown"] == ["MADE-ON-REVERB"] and run.report["applied"] is False
    assert not ChannelListing.objects.exists()

    imported = api.post(f"/api/v1/connections/{connection_id}/import/", {"apply": True}, format="json").json()
    run = sync_request_run(run_id=imported["id"])
    assert run.kind == "import" and run.report["created"] == ["MADE-ON-REVERB"]
    assert ChannelListing.objects.filter(item__sku="MADE-ON-REVERB", item__needs_review=True).exists()


def test_a_disconnected_connection_cannot_be_synced(api, account):
    connection = ReverbConnection.objects.create(account=account, name="Off", api_token=TOKEN, enabled=False)

    response = api.post(f"/api/v1/connections/{connection.pk}/pull/")

    assert response.status_code == 409 and "enable it" in response.json()["detail"]
    assert not SyncRun.objects.exists()


def test_the_webhook_inbox_lists_shows_and_replays_only_the_accounts_own_deliveries(api, other_api, account):
    connection = ReverbConnection.objects.create(account=account, name="Reverb", api_token=TOKEN)
    event = WebhookEvent.objects.create(
        account=account,
        connection=connection,
        topic="listings/update",
        dedupe_key="k1",
        payload={"listing": {"id": 1}},
        status="failed",
        last_error="boom",
    )

    listed = api.get("/api/v1/webhook-events/?status=failed").json()["results"]
    assert [row["id"] for row in listed] == [event.pk] and listed[0]["connection_name"] == "Reverb"
    assert other_api.get("/api/v1/webhook-events/").json()["results"] == []
    assert other_api.post(f"/api/v1/webhook-events/{event.pk}/replay/").status_code == 404

    assert api.post(f"/api/v1/webhook-events/{event.pk}/replay/").json() == {"replayed": 1}
    event.refresh_from_db()
    assert (event.status, event.last_error) == ("pending", "")


def test_orders_show_and_filter_by_connection(api, account):
    from inventory.models import Order

    one = ReverbConnection.objects.create(account=account, name="Main", api_token=TOKEN)
    two = ReverbConnection.objects.create(account=account, name="Outlet", api_token=TOKEN)
    common = {"account": account, "channel": "reverb", "external_id": "1001", "placed_at": "2026-12-01T10:00:00Z"}
    Order.objects.create(connection=one, **common)
    Order.objects.create(connection=two, **common)

    rows = api.get(f"/api/v1/orders/?connection={two.pk}").json()["results"]

    assert [(row["connection"], row["connection_name"], row["external_id"]) for row in rows] == [
        (two.pk, "Outlet", "1001")
    ]


def test_the_schema_documents_connections_syncs_and_the_inbox(api):
    schema = api.get("/api/schema/?format=json").json()

    paths = schema["paths"]
    for path in [
        "/api/v1/connections/",
        "/api/v1/connections/{id}/check/",
        "/api/v1/connections/{id}/disconnect/",
        "/api/v1/connections/{id}/pull/",
        "/api/v1/connections/{id}/audit/",
        "/api/v1/connections/{id}/import/",
        "/api/v1/connections/{id}/webhooks/",
        "/api/v1/webhook-events/{id}/replay/",
        "/api/v1/items/{id}/mark-reviewed/",
        "/api/v1/items/{id}/photos/",
        "/api/v1/items/{id}/photos/reorder/",
    ]:
        assert path in paths, path
    assert "202" in paths["/api/v1/connections/{id}/pull/"]["post"]["responses"]
    assert "ReverbConnection" in schema["components"]["schemas"]
