"""Bad input is a 4xx that says what to do, never a 500 (issue 15, "found by probing")."""

import pytest

from tests.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("delta", [1099511627776, -1099511627776, 1_000_001])
def test_adjust_stock_with_a_delta_beyond_the_bound_is_a_400_that_says_the_bound(api, account, delta):
    item = make_item(account, n=1, sku="BIG-1", quantity=3)

    response = api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": delta, "reason": "probe"})

    assert response.status_code == 400, response.content
    assert "1,000,000 units" in str(response.json())
    item.refresh_from_db()
    assert item.quantity_on_hand == 3


def test_adjust_stock_at_the_bound_is_accepted(api, account):
    item = make_item(account, n=1, sku="BIG-2", quantity=3)

    response = api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": 1_000_000, "reason": "container"})

    assert response.status_code == 200, response.content
    item.refresh_from_db()
    assert item.quantity_on_hand == 1_000_003


@pytest.mark.parametrize(
    ("path", "field"),
    [("labels/", "label_format"), ("packing-slips/", "order_numbers"), ("pick-list/", "skus")],
)
def test_options_on_the_document_endpoints_describes_their_input(api, path, field):
    response = api.options(f"/api/v1/documents/{path}")

    assert response.status_code == 200, response.content
    assert field in response.json()["actions"]["POST"]
