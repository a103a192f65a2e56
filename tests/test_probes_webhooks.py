"""Webhook endpoints under abuse and outages (issue 15, "found by probing"): a delivery while the
broker is down is stored and answered, and queued later by the sweeper; bodies that are too big,
of the wrong type, nested too deeply or of an unknown topic, and floods from a leaked URL, are
refused before anything is stored."""

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_reverb.models import ReverbConnection
from inventory import tasks
from inventory.models import WebhookEvent, WebhookStatus
from tests.outage import broker_down

pytestmark = pytest.mark.django_db

ORDER = {
    "order_number": "1001",
    "status": "paid",
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
}


@pytest.fixture
def connection(account):
    return ReverbConnection.objects.create(
        account=account, name="Reverb", api_token="t", base_url="http://127.0.0.1:9/", timeout_seconds=1
    )


@pytest.fixture
def queued(monkeypatch):
    """The webhook tasks that were queued (instead of sending them to the broker)."""
    sent = []
    monkeypatch.setattr(
        tasks.process_webhook_event_task, "apply_async", lambda args, queue=None, **kw: sent.append((args, queue))
    )
    return sent


def post(client, connection, body, content_type="application/json", **extra):
    return client.post(connection.webhook_path, body, content_type=content_type, **extra)


def test_a_delivery_while_the_broker_is_down_is_stored_and_answered_with_a_warning(
    client, connection, caplog, django_capture_on_commit_callbacks
):
    with broker_down(), caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        response = post(client, connection, json.dumps(ORDER))

    assert (response.status_code, response.content) == (200, b"stored")
    event = WebhookEvent.objects.get()
    assert event.status == WebhookStatus.PENDING
    assert "could not queue inventory.process_webhook" in caplog.text
    assert "a sweeper queues it later" in caplog.text


def test_the_sweeper_requeues_pending_deliveries_older_than_two_minutes_only(connection, queued):
    def event(key, age_seconds, status=WebhookStatus.PENDING):
        row = WebhookEvent.objects.create(
            account=connection.account,
            connection=connection,
            topic="orders/create",
            dedupe_key=key,
            payload={},
            status=status,
        )
        WebhookEvent.objects.filter(pk=row.pk).update(received_at=timezone.now() - timedelta(seconds=age_seconds))
        return row.pk

    stalled = event("old", 600)
    event("fresh", 10)
    event("done", 600, WebhookStatus.PROCESSED)

    assert tasks.sweep_webhooks_task() == 1
    assert queued == [([stalled], "webhooks")]


def test_a_redelivery_of_a_still_pending_event_queues_it_again(
    client, connection, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post(client, connection, json.dumps(ORDER))
        again = post(client, connection, json.dumps(ORDER))

    assert (first.content, again.content) == (b"stored", b"duplicate")
    event = WebhookEvent.objects.get()
    assert queued == [([event.pk], "webhooks"), ([event.pk], "webhooks")]


def test_a_deeply_nested_body_is_a_400_and_stores_nothing(client, connection):
    response = post(client, connection, "[" * 100_000 + "]" * 100_000)

    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_a_body_over_the_limit_is_a_413(client, connection, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    response = post(client, connection, json.dumps({**ORDER, "padding": "x" * 2000}))

    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_a_body_that_is_not_json_by_its_content_type_is_a_415(client, connection):
    response = post(client, connection, json.dumps(ORDER), content_type="text/plain")

    assert response.status_code == 415
    assert "send application/json" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("headers", "body"),
    [({"HTTP_X_REVERB_TOPIC": "anything/else"}, ORDER), ({}, {"hello": "world"})],
    ids=["unknown topic header", "shape of no known topic"],
)
def test_a_delivery_of_an_unknown_topic_is_a_400_and_stores_nothing(client, connection, headers, body):
    response = post(client, connection, json.dumps(body), **headers)

    assert response.status_code == 400
    assert "Unknown webhook topic" in response.json()["detail"]
    assert "orders/create" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_deliveries_beyond_the_rate_per_connection_are_a_429_with_retry_after(
    client, connection, account, settings, queued
):
    settings.WEBHOOK_RATE_PER_MINUTE = 3
    other = ReverbConnection.objects.create(
        account=account, name="Reverb 2", api_token="t", base_url="http://127.0.0.1:9/"
    )

    answers = [post(client, connection, json.dumps({**ORDER, "order_number": str(n)})).status_code for n in range(5)]
    elsewhere = post(client, other, json.dumps(ORDER))

    assert answers == [200, 200, 200, 429, 429]
    refused = post(client, connection, json.dumps(ORDER))
    assert int(refused["Retry-After"]) >= 1
    assert "More than 3 deliveries this minute" in refused.json()["detail"]
    assert elsewhere.status_code == 200  # the limit is per connection
    assert WebhookEvent.objects.filter(connection=connection).count() == 3
