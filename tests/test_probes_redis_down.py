"""Redis down (cache and broker at a closed port): reads and writes keep working (issue 15).

The API throttle and every cache use fail open with a warning (config/cache.py), and work that
cannot be queued is logged and picked up later by the sweepers.
"""

import logging

import pytest
from django.urls import reverse

from billing.models import PlanCode
from config import cache as resilient
from inventory.models import ChannelListing, DesiredState
from inventory.services.listings import listings_lagging
from tests.factories import make_item
from tests.outage import redis_down  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("redis_down")]


@pytest.fixture
def limited(settings):
    """A plan with a per-minute API limit, so the throttle's cache counter is really used."""
    settings.BILLING_DEFAULT_PLAN = PlanCode.FREE


def test_api_reads_and_writes_work_and_the_throttle_fails_open_with_a_warning(
    api,
    account,
    limited,
    caplog,
):
    make_item(account, n=1, sku="RD-1")
    resilient._last_warning[0] = 0.0  # setting up the account already warned once (30 s apart)
    with caplog.at_level(logging.WARNING, logger="config.cache"):
        listed = api.get("/api/v1/items/")
        created = api.post("/api/v1/items/", {"sku": "RD-2", "title": "Made while Redis is down", "price": "10"})

    assert listed.status_code == 200, listed.content
    assert [row["sku"] for row in listed.json()["results"]] == ["RD-1"]
    assert created.status_code == 201, created.content
    assert "cache unavailable" in caplog.text
    assert "rate limits" in caplog.text


def test_the_admin_item_change_page_works(admin_client_for, staff, account):
    item = make_item(account, n=1, sku="RD-3")
    client = admin_client_for(staff)

    page = client.get(reverse("admin:inventory_item_change", args=[item.pk]))

    assert page.status_code == 200
    assert "RD-3" in page.content.decode()


def test_a_publish_that_cannot_be_queued_is_answered_and_left_for_the_sweeper(
    api,
    account,
    caplog,
    django_capture_on_commit_callbacks,
):
    from channels_reverb.models import ReverbConnection

    connection = ReverbConnection.objects.create(
        account=account, name="Reverb", api_token="t", base_url="http://127.0.0.1:9/"
    )
    item = make_item(account, n=1, sku="RD-4")

    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/items/{item.pk}/list/", {"connections": [connection.pk]})

    assert response.status_code < 300, response.content
    listing = ChannelListing.objects.get(item=item, connection=connection)
    assert listing.desired_state == DesiredState.LIVE
    assert "could not queue inventory.converge_listing" in caplog.text
    from datetime import timedelta

    assert listing.pk in listings_lagging(older_than=timedelta(0))  # what the sweeper queues again
