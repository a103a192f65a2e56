"""A user of account A can neither see nor change anything of account B: API and admin."""

import pytest
from django.utils import timezone

from inventory.models import Item, Order
from inventory.services import LineSpec, order_create
from tests.factories import make_item

pytestmark = pytest.mark.django_db


@pytest.fixture
def theirs(other_account, other_staff):
    from inventory.services import Actor

    # Two units, so their open order does not sell the item out (it stays active).
    item = make_item(other_account, n=1, sku="THEIRS-1", brand="Secretbrand", title="Their prized Les Paul", quantity=2)
    order, _ = order_create(
        account=other_account,
        actor=Actor(),
        channel="reverb",
        external_id="THEIR-ORDER",
        placed_at=timezone.now(),
        lines=[LineSpec(item.pk, 1)],
    )
    return {"item": item, "order": order}


def test_api_lists_filters_search_and_summary_show_only_own_rows(api, account, theirs):
    mine = make_item(account, n=2, sku="MINE-1")
    assert [r["sku"] for r in api.get("/api/v1/items/").data["results"]] == [mine.sku]
    assert api.get("/api/v1/items/?brand=Secretbrand").data["count"] == 0
    assert api.get("/api/v1/items/?search=THEIRS").data["count"] == 0
    assert api.get("/api/v1/items/summary/").data["totals"]["count"] == 1
    assert api.get("/api/v1/orders/").data["count"] == 0


def test_api_detail_and_every_action_on_another_accounts_rows_is_404(api, theirs):
    item, order = theirs["item"], theirs["order"]
    assert api.get(f"/api/v1/items/{item.pk}/").status_code == 404
    assert api.patch(f"/api/v1/items/{item.pk}/", {"title": "pwned"}).status_code == 404
    assert api.put(f"/api/v1/items/{item.pk}/", {"title": "pwned", "price": "1"}).status_code == 404
    assert api.delete(f"/api/v1/items/{item.pk}/").status_code == 404
    assert api.post(f"/api/v1/items/{item.pk}/transition/", {"to_state": "draft"}).status_code == 404
    assert api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": 5, "reason": "x"}).status_code == 404
    assert api.get(f"/api/v1/items/{item.pk}/history/").status_code == 404
    assert api.get(f"/api/v1/items/{item.pk}/ledger/").status_code == 404
    assert api.get(f"/api/v1/orders/{order.pk}/").status_code == 404
    assert api.post(f"/api/v1/orders/{order.pk}/complete/").status_code == 404
    assert api.post(f"/api/v1/orders/{order.pk}/cancel/").status_code == 404
    item.refresh_from_db()
    order.refresh_from_db()
    assert (item.title, item.state, item.quantity_on_hand) == ("Their prized Les Paul", "active", 2)
    assert order.status == "open"


def test_api_bulk_transition_cannot_reach_another_account(api, theirs):
    item = theirs["item"]
    response = api.post("/api/v1/items/bulk-transition/", {"ids": [item.pk], "to_state": "draft"})
    assert response.data["not_moved"] == [{"id": item.pk, "sku": None, "state": None, "reason": "not found"}]
    item.refresh_from_db()
    assert item.state == "active"


def test_api_order_cannot_use_another_accounts_item(api, theirs):
    response = api.post(
        "/api/v1/orders/",
        {
            "external_id": "X-1",
            "placed_at": timezone.now().isoformat(),
            "lines": [{"item": theirs["item"].pk, "quantity": 1}],
        },
    )
    assert response.status_code == 400
    assert Order.objects.filter(external_id="X-1").count() == 0


def test_api_csv_export_contains_no_other_account_rows(api, account, theirs):
    make_item(account, n=3, sku="MINE-2")
    body = b"".join(api.get("/api/v1/items/export/").streaming_content).decode()
    assert "MINE-2" in body
    assert "THEIRS-1" not in body


def test_created_items_always_belong_to_the_users_account_whatever_the_body_says(api, account, other_account):
    response = api.post("/api/v1/items/", {"title": "Mine", "price": "1", "account": other_account.pk})
    assert response.status_code == 201
    assert Item.objects.get(pk=response.data["id"]).account == account


def test_admin_changelist_search_and_filters_show_only_own_rows(admin_client_for, staff, account, theirs):
    make_item(account, n=4, sku="MINE-3", brand="Fender")
    client = admin_client_for(staff)
    page = client.get("/admin/inventory/item/").content.decode()
    assert "MINE-3" in page
    assert "THEIRS-1" not in page
    assert "Secretbrand" not in page  # not even as a filter option
    assert "THEIRS-1" not in client.get("/admin/inventory/item/?q=THEIRS").content.decode()
    assert "THEIR-ORDER" not in client.get("/admin/inventory/order/").content.decode()


def test_admin_change_pages_and_actions_on_other_accounts_rows_are_refused(admin_client_for, staff, theirs):
    item, order = theirs["item"], theirs["order"]
    client = admin_client_for(staff)
    assert client.get(f"/admin/inventory/item/{item.pk}/change/").status_code == 302  # "does not exist" redirect
    assert client.post(f"/admin/inventory/item/{item.pk}/change/", {"title": "pwned"}).status_code in (302, 404)
    assert client.post(f"/admin/inventory/item/{item.pk}/transition/draft/").status_code == 404
    client.post("/admin/inventory/item/", {"action": "transition_to_draft", "_selected_action": [item.pk]})
    client.post("/admin/inventory/order/", {"action": "cancel_orders", "_selected_action": [order.pk]})
    assert client.get(f"/admin/inventory/order/{order.pk}/change/").status_code == 302
    item.refresh_from_db()
    order.refresh_from_db()
    assert (item.title, item.state) == ("Their prized Les Paul", "active")
    assert order.status == "open"


def test_admin_csv_export_contains_no_other_account_rows(admin_client_for, staff, account, theirs):
    make_item(account, n=5, sku="MINE-4")
    body = b"".join(admin_client_for(staff).get("/admin/inventory/item/export-csv/").streaming_content).decode()
    assert "MINE-4" in body
    assert "THEIRS-1" not in body


def test_admin_ledger_and_users_of_other_accounts_are_hidden(admin_client_for, staff, other_staff, theirs):
    client = admin_client_for(staff)
    assert "THEIRS-1" not in client.get("/admin/inventory/stockmovement/").content.decode()
    assert "mallory" not in client.get("/admin/accounts/user/").content.decode()


def test_platform_superuser_sees_every_account(client, account, theirs, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", "x-very-secret-42")
    make_item(account, n=6, sku="MINE-5")
    client.force_login(boss)
    page = client.get("/admin/inventory/item/").content.decode()
    assert "MINE-5" in page and "THEIRS-1" in page
