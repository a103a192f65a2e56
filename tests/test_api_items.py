"""The item and order API as a REST client uses it."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory.models import Item, ItemStateChange, Order, StockLock, StockMovement
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def test_create_item_generates_sku_and_writes_history_and_ledger(api, account):
    response = api.post(
        "/api/v1/items/",
        {
            "title": "1966 Fender Jazzmaster",
            "brand": "Fender",
            "price": "4200.00",
            "quantity_on_hand": 1,
            "photo_urls": ["https://img.example.com/jm-1.jpg", "https://img.example.com/jm-2.jpg"],
        },
    )
    assert response.status_code == 201, response.data
    body = response.data
    assert body["sku"].startswith("FEND-")
    assert body["state"] == "draft"
    assert [p["src"] for p in body["photos"]] == [
        "https://img.example.com/jm-1.jpg",
        "https://img.example.com/jm-2.jpg",
    ]
    item = Item.objects.get(pk=body["id"])
    assert item.account == account
    assert list(item.state_changes.values_list("from_state", "to_state", "source")) == [("", "draft", "api")]
    assert list(item.stock_movements.values_list("kind", "on_hand_delta")) == [("received", 1)]


def test_bad_input_gets_field_errors_and_writes_nothing(api):
    response = api.post(
        "/api/v1/items/",
        {"title": "", "price": "-5", "sku": "bad sku!", "video_url": "https://vimeo.com/1", "quantity_on_hand": -1},
    )
    assert response.status_code == 400
    assert {"title", "price", "quantity_on_hand"} <= set(response.data)
    assert Item.objects.count() == 0
    assert ItemStateChange.objects.count() == 0


def test_model_level_errors_are_400_with_field_messages_and_nothing_written(api):
    response = api.post(
        "/api/v1/items/",
        {"title": "Strat", "price": "10", "sku": "bad sku!", "video_url": "https://vimeo.com/1"},
    )
    assert response.status_code == 400
    assert "SKU" in str(response.data["sku"])
    assert "YouTube" in str(response.data["video_url"])
    assert Item.objects.count() == 0


def test_duplicate_sku_in_the_same_account_is_refused(api, account):
    make_item(account, sku="DUP-1")
    response = api.post("/api/v1/items/", {"sku": "DUP-1", "title": "Another", "price": "1"})
    assert response.status_code == 400
    assert "already has an item with this SKU" in str(response.data)
    assert Item.objects.filter(sku="DUP-1").count() == 1


def test_same_sku_is_fine_in_another_account(api, other_account):
    make_item(other_account, sku="SHARED-1")
    response = api.post("/api/v1/items/", {"sku": "SHARED-1", "title": "Mine", "price": "1"})
    assert response.status_code == 201


def test_update_changes_fields_and_quantity_through_the_ledger(api, account):
    item = make_item(account, quantity=2)
    response = api.patch(f"/api/v1/items/{item.pk}/", {"price": "999.00", "quantity_on_hand": 5})
    assert response.status_code == 200, response.data
    item.refresh_from_db()
    assert item.price == Decimal("999.00")
    assert item.quantity_on_hand == 5
    assert list(item.stock_movements.order_by("id").values_list("kind", "on_hand_delta")) == [
        ("received", 2),
        ("received", 3),
    ]


def test_state_is_read_only_in_crud(api, account):
    item = make_item(account, state="draft")
    response = api.patch(f"/api/v1/items/{item.pk}/", {"state": "sold"})
    assert response.status_code == 200
    item.refresh_from_db()
    assert item.state == "draft"


def test_transition_moves_and_records_who_why_and_source(api, account, staff):
    item = make_item(account, state="draft")
    response = api.post(f"/api/v1/items/{item.pk}/transition/", {"to_state": "active", "reason": "photos done"})
    assert response.status_code == 200
    assert response.data["state"] == "active"
    change = item.state_changes.first()
    assert (change.from_state, change.to_state, change.user, change.source, change.reason) == (
        "draft",
        "active",
        staff,
        "api",
        "photos done",
    )


def test_disallowed_transition_is_409_with_allowed_moves_and_changes_nothing(api, account):
    item = make_item(account, state="draft")
    response = api.post(f"/api/v1/items/{item.pk}/transition/", {"to_state": "shipped"})
    assert response.status_code == 409
    assert response.data["code"] == "transition_not_allowed"
    assert response.data["allowed"] == ["active", "archived"]
    item.refresh_from_db()
    assert item.state == "draft"
    assert item.state_changes.count() == 1


def test_unknown_state_is_400(api, account):
    item = make_item(account)
    response = api.post(f"/api/v1/items/{item.pk}/transition/", {"to_state": "teleported"})
    assert response.status_code == 400
    assert "to_state" in response.data


def test_bulk_transition_reports_per_item(api, account, other_account):
    drafts = [make_item(account, n=i, state="draft") for i in range(3)]
    shipped = make_item(account, n=9, state="active")
    foreign = make_item(other_account, n=10, state="draft")
    response = api.post(
        "/api/v1/items/bulk-transition/",
        {"ids": [d.pk for d in drafts] + [shipped.pk, foreign.pk, 999999], "to_state": "active"},
    )
    assert response.status_code == 200
    assert sorted(row["id"] for row in response.data["moved"]) == sorted(d.pk for d in drafts)
    not_moved = {row["id"]: row["reason"] for row in response.data["not_moved"]}
    assert not_moved == {shipped.pk: "already active", foreign.pk: "not found", 999999: "not found"}
    foreign.refresh_from_db()
    assert foreign.state == "draft"
    assert ItemStateChange.objects.filter(to_state="active", source="api").count() == 3


def test_bulk_transition_validates_input(api):
    assert api.post("/api/v1/items/bulk-transition/", {"ids": [], "to_state": "active"}).status_code == 400
    assert api.post("/api/v1/items/bulk-transition/", {"ids": ["x"], "to_state": "active"}).status_code == 400


def test_list_filters_search_ordering_and_pagination(api, account):
    make_item(account, n=1, brand="Gibson", title="1959 Les Paul", price=Decimal("300000"))
    make_item(account, n=2, brand="Fender", title="1964 Stratocaster", price=Decimal("18000"))
    make_item(account, n=3, brand="Fender", title="1972 Telecaster", price=Decimal("7000"), state="draft")
    assert api.get("/api/v1/items/?brand=fender").data["count"] == 2
    assert api.get("/api/v1/items/?state=draft").data["count"] == 1
    assert api.get("/api/v1/items/?price_min=10000&price_max=20000").data["results"][0]["title"] == "1964 Stratocaster"
    assert api.get("/api/v1/items/?search=les paul").data["count"] == 1
    titles = [r["title"] for r in api.get("/api/v1/items/?ordering=price").data["results"]]
    assert titles == ["1972 Telecaster", "1964 Stratocaster", "1959 Les Paul"]
    page = api.get("/api/v1/items/?page_size=2").data
    assert (page["count"], len(page["results"]), page["count_is_estimate"]) == (3, 2, False)
    assert page["next"]


def test_item_list_makes_a_constant_number_of_queries(api, account):
    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/items/?page_size=50").status_code == 200
        return len(ctx.captured_queries)

    make_item(account, n=0)
    queries_for_list()  # warm the per-account plan cache (billing) and the session
    few = queries_for_list()
    for n in range(1, 40):
        make_item(account, n=n)
    assert queries_for_list() == few


def test_summary_counts_and_values_by_state(api, account):
    make_item(account, n=1, price=Decimal("100"), cost=Decimal("60"), quantity=2)
    make_item(account, n=2, price=Decimal("50"), state="draft")
    data = api.get("/api/v1/items/summary/").data
    assert data["by_state"]["active"]["count"] == 1
    assert data["by_state"]["active"]["units"] == 2
    assert Decimal(data["by_state"]["active"]["value"]) == Decimal("200")
    assert Decimal(data["by_state"]["active"]["cost_value"]) == Decimal("120")
    assert data["by_state"]["sold"]["count"] == 0
    assert data["totals"]["count"] == 2


def test_csv_export_streams_the_filtered_items(api, account):
    make_item(account, n=1, sku="FEN-1", brand="Fender")
    make_item(account, n=2, sku="GIB-1", brand="Gibson")
    response = api.get("/api/v1/items/export/?brand=Fender")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment; filename=" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("sku,title,brand")
    assert len(lines) == 2
    assert lines[1].startswith("FEN-1,")


def test_stock_adjust_and_ledger(api, account):
    item = make_item(account, quantity=3)
    response = api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": -2, "reason": "damaged in transit"})
    assert response.status_code == 200
    assert response.data["quantity_on_hand"] == 1
    too_many = api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": -5, "reason": "oops"})
    assert too_many.status_code == 409
    assert too_many.data["code"] == "insufficient_stock"
    assert api.post(f"/api/v1/items/{item.pk}/adjust-stock/", {"delta": 1}).status_code == 400
    ledger = api.get(f"/api/v1/items/{item.pk}/ledger/").data
    assert [(row["kind"], row["on_hand_delta"]) for row in ledger] == [("adjusted", -2), ("received", 3)]


def _order_payload(item, external_id="R-1", quantity=1):
    return {
        "channel": "reverb",
        "external_id": external_id,
        "placed_at": timezone.now().isoformat(),
        "buyer_name": "Jo Buyer",
        "lines": [{"item": item.pk, "quantity": quantity}],
    }


def test_order_lifecycle_locks_commits_and_marks_sold(api, account):
    item = make_item(account, quantity=1, price=Decimal("1500"))
    created = api.post("/api/v1/orders/", _order_payload(item))
    assert created.status_code == 201, created.data
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked) == (1, 1)
    assert Decimal(created.data["total"]) == Decimal("1500")
    completed = api.post(f"/api/v1/orders/{created.data['id']}/complete/")
    assert completed.data["status"] == "completed"
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked, item.state) == (0, 0, "sold")
    assert item.state_changes.first().source == "api"


def test_order_replay_returns_the_first_and_locks_once(api, account):
    item = make_item(account, quantity=3)
    first = api.post("/api/v1/orders/", _order_payload(item, quantity=2))
    again = api.post("/api/v1/orders/", _order_payload(item, quantity=2))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.data["id"] == again.data["id"]
    assert Order.objects.count() == 1
    assert StockLock.objects.count() == 1
    item.refresh_from_db()
    assert item.quantity_locked == 2


def test_order_for_more_than_available_is_409_and_writes_nothing(api, account):
    item = make_item(account, quantity=1)
    response = api.post("/api/v1/orders/", _order_payload(item, quantity=2))
    assert response.status_code == 409
    assert response.data["code"] == "insufficient_stock"
    assert Order.objects.count() == 0
    assert StockMovement.objects.filter(kind="locked").count() == 0


def test_order_for_a_draft_item_is_refused(api, account):
    item = make_item(account, state="draft")
    response = api.post("/api/v1/orders/", _order_payload(item))
    assert response.status_code == 409
    assert response.data["code"] == "item_not_sellable"


def test_cancelling_a_completed_sale_returns_stock_and_reactivates(api, account):
    item = make_item(account, quantity=1)
    order_id = api.post("/api/v1/orders/", _order_payload(item)).data["id"]
    api.post(f"/api/v1/orders/{order_id}/complete/")
    response = api.post(f"/api/v1/orders/{order_id}/cancel/", {"reason": "buyer backed out"})
    assert response.data["status"] == "cancelled"
    item.refresh_from_db()
    assert (item.quantity_on_hand, item.quantity_locked, item.state) == (1, 0, "active")
    assert api.post(f"/api/v1/orders/{order_id}/complete/").status_code == 409


def test_deleting_an_item_with_ledger_rows_is_409_with_advice(api, account):
    item = make_item(account, quantity=1)
    response = api.delete(f"/api/v1/items/{item.pk}/")
    assert response.status_code == 409
    assert "archive it instead" in response.data["detail"]
    assert Item.objects.filter(pk=item.pk).exists()


def test_unauthenticated_requests_are_refused():
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/items/").status_code in (401, 403)


def test_token_auth_works(staff, account):
    from rest_framework.test import APIClient

    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "alice", "password": "correct-horse-battery-9"}).data[
        "token"
    ]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    make_item(account)
    assert client.get("/api/v1/items/").data["count"] == 1


def test_openapi_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in [
        "/api/v1/items/",
        "/api/v1/items/{id}/transition/",
        "/api/v1/items/bulk-transition/",
        "/api/v1/orders/",
    ]:
        assert path in text
    assert api.get("/api/docs/").status_code == 200


def test_schema_generates_without_warnings():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--fail-on-warn", "--file", "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
