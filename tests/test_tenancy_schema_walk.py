"""Every operation of the OpenAPI schema that names a row, called with another account's ids: 404
each time, and nothing of theirs changed. Walks the schema, so an endpoint added later is covered
(or this test says which of its path parameters it cannot fill)."""

import re

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from channels_etsy.models import EtsyConnection
from channels_reverb.models import ReverbConnection
from inventory.models import (
    Alert,
    AlertKind,
    ChannelListing,
    Conflict,
    Item,
    ItemPhoto,
    SyncRun,
    WebhookEvent,
)
from inventory.services import Actor, LineSpec, order_create
from tests.factories import make_item

pytestmark = pytest.mark.django_db

# Which of their rows fills `{id}`, by the path's resource (the first path segment after /api/v1/).
RESOURCE = {
    "alerts": "alert",
    "conflicts": "conflict",
    "connections": "connection",
    "etsy": "etsy_connection",
    "items": "item",
    "listings": "listing",
    "orders": "order",
    "sync-runs": "sync_run",
    "webhook-events": "webhook_event",
}


@pytest.fixture
def theirs(other_account):
    item = make_item(other_account, n=1, sku="THEIRS-1", title="Their prized Les Paul", quantity=2)
    photo = ItemPhoto.objects.create(item=item, url="https://cdn.example.com/theirs.jpg", position=0)
    order, _ = order_create(
        account=other_account,
        actor=Actor(),
        channel="reverb",
        external_id="THEIR-ORDER",
        placed_at=timezone.now(),
        lines=[LineSpec(item.pk, 1)],
    )
    losing, _ = order_create(
        account=other_account,
        actor=Actor(),
        channel="reverb",
        external_id="THEIR-ORDER-2",
        placed_at=timezone.now(),
        lines=[LineSpec(item.pk, 1)],
    )
    connection = ReverbConnection.objects.create(
        account=other_account, name="Their Reverb", api_token="rvb-theirs-1234"
    )
    etsy = EtsyConnection.objects.create(account=other_account, name="Their Etsy", shop_id="123")
    listing = ChannelListing.objects.create(
        account=other_account, item=item, connection=connection, actual_state="live", external_id="77"
    )
    rows = {
        "item": item,
        "photo": photo,
        "order": order,
        "connection": connection,
        "etsy_connection": etsy,
        "listing": listing,
        "conflict": Conflict.objects.create(account=other_account, item=item, winning_order=order, losing_order=losing),
        "alert": Alert.objects.create(
            account=other_account, kind=AlertKind.SYNC_ERROR, dedupe_key="theirs", title="Their alert", item=item
        ),
        "sync_run": SyncRun.objects.create(account=other_account, connection=connection, kind="pull", status="ok"),
        "webhook_event": WebhookEvent.objects.create(
            account=other_account, connection=connection, topic="orders/updated", dedupe_key="theirs-1", payload={}
        ),
    }
    return rows


def _operations_naming_a_row():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        if "{" not in path:
            continue
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method


OPERATIONS = sorted(_operations_naming_a_row())


def _fill(path: str, rows: dict) -> str:
    resource = path.removeprefix("/api/v1/").split("/", 1)[0]
    assert resource in RESOURCE, f"{path}: say in RESOURCE which of their rows fills its id"

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name == "id":
            return str(rows[RESOURCE[resource]].pk)
        if name == "photo_id":
            return str(rows["photo"].pk)
        raise AssertionError(f"{path}: no row of theirs for {{{name}}}")

    return re.sub(r"\{([^}]+)\}", value, path)


def _snapshot(rows: dict) -> dict:
    """Their rows as stored, to see that nothing of theirs changed."""
    return {
        "items": list(Item.objects.filter(pk=rows["item"].pk).values()),
        "listings": list(ChannelListing.objects.filter(pk=rows["listing"].pk).values()),
        "photos": ItemPhoto.objects.filter(item=rows["item"]).count(),
        "alerts": list(Alert.objects.filter(pk=rows["alert"].pk).values()),
        "conflicts": list(Conflict.objects.filter(pk=rows["conflict"].pk).values()),
        "connections": list(ReverbConnection.objects.filter(pk=rows["connection"].pk).values()),
    }


def test_the_walk_covers_every_operation_that_names_a_row():
    assert len(OPERATIONS) >= 35
    assert {path.removeprefix("/api/v1/").split("/", 1)[0] for path, _ in OPERATIONS} <= set(RESOURCE)


def test_every_operation_with_another_accounts_ids_is_404_and_changes_nothing(api, theirs):
    before = _snapshot(theirs)
    answered = {}
    for path, method in OPERATIONS:
        url = _fill(path, theirs)
        response = getattr(api, method)(url, {}, format="json")
        if response.status_code != 404:
            answered[f"{method.upper()} {url}"] = response.status_code
    assert answered == {}
    assert _snapshot(theirs) == before
