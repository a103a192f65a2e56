"""What a REST client and staff need around the catalogue: review flags, photos, failing pulls,
the webhook endpoint's answers, and connections added in the admin being scheduled at once."""

from __future__ import annotations

import json

import pytest
from django_celery_beat.models import PeriodicTask

from channels_reverb.models import ReverbConnection
from inventory.channels import PermanentChannelError, TransientChannelError, WebhookRejected, WebhookReply
from inventory.models import Alert, AlertKind, ChannelListing, DesiredState, ListingState, SyncRun, WebhookEvent
from inventory.services.sync import connection_pull_failed
from tests.factories import make_item

pytestmark = pytest.mark.django_db

TOKEN = "rvb-token-0123456789abcd"


@pytest.fixture(autouse=True)
def _commit_callbacks_run(monkeypatch):
    from django.db import transaction

    sent: list[int] = []
    monkeypatch.setattr("inventory.tasks.enqueue_converge", sent.append)
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())
    return sent


@pytest.fixture
def connection(account):
    return ReverbConnection.objects.create(account=account, name="Reverb", api_token=TOKEN)


def live_listing(account, connection, item):
    return ChannelListing.objects.create(
        account=account,
        item=item,
        connection=connection,
        external_id=f"7{item.pk}",
        desired_state=DesiredState.LIVE,
        actual_state=ListingState.LIVE,
    )


def test_needs_review_is_readable_filterable_and_cleared_by_mark_reviewed(api, other_api, account):
    imported = make_item(account, n=1, sku="IMP-1")
    make_item(account, n=2, sku="OWN-1")
    type(imported).objects.filter(pk=imported.pk).update(needs_review=True)
    Alert.objects.create(account=account, kind=AlertKind.REVIEW, dedupe_key="imported:x", title="t", item=imported)

    flagged = api.get("/api/v1/items/?needs_review=true").json()["results"]
    assert [(row["sku"], row["needs_review"]) for row in flagged] == [("IMP-1", True)]
    assert other_api.post(f"/api/v1/items/{imported.pk}/mark-reviewed/").status_code == 404

    assert api.post(f"/api/v1/items/{imported.pk}/mark-reviewed/").json() == {"reviewed": 1}

    assert api.get("/api/v1/items/?needs_review=true").json()["results"] == []
    assert not Alert.objects.filter(kind=AlertKind.REVIEW, resolved_at__isnull=True).exists()
    # needs_review is not writable directly: only the action clears it
    api.patch(f"/api/v1/items/{imported.pk}/", {"needs_review": True}, format="json")
    imported.refresh_from_db()
    assert imported.needs_review is False


def test_photos_are_added_reordered_and_removed_and_each_change_is_pushed(api, account, connection):
    item = make_item(account, n=1, sku="PH-1")
    listing = live_listing(account, connection, item)

    first = api.post(
        f"/api/v1/items/{item.pk}/photos/", {"url": "https://img.example/a.jpg", "alt_text": "front"}, format="json"
    )
    second = api.post(f"/api/v1/items/{item.pk}/photos/", {"url": "https://img.example/b.jpg"}, format="json")
    assert first.status_code == second.status_code == 201
    listing.refresh_from_db()
    assert listing.needs_push is True  # a photo-only edit is pushed to the live listing

    ChannelListing.objects.filter(pk=listing.pk).update(needs_push=False)
    ids = [second.json()["id"], first.json()["id"]]
    reordered = api.post(f"/api/v1/items/{item.pk}/photos/reorder/", {"photo_ids": ids}, format="json").json()
    assert [photo["src"] for photo in reordered] == ["https://img.example/b.jpg", "https://img.example/a.jpg"]
    listing.refresh_from_db()
    assert listing.needs_push is True

    assert api.delete(f"/api/v1/items/{item.pk}/photos/{ids[0]}/").status_code == 204
    assert [p.url for p in item.photos.all()] == ["https://img.example/a.jpg"]


def test_bad_photo_input_says_what_to_send_and_changes_nothing(api, other_api, account):
    item = make_item(account, n=1, sku="PH-2")

    neither = api.post(f"/api/v1/items/{item.pk}/photos/", {"alt_text": "x"}, format="json")
    wrong_order = api.post(f"/api/v1/items/{item.pk}/photos/reorder/", {"photo_ids": [999]}, format="json")
    not_theirs = other_api.post(f"/api/v1/items/{item.pk}/photos/", {"url": "https://img.example/x.jpg"}, format="json")
    missing = api.delete(f"/api/v1/items/{item.pk}/photos/12345/")

    assert neither.status_code == 400 and "either an image file or a url" in json.dumps(neither.json())
    assert wrong_order.status_code == 400 and "photo_ids" in wrong_order.json()
    assert not_theirs.status_code == 404
    assert missing.status_code == 400
    assert item.photos.count() == 0


def test_a_photo_only_edit_in_the_admin_pushes_the_photos(admin_client_for, staff, account, connection):
    item = make_item(account, n=1, sku="PH-3", title="Gibson Les Paul")
    listing = live_listing(account, connection, item)
    page = admin_client_for(staff).get(f"/admin/inventory/item/{item.pk}/change/")
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data = {k: ("" if v is None else v) for k, v in data.items()}
    for formset in page.context["inline_admin_formsets"]:
        prefix = formset.formset.prefix
        data.update(
            {
                f"{prefix}-TOTAL_FORMS": "1" if formset.formset.model.__name__ == "ItemPhoto" else "0",
                f"{prefix}-INITIAL_FORMS": "0",
            }
        )
        if formset.formset.model.__name__ == "ItemPhoto":
            data.update({f"{prefix}-0-url": "https://img.example/new.jpg", f"{prefix}-0-position": "0"})

    response = admin_client_for(staff).post(f"/admin/inventory/item/{item.pk}/change/", data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    assert [p.url for p in item.photos.all()] == ["https://img.example/new.jpg"]
    listing.refresh_from_db()
    assert listing.needs_push is True


def test_pulls_failing_in_a_row_or_refused_raise_one_connection_alert(account, connection):
    def failed_run():
        SyncRun.objects.create(account=account, connection=connection, kind="pull", status="failed")

    failed_run()
    assert connection_pull_failed(connection_id=connection.pk, error=TransientChannelError("timeout")) is False
    failed_run()
    failed_run()
    assert connection_pull_failed(connection_id=connection.pk, error=TransientChannelError("timeout")) is True
    assert connection_pull_failed(connection_id=connection.pk, error=PermanentChannelError("401 token")) is True

    [alert] = Alert.objects.filter(kind=AlertKind.CONNECTION)
    assert alert.title == "Reverb cannot be read: sales there may not reach us"


def test_the_webhook_endpoint_answers_rejections_replies_and_challenges_without_storing(
    client, connection, monkeypatch
):
    from channels_reverb import sync as reverb_sync

    url = f"/hooks/reverb/{connection.webhook_token}/"

    def rejecting(conn, headers, body):
        raise WebhookRejected("The signature does not match.", http_status=401)

    monkeypatch.setattr(reverb_sync, "parse_webhook", rejecting)
    assert client.post(url, b"{}", content_type="application/json").status_code == 401

    monkeypatch.setattr(reverb_sync, "parse_webhook", lambda conn, headers, body: WebhookReply(200, b"pong"))
    # A form-encoded ping as WooCommerce sends one: a content type the channel must declare.
    monkeypatch.setattr(
        reverb_sync, "WEBHOOK_CONTENT_TYPES", {"application/json", "application/x-www-form-urlencoded"}, raising=False
    )
    ping = client.post(url, b"webhook_id=3", content_type="application/x-www-form-urlencoded")
    assert (ping.status_code, ping.content) == (200, b"pong")

    assert client.get(url).status_code == 405  # Reverb has no endpoint challenge
    assert client.post("/hooks/reverb/not-a-token/", b"{}", content_type="application/json").status_code == 404
    assert not WebhookEvent.objects.exists()


def test_a_connection_added_in_the_admin_is_scheduled_at_once(admin_client_for, staff):
    data = {
        "name": "Reverb main shop",
        "enabled": "on",
        "priority": "20",
        "api_token": TOKEN,
        "base_url": "https://api.reverb.com/api",
        "timeout_seconds": "10",
        "shipping_profile_id": "",
        "category_uuids": "{}",
        "pull_interval_seconds": "90",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "900",
        "stock_buffer_percent": "0",
    }

    response = admin_client_for(staff).post("/admin/channels_reverb/reverbconnection/add/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    connection = ReverbConnection.objects.get()
    [task] = PeriodicTask.objects.filter(task="inventory.pull_connection", args=json.dumps([connection.pk]))
    assert task.interval.every == 90
