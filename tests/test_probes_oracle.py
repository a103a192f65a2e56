"""No existence oracle in list filters (issue 15): another tenant's id and an id that exists
nowhere get the same answer, a 400 "Select a valid choice" (filters are scoped to the account)."""

import pytest

from channels_reverb.models import ReverbConnection
from inventory.models import ChannelListing, DesiredState
from tests.factories import make_item

pytestmark = pytest.mark.django_db

NOWHERE = 987654321


@pytest.fixture
def theirs(other_account):
    connection = ReverbConnection.objects.create(account=other_account, name="Theirs", api_token="t")
    item = make_item(other_account, n=1, sku="THEIRS-1")
    return item, connection


@pytest.fixture
def mine(account):
    connection = ReverbConnection.objects.create(account=account, name="Mine", api_token="t")
    item = make_item(account, n=1, sku="MINE-1")
    ChannelListing.objects.create(account=account, item=item, connection=connection, desired_state=DesiredState.LIVE)
    return item, connection


@pytest.mark.parametrize(
    ("path", "param", "which"),
    [
        ("/api/v1/listings/", "item", 0),
        ("/api/v1/listings/", "connection", 1),
        ("/api/v1/conflicts/", "item", 0),
        ("/api/v1/sync-runs/", "connection", 1),
        ("/api/v1/webhook-events/", "connection", 1),
    ],
)
def test_another_tenants_id_and_an_unknown_id_answer_the_same_400(api, theirs, mine, path, param, which):
    other_tenant = api.get(path, {param: theirs[which].pk})
    unknown = api.get(path, {param: NOWHERE})
    own = api.get(path, {param: mine[which].pk})

    assert (other_tenant.status_code, unknown.status_code, own.status_code) == (400, 400, 200)
    assert "Select a valid choice" in str(other_tenant.json())
    assert other_tenant.json() == {**unknown.json(), **other_tenant.json()}  # same shape and code
    assert str(theirs[which].pk) not in str(unknown.json())
