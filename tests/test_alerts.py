"""Alerts that reach people: one per cause with a count, severity by kind (per account), resolved
when the cause goes away or by staff with a note, critical ones mailed at once and the rest in a
daily digest, only to the account's own staff and never to a severity they muted."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from accounts.services import staff_user_create
from channels_reverb.models import ReverbConnection
from inventory.models import (
    Alert,
    AlertKind,
    AlertSeverity,
    ChannelListing,
    DesiredState,
    ListingState,
    SyncRun,
    WebhookEvent,
)
from inventory.services import Actor, LineSpec, order_complete, order_create, stock_adjust
from inventory.services.alerts import (
    alert_raise,
    alerts_digest_send,
    alerts_not_ended_check,
    alerts_webhooks_stopped_check,
    price_drift_beyond_tolerance,
)
from inventory.services.listings import listing_failed
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")


@pytest.fixture(autouse=True)
def _commit_callbacks_run(monkeypatch, settings):
    from django.db import transaction

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monkeypatch.setattr("inventory.tasks.enqueue_converge", lambda listing_id: None)
    monkeypatch.setattr(transaction, "on_commit", lambda func, using=None, robust=False: func())


@pytest.fixture
def connection(account):
    return ReverbConnection.objects.create(account=account, name="Reverb main shop", api_token="rvb-0123456789ab")


def raise_one(account, key="k1", kind=AlertKind.PRICE_DRIFT, **refs):
    return alert_raise(account_id=account.pk, kind=kind, dedupe_key=key, title=f"{kind} {key}", **refs)


def test_a_cause_seen_again_counts_on_its_one_open_alert(account):
    first = raise_one(account)
    again = raise_one(account)

    assert first.pk == again.pk
    assert Alert.objects.count() == 1
    again.refresh_from_db()
    assert again.count == 2 and again.last_seen_at >= again.created_at
    assert again.severity == AlertSeverity.MEDIUM  # price drift, by default


def test_severity_comes_from_the_kind_and_the_account_can_change_it(account):
    account.alert_severities = {AlertKind.PRICE_DRIFT: AlertSeverity.HIGH}
    account.save()

    assert raise_one(account).severity == AlertSeverity.HIGH
    assert raise_one(account, key="c", kind=AlertKind.CONFLICT).severity == AlertSeverity.CRITICAL


def test_staff_resolve_with_a_note_and_the_next_occurrence_opens_a_new_alert(api, other_api, account):
    alert = raise_one(account)

    assert other_api.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"note": "x"}, format="json").status_code == 404
    seen = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/").json()
    assert seen == {"changed": 1}
    assert api.get("/api/v1/alerts/?open=true").json()["count"] == 1  # seen, still open

    done = api.post(f"/api/v1/alerts/{alert.pk}/resolve/", {"note": "Price fixed on Reverb"}, format="json")

    assert done.json() == {"changed": 1}
    alert.refresh_from_db()
    assert alert.resolution == "Price fixed on Reverb" and alert.resolved_by is not None
    assert api.get("/api/v1/alerts/?open=true").json()["count"] == 0
    assert raise_one(account).pk != alert.pk  # history kept, a new alert for the new occurrence
    assert Alert.objects.count() == 2


def test_the_api_filters_by_severity_kind_and_open(api, account):
    raise_one(account, key="a", kind=AlertKind.CONFLICT)
    raise_one(account, key="b", kind=AlertKind.REVIEW)

    critical = api.get("/api/v1/alerts/?open=true&severity=critical&severity=high").json()["results"]

    assert [row["kind"] for row in critical] == ["conflict"]
    assert api.get("/api/v1/alerts/?kind=review").json()["results"][0]["severity"] == "low"


def test_a_sync_error_is_resolved_when_the_listing_syncs_again(account, connection):
    from channels_reverb import sync as reverb_sync
    from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
    from inventory.services.listings import listing_converge, listings_publish

    reverb_sync._clients.__dict__.clear()
    with ReverbSandbox() as sandbox:
        ReverbConnection.objects.filter(pk=connection.pk).update(base_url=sandbox.base_url, api_token=DEFAULT_TOKEN)
        item = make_item(account, n=1, sku="ERR-1")
        listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[connection.pk])
        listing = ChannelListing.objects.get(item=item)
        listing_failed(listing.pk, RuntimeError("Reverb was down"))
        assert Alert.objects.get(kind=AlertKind.SYNC_ERROR).is_open

        ChannelListing.objects.filter(pk=listing.pk).update(needs_push=True)
        listing_converge(listing.pk)

    alert = Alert.objects.get(kind=AlertKind.SYNC_ERROR)
    assert not alert.is_open and "synced again" in alert.resolution


def test_low_then_out_of_stock_for_multi_quantity_items_and_never_for_one_of_a_kind(account):
    amps = make_item(account, n=1, sku="AMP-3", quantity=3)
    guitar = make_item(account, n=2, sku="GTR-1")

    def sell(item, units, n):
        order, _ = order_create(
            account=account,
            actor=STAFF,
            channel="manual",
            external_id=f"S{n}",
            placed_at=timezone.now(),
            lines=[LineSpec(item.pk, units)],
        )
        order_complete(order_id=order.pk, actor=STAFF)

    sell(amps, 2, 1)
    low = Alert.objects.get(kind=AlertKind.LOW_STOCK)
    assert low.title == "AMP-3 is running low: 1 left"

    sell(amps, 1, 2)  # the last unit: the item sells out
    low.refresh_from_db()
    assert not low.is_open
    assert Alert.objects.get(kind=AlertKind.OUT_OF_STOCK).is_open

    sell(guitar, 1, 3)  # a one-of-a-kind sale is a sale, not a stock problem
    assert not Alert.objects.filter(item=guitar).exists()


def test_stock_received_resolves_the_low_stock_alert(account):
    pedals = make_item(account, n=1, sku="PED-5", quantity=5)
    account.low_stock_threshold = 4
    account.save()

    stock_adjust(item_id=pedals.pk, actor=STAFF, delta=-2, reason="count")
    assert Alert.objects.get(kind=AlertKind.LOW_STOCK).is_open
    stock_adjust(item_id=pedals.pk, actor=STAFF, delta=10, reason="received")

    assert not Alert.objects.get(kind=AlertKind.LOW_STOCK).is_open


def test_critical_alerts_are_mailed_at_once_to_the_accounts_own_staff_who_want_them(account, other_account):
    staff_user_create(account=account, username="owner", password="correct-horse-battery-9", email="owner@blue.example")
    muted = staff_user_create(
        account=account, username="quiet", password="correct-horse-battery-9", email="quiet@blue.example"
    )
    muted.alert_emails_muted = ["critical"]
    muted.save()
    staff_user_create(
        account=other_account, username="rival", password="correct-horse-battery-9", email="x@rival.example"
    )

    raise_one(account, key="double", kind=AlertKind.CONFLICT)
    raise_one(account, key="double", kind=AlertKind.CONFLICT)  # seen again: not mailed again

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["owner@blue.example"]
    assert mail.outbox[0].subject.startswith("[Critical]")


def test_the_daily_digest_lists_the_rest_once_per_person_and_respects_mutes(account, other_account):
    staff_user_create(account=account, username="owner", password="correct-horse-battery-9", email="owner@blue.example")
    picky = staff_user_create(
        account=account, username="picky", password="correct-horse-battery-9", email="p@blue.example"
    )
    picky.alert_emails_muted = ["low"]
    picky.save()
    staff_user_create(
        account=other_account, username="rival", password="correct-horse-battery-9", email="x@rival.example"
    )
    raise_one(account, key="drift", kind=AlertKind.PRICE_DRIFT)
    raise_one(account, key="review", kind=AlertKind.REVIEW)

    assert alerts_digest_send() == 2
    by_person = {message.to[0]: message.body for message in mail.outbox}
    assert set(by_person) == {"owner@blue.example", "p@blue.example"}
    assert "review" in by_person["owner@blue.example"] and "review" not in by_person["p@blue.example"]
    assert alerts_digest_send() == 0  # each alert once


def test_a_listing_still_live_minutes_after_a_sale_elsewhere_is_critical_until_ended(account, connection):
    item = make_item(account, n=1, sku="LATE-1")
    listing = ChannelListing.objects.create(
        account=account,
        item=item,
        connection=connection,
        external_id="7001",
        desired_state=DesiredState.ENDED,
        end_reason="sold_elsewhere",
        actual_state=ListingState.LIVE,
    )
    ChannelListing.objects.filter(pk=listing.pk).update(desired_changed_at=timezone.now() - timedelta(minutes=10))

    assert alerts_not_ended_check(minutes=5) == 1
    alert = Alert.objects.get(kind=AlertKind.NOT_ENDED)
    assert alert.severity == AlertSeverity.CRITICAL and alert.connection_id == connection.pk
    assert "Reverb main shop" in alert.title


def test_webhooks_that_stopped_while_pulls_find_orders_are_flagged_and_cleared_by_the_next(account, connection):
    event = WebhookEvent.objects.create(
        account=account, connection=connection, topic="orders/create", dedupe_key="e1", payload={}
    )
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(days=2))
    SyncRun.objects.create(account=account, connection=connection, kind="pull", status="ok", created=2)

    assert alerts_webhooks_stopped_check(quiet_hours=6) == 1
    assert Alert.objects.get(kind=AlertKind.WEBHOOKS_STOPPED).connection_id == connection.pk

    from inventory.services.sync import webhook_receive

    webhook_receive(
        connection=connection, headers={"X-Reverb-Topic": "orders/update"}, body=b'{"order": {"order_number": "9"}}'
    )
    assert not Alert.objects.get(kind=AlertKind.WEBHOOKS_STOPPED).is_open


def test_price_drift_within_the_connections_tolerance_is_not_an_alert(account, connection):
    connection.price_drift_percent = Decimal("2")
    connection.price_drift_amount = Decimal("0")

    assert not price_drift_beyond_tolerance(connection, "1000.00", Decimal("1015.00"))
    assert price_drift_beyond_tolerance(connection, "1000.00", Decimal("1030.00"))
    connection.price_drift_percent = Decimal("0")
    assert price_drift_beyond_tolerance(connection, "1000.00", Decimal("1000.01"))
