"""The item screens of the admin as shop staff use them (without a browser)."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from inventory.models import Item, ItemStateChange, StockMovement
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
        assert response.status_code == 200
    return len(ctx.captured_queries)


def test_changelist_makes_a_constant_number_of_queries(admin_client_for, staff, account):
    client = admin_client_for(staff)
    make_item(account, n=0)
    client.get("/admin/inventory/item/")  # warm the session and the filter-option cache
    few = _queries(client, "/admin/inventory/item/")
    for n in range(1, 60):
        make_item(account, n=n)
    from django.core.cache import cache

    cache.clear()
    client.get("/admin/inventory/item/")
    assert _queries(client, "/admin/inventory/item/") == few
    assert _queries(client, "/admin/inventory/item/?p=2") == few


@pytest.mark.postgres
@override_settings(INVENTORY_EXACT_COUNT_LIMIT=5)
def test_changelist_does_not_count_every_row_past_the_limit(admin_client_for, staff, account):
    for n in range(8):
        make_item(account, n=n)
    client = admin_client_for(staff)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/inventory/item/")
    assert response.status_code == 200
    counts = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT COUNT(*)")]
    assert counts and all("LIMIT 6" in sql for sql in counts), counts  # bounded, never the whole table
    assert any(q["sql"].startswith("EXPLAIN") for q in ctx.captured_queries)  # the planner's estimate past it
    assert response.context["cl"].paginator.count_is_estimate


def test_brand_filter_options_follow_the_order_setting(admin_client_for, staff, account):
    for n, brand in enumerate(["Vox", "Ampeg", "Vox", "Vox", "Ampeg", "Mesa"]):
        make_item(account, n=n, brand=brand)
    client = admin_client_for(staff)
    with override_settings(INVENTORY_FILTER_OPTION_ORDER="count"):
        page = client.get("/admin/inventory/item/").content.decode()
        assert page.index("Vox (3)") < page.index("Ampeg (2)") < page.index("Mesa (1)")
    with override_settings(INVENTORY_FILTER_OPTION_ORDER="alpha"):
        page = client.get("/admin/inventory/item/").content.decode()
        assert page.index("Ampeg (2)") < page.index("Mesa (1)") < page.index("Vox (3)")


def test_filters_narrow_the_list(admin_client_for, staff, account):
    make_item(account, n=1, sku="CHEAP-1", price=Decimal("50"), storage_location="A-01")
    make_item(account, n=2, sku="DEAR-1", price=Decimal("6000"), storage_location="VAULT")
    client = admin_client_for(staff)
    page = client.get("/admin/inventory/item/?price_range=gte5000").content.decode()
    assert "DEAR-1" in page and "CHEAP-1" not in page
    page = client.get("/admin/inventory/item/?storage_location=A-01").content.decode()
    assert "CHEAP-1" in page and "DEAR-1" not in page


def test_bulk_action_reports_what_moved_and_what_did_not(admin_client_for, staff, account):
    draft = make_item(account, n=1, sku="D-1", state="draft")
    active = make_item(account, n=2, sku="A-1", state="active")
    client = admin_client_for(staff)
    response = client.post(
        "/admin/inventory/item/",
        {"action": "transition_to_active", "_selected_action": [draft.pk, active.pk]},
        follow=True,
    )
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 moved to active" in text
    assert "A-1: already active" in text
    draft.refresh_from_db()
    assert draft.state == "active"
    assert ItemStateChange.objects.filter(item=draft, source="admin", to_state="active").count() == 1


def test_change_page_shows_history_and_transition_buttons(admin_client_for, staff, account):
    item = make_item(account, state="draft")
    client = admin_client_for(staff)
    page = client.get(f"/admin/inventory/item/{item.pk}/change/").content.decode()
    assert 'data-state="active"' in page and 'data-state="archived"' in page
    assert 'data-state="shipped"' not in page
    client.post(f"/admin/inventory/item/{item.pk}/transition/active/", {"reason": "ready"})
    item.refresh_from_db()
    assert item.state == "active"
    client.post(f"/admin/inventory/item/{item.pk}/transition/shipped/")
    item.refresh_from_db()
    assert item.state == "active"
    page = client.get(f"/admin/inventory/item/{item.pk}/change/").content.decode()
    assert "is active and cannot move to shipped. Allowed from active: archived, draft, sold." in page
    assert "history" in page.lower()


def test_add_item_in_admin_goes_through_the_services(admin_client_for, staff, account):
    client = admin_client_for(staff)
    response = client.post(
        "/admin/inventory/item/add/",
        {
            "sku": "",
            "title": "1981 Boss CE-2",
            "brand": "Boss",
            "condition": "good",
            "price": "149.00",
            "currency": "USD",
            "quantity_on_hand": "3",
            "photos-TOTAL_FORMS": "0",
            "photos-INITIAL_FORMS": "0",
            "listings-TOTAL_FORMS": "0",
            "listings-INITIAL_FORMS": "0",
            "state_changes-TOTAL_FORMS": "0",
            "state_changes-INITIAL_FORMS": "0",
            "stock_movements-TOTAL_FORMS": "0",
            "stock_movements-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["errors"]
    item = Item.objects.get(title="1981 Boss CE-2")
    assert item.account == account
    assert item.sku.startswith("BOSS-")
    assert list(StockMovement.objects.filter(item=item).values_list("kind", "on_hand_delta", "source")) == [
        ("received", 3, "admin")
    ]


def test_admin_add_with_a_duplicate_sku_shows_a_form_error(admin_client_for, staff, account):
    make_item(account, sku="TAKEN-1")
    client = admin_client_for(staff)
    response = client.post(
        "/admin/inventory/item/add/",
        {
            "sku": "TAKEN-1",
            "title": "Dup",
            "condition": "good",
            "price": "1",
            "currency": "USD",
            "quantity_on_hand": "1",
            "photos-TOTAL_FORMS": "0",
            "photos-INITIAL_FORMS": "0",
            "listings-TOTAL_FORMS": "0",
            "listings-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "already has an item with this SKU" in response.content.decode()
    assert Item.objects.filter(sku="TAKEN-1").count() == 1


def _import(client, csv_text: str, confirm: bool = False):
    upload = SimpleUploadedFile("items.csv", csv_text.encode(), content_type="text/csv")
    preview = client.post(
        "/admin/inventory/item/import/", {"import_file": upload, "format": "0", "resource": "0"}, follow=True
    )
    return preview


def test_csv_import_preview_shows_row_errors_and_writes_nothing(admin_client_for, staff, account):
    client = admin_client_for(staff)
    csv_text = (
        "sku,title,brand,price,quantity_on_hand,condition\n"
        "IMP-1,1965 Vox AC30,Vox,4500,1,good\n"
        "IMP-2,,Fender,abc,1,good\n"
        "bad sku!,Missing price,Gibson,,1,good\n"
    )
    preview = _import(client, csv_text)
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Errors" in page or "errors" in page
    assert "This field cannot be blank" in page or "required" in page.lower()
    assert Item.objects.filter(account=account).count() == 0
    assert StockMovement.objects.count() == 0


def test_csv_import_preview_then_confirm_creates_and_updates_through_services(admin_client_for, staff, account):
    existing = make_item(account, sku="IMP-9", title="Old title", quantity=1)
    client = admin_client_for(staff)
    csv_text = (
        "sku,title,brand,price,quantity_on_hand,condition,currency\n"
        "IMP-1,1965 Vox AC30,Vox,4500,2,good,EUR\n"
        "IMP-9,New title,Fender,100,4,good,USD\n"
    )
    preview = _import(client, csv_text)
    assert preview.status_code == 200
    assert Item.objects.filter(sku="IMP-1").count() == 0  # the preview is a rolled-back dry run
    form = preview.context["confirm_form"]
    assert form is not None, preview.content.decode()[:2000]
    confirm = client.post("/admin/inventory/item/process_import/", {**form.initial}, follow=True)
    assert confirm.status_code == 200
    created = Item.objects.get(account=account, sku="IMP-1")
    assert (created.title, created.currency, created.quantity_on_hand, created.state) == (
        "1965 Vox AC30",
        "EUR",
        2,
        "draft",
    )
    existing.refresh_from_db()
    assert (existing.title, existing.quantity_on_hand) == ("New title", 4)
    assert list(existing.stock_movements.order_by("id").values_list("kind", "on_hand_delta")) == [
        ("received", 1),
        ("received", 3),
    ]


def test_summary_page_shows_counts_by_state(admin_client_for, staff, account):
    make_item(account, n=1, price=Decimal("100"))
    make_item(account, n=2, price=Decimal("50"), state="draft")
    page = admin_client_for(staff).get("/admin/inventory/item/summary/").content.decode()
    assert "inventory-summary" in page
    assert "Active" in page and "Draft" in page


def test_changelist_names_the_shops_each_item_is_listed_on(admin_client_for, staff, account, other_account):
    from inventory.models import ChannelConnection, ChannelListing

    a = ChannelConnection.objects.create(account=account, channel="reverb", name="Shop A")
    ChannelConnection.objects.create(account=account, channel="reverb", name="Shop B")
    ChannelConnection.objects.create(account=other_account, channel="reverb", name="Theirs")
    live = make_item(account, n=1, sku="LIVE-1")
    make_item(account, n=2, sku="NOWHERE-1")
    ChannelListing.objects.create(account=account, item=live, connection=a, actual_state="live", external_id="1")
    page = admin_client_for(staff).get("/admin/inventory/item/").content.decode()
    assert page.count('title="1/2 live"') == 1
    assert page.count('data-shop="Shop A"') == 1 and "Shop A&nbsp;<b>Live</b>" in page
    assert 'data-shop="Shop B"' not in page, "a shop it is not listed on is not named"
    assert page.count('<span class="listing-badge">not listed</span>') == 1
    assert "Theirs" not in page
