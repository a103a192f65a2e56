"""Printing from the API, the admin and the command line, and who may print what."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from documents.models import DocumentSettings
from inventory.models import Item
from tests.factories import make_item
from tests.test_documents import (
    SITE,
    decoded_codes,
    flat,
    make_order,
    needs_pdftoppm,
    page_sizes_mm,
    pdf_pages,
    pdf_text,
)

LABELS = "/api/v1/documents/labels/"
SLIPS = "/api/v1/documents/packing-slips/"
PICK = "/api/v1/documents/pick-list/"
TODAY = f"{timezone.localdate():%Y-%m-%d}"


@pytest.fixture
def stock(account):
    DocumentSettings.objects.create(account=account, shop_name="Blue Note Gitarren", site_url=SITE)
    return [
        make_item(account, n=1, sku="GTR-0001", title="Fender Stratocaster 1964 Sunburst", storage_location="A-10"),
        make_item(account, n=2, sku="AMP-0007", title="Vox AC30 Top Boost – Röhren neu", storage_location="A-2"),  # noqa: RUF001
    ]


@pytest.fixture
def order(account, stock):
    return make_order(account, stock)


def is_pdf(response) -> bool:
    return response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF-")


# --- API ---------------------------------------------------------------------------------


def test_api_labels_by_id_and_sku_are_one_pdf_with_a_dated_file_name(api, stock):
    response = api.post(LABELS, {"items": [stock[0].pk], "skus": ["AMP-0007"]})

    assert response.status_code == 200 and is_pdf(response)
    assert response["Content-Disposition"] == f'attachment; filename="labels-{TODAY}.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    first, second = pdf_pages(response.content)
    assert "GTR-0001" in first and "AMP-0007" in second


def test_api_label_format_can_be_chosen_per_request(api, stock):
    response = api.post(LABELS, {"skus": ["GTR-0001"], "label_format": "4x6in"})

    assert response["Content-Disposition"] == 'attachment; filename="label-gtr-0001.pdf"'
    assert page_sizes_mm(response.content) == [(101.6, 152.4)]


def test_api_bad_label_requests_say_what_to_do(api, stock):
    nothing = api.post(LABELS, {})
    bad_format = api.post(LABELS, {"skus": ["GTR-0001"], "label_format": "A7"})
    thousand = api.post(LABELS, {"items": list(range(1, 1001))})

    assert nothing.status_code == 400 and "at least one item" in nothing.json()["items"][0]
    assert bad_format.status_code == 400 and "label_format" in bad_format.json()
    assert thousand.status_code == 400
    assert thousand.json()["items"] == ["At most 300 items per document. Split the request into batches of 300."]


def test_api_refuses_a_label_without_a_storage_location(api, account, stock):
    make_item(account, n=3, sku="NOWHERE-1", storage_location="")

    response = api.post(LABELS, {"skus": ["GTR-0001", "NOWHERE-1"]})

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "missing_storage_location" and body["skus"] == ["NOWHERE-1"]
    assert "Set the shelf or bin" in body["detail"]


def test_api_packing_slips_by_order_number(api, account, order, stock):
    second = make_order(
        account, [make_item(account, n=4, sku="PED-1", storage_location="C-1")], number="9", channel="reverb"
    )

    response = api.post(SLIPS, {"order_numbers": ["ebay:12-34567-89012", "9"]}, HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200 and is_pdf(response)
    assert response["Content-Disposition"] == f'attachment; filename="packing-slips-{TODAY}.pdf"'
    first, other = pdf_pages(response.content)
    assert "eBay #12-34567-89012" in first and f"Reverb #{second.external_id}" in other


def test_api_packing_slip_of_an_order_without_address_is_a_400_even_when_a_pdf_was_asked_for(api, account, stock):
    pickup = make_order(account, stock, number="PICKUP", ship_line1="", ship_city="")

    response = api.post(SLIPS, {"orders": [pickup.pk]}, HTTP_ACCEPT="application/pdf")

    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "missing_shipping_address"
    assert response.json()["orders"] == ["eBay #PICKUP"]


def test_api_an_ambiguous_bare_order_number_asks_for_the_channel(api, account, stock):
    make_order(account, [stock[0]], number="777", channel="ebay")
    make_order(account, [stock[1]], number="777", channel="reverb")

    response = api.post(SLIPS, {"order_numbers": ["777"]})

    assert response.status_code == 404
    assert "write it as channel:777" in response.json()["detail"]


def test_api_pick_list_of_orders_and_items(api, account, order, stock):
    spare = make_item(account, n=5, sku="STRINGS-10", title="Saiten 10-46", storage_location="B-1", quantity=20)

    response = api.post(PICK, {"orders": [order.pk], "skus": ["STRINGS-10"]})

    assert response.status_code == 200 and is_pdf(response)
    assert response["Content-Disposition"] == f'attachment; filename="pick-list-{TODAY}.pdf"'
    text = flat(pdf_text(response.content))
    assert text.index("AMP-0007") < text.index("GTR-0001") < text.index("STRINGS-10")
    assert "3 lines" in text and "1 item without order" in text and spare.sku in text


def test_another_account_cannot_print_this_accounts_items_or_orders(other_api, order, stock):
    labels = other_api.post(LABELS, {"items": [stock[0].pk]})
    by_sku = other_api.post(LABELS, {"skus": ["GTR-0001"]})
    slips = other_api.post(SLIPS, {"orders": [order.pk]})
    by_number = other_api.post(SLIPS, {"order_numbers": ["ebay:12-34567-89012"]})
    pick = other_api.post(PICK, {"orders": [order.pk]})

    for response in (labels, by_sku, slips, by_number, pick):
        assert response.status_code == 404, response.content
        assert response["Content-Type"] == "application/json"
    assert labels.json()["missing"] == [f"id {stock[0].pk}"]
    assert "GTR-0001" not in str(slips.json()) and "Fender" not in str(by_sku.json())


def test_api_needs_a_signed_in_member_of_an_account(stock, db):
    anonymous = APIClient().post(LABELS, {"skus": ["GTR-0001"]})
    root = APIClient()
    root.force_authenticate(User.objects.create_superuser("root", "root@example.com", "pw-0123456789"))
    platform = root.post(LABELS, {"skus": ["GTR-0001"]})

    assert anonymous.status_code in (401, 403)
    assert platform.status_code == 400 and "sign in as a user of the seller account" in str(platform.json())


def test_the_schema_documents_the_pdf_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in (LABELS, SLIPS, PICK):
        assert "application/pdf" in schema["paths"][path]["post"]["responses"]["200"]["content"]


# --- Admin -------------------------------------------------------------------------------


def _act(client, model: str, action: str, ids) -> object:
    return client.post(
        reverse(f"admin:inventory_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], "index": "0"},
    )


def test_admin_action_prints_labels_for_the_selected_items(admin_client_for, staff, stock):
    response = _act(admin_client_for(staff), "item", "print_labels", [item.pk for item in stock])

    assert response.status_code == 200 and is_pdf(response)
    assert response["Content-Disposition"] == f'attachment; filename="labels-{TODAY}.pdf"'
    assert len(pdf_pages(response.content)) == 2


def test_admin_action_refusal_is_a_message_on_the_list_not_an_error_page(admin_client_for, staff, account, stock):
    lost = make_item(account, n=7, sku="LOST-7", storage_location="")

    response = _act(admin_client_for(staff), "item", "print_labels", [lost.pk, stock[0].pk])

    assert response.status_code == 302 and response["Location"].endswith("/admin/inventory/item/")
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("LOST-7" in m and "no storage location" in m for m in messages)


def test_admin_refuses_labels_for_a_thousand_items_and_says_how_to_split(admin_client_for, staff, account):
    Item.objects.bulk_create(
        Item(account=account, sku=f"BULK-{n:04d}", title="Teil", price=1, storage_location="R-1") for n in range(1000)
    )

    client = admin_client_for(staff)
    response = client.post(
        reverse("admin:inventory_item_changelist"),
        {"action": "print_labels", ACTION_CHECKBOX_NAME: ["1"], "select_across": "1", "index": "0"},
    )

    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "You selected 1,000; one document holds at most 300 labels. Select fewer items, e.g. one "
        "shelf at a time, and print in batches of 300 or fewer."
    ]


def test_admin_actions_on_orders_print_slips_and_a_pick_list(admin_client_for, staff, order):
    client = admin_client_for(staff)

    slips = _act(client, "order", "print_packing_slips", [order.pk])
    pick = _act(client, "order", "print_pick_list_for_orders", [order.pk])

    assert is_pdf(slips) and "Jürgen Weiß" in pdf_text(slips.content)
    assert is_pdf(pick) and "Pick list" in pdf_text(pick.content)
    assert slips["Content-Disposition"] == 'attachment; filename="packing-slip-ebay-12-34567-89012.pdf"'


def test_admin_item_action_prints_a_pick_list(admin_client_for, staff, stock):
    response = _act(admin_client_for(staff), "item", "print_pick_list_for_items", [item.pk for item in stock])

    assert is_pdf(response) and "2 lines" in flat(pdf_text(response.content))


def test_item_and_order_pages_have_print_buttons_that_open_the_pdf(admin_client_for, staff, order, stock):
    client = admin_client_for(staff)
    item_page = client.get(reverse("admin:inventory_item_change", args=[stock[0].pk])).content.decode()
    order_page = client.get(reverse("admin:inventory_order_change", args=[order.pk])).content.decode()
    label_url = reverse("admin:documents_item_label", args=[stock[0].pk])
    slip_url = reverse("admin:documents_order_packing_slip", args=[order.pk])
    pick_url = reverse("admin:documents_order_pick_list", args=[order.pk])

    assert f'href="{label_url}"' in item_page and "Print label" in item_page
    assert f'href="{slip_url}"' in order_page and f'href="{pick_url}"' in order_page
    label = client.get(label_url)
    assert is_pdf(label) and label["Content-Disposition"] == 'inline; filename="label-gtr-0001.pdf"'
    assert is_pdf(client.get(slip_url)) and is_pdf(client.get(pick_url))


@needs_pdftoppm
def test_a_label_printed_from_the_admin_links_to_the_item_page(admin_client_for, staff, stock):
    label = admin_client_for(staff).get(reverse("admin:documents_item_label", args=[stock[0].pk]))

    assert ("QR Code", f"{SITE}/admin/inventory/item/{stock[0].pk}/change/") in decoded_codes(label.content)


def test_a_print_button_refusal_returns_to_the_page_with_the_reason(admin_client_for, staff, account, stock):
    pickup = make_order(account, stock, number="PICKUP", ship_line1="")

    response = admin_client_for(staff).get(reverse("admin:documents_order_packing_slip", args=[pickup.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:inventory_order_change", args=[pickup.pk])
    assert "no shipping address" in str(next(iter(get_messages(response.wsgi_request))))


def test_another_accounts_staff_get_404_from_the_print_buttons(admin_client_for, other_staff, order, stock):
    client = admin_client_for(other_staff)

    assert client.get(reverse("admin:documents_item_label", args=[stock[0].pk])).status_code == 404
    assert client.get(reverse("admin:documents_order_packing_slip", args=[order.pk])).status_code == 404
    assert client.get(reverse("admin:documents_order_pick_list", args=[order.pk])).status_code == 404


def test_another_accounts_staff_cannot_print_this_accounts_rows_with_an_action(admin_client_for, other_staff, stock):
    response = _act(admin_client_for(other_staff), "item", "print_labels", [item.pk for item in stock])

    assert not response.get("Content-Type", "").startswith("application/pdf")


def test_a_superuser_prints_one_account_at_a_time(client, stock, other_account):
    theirs = make_item(other_account, n=9, sku="THEIRS-1", storage_location="Z-1")
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw-0123456789"))

    mixed = _act(client, "item", "print_labels", [stock[0].pk, theirs.pk])
    one = _act(client, "item", "print_labels", [theirs.pk])

    assert mixed.status_code == 302
    assert "each document is for one shop" in str(next(iter(get_messages(mixed.wsgi_request))))
    assert is_pdf(one)


def test_staff_open_their_own_document_settings_and_nobody_elses(admin_client_for, staff, other_staff, account):
    own = admin_client_for(staff).get(reverse("admin:documents_documentsettings_changelist"))
    settings_row = DocumentSettings.objects.get(account=account)

    assert own.status_code == 302
    assert own["Location"] == reverse("admin:documents_documentsettings_change", args=[settings_row.pk])
    form = admin_client_for(staff).get(own["Location"])
    assert form.status_code == 200 and "Public address" in form.content.decode()
    theirs = admin_client_for(other_staff).get(
        reverse("admin:documents_documentsettings_change", args=[settings_row.pk])
    )
    assert theirs.status_code == 302 and theirs["Location"] == "/admin/"


def test_staff_change_the_paper_size_in_the_admin(admin_client_for, staff, account):
    client = admin_client_for(staff)
    row_url = client.get(reverse("admin:documents_documentsettings_changelist"))["Location"]

    response = client.post(
        row_url,
        {
            "shop_name": "Blue Note",
            "address": "Hauptstr. 1",
            "contact": "",
            "paper_size": "letter",
            "label_format": "4x6in",
            "packing_slip_message": "",
            "site_url": "https://bo.example.com",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    row = DocumentSettings.objects.get(account=account)
    assert (row.paper_size, row.label_format, row.site_url) == ("letter", "4x6in", "https://bo.example.com")


# --- Management command ------------------------------------------------------------------


def test_command_writes_labels_to_a_file(account, stock, tmp_path, capsys):
    out = tmp_path / "labels.pdf"

    call_command(
        "print_documents", "labels", "--account", "blue-note", "--sku", "GTR-0001", "--sku", "AMP-0007", "-o", str(out)
    )

    assert "Wrote 2 labels on 2 pages to" in capsys.readouterr().out
    first, second = pdf_pages(out.read_bytes())
    assert "GTR-0001" in first and "AMP-0007" in second


def test_command_prints_open_orders_as_slips_and_a_pick_list(account, order, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    call_command("print_documents", "packing-slips", "--account", "blue-note", "--open-orders")
    call_command(
        "print_documents",
        "pick-list",
        "--account",
        "blue-note",
        "--order",
        "ebay:12-34567-89012",
        "--open-orders",
        "-o",
        "pick.pdf",
    )

    output = capsys.readouterr().out
    assert "Wrote 1 packing slip on 1 page to packing-slip-ebay-12-34567-89012.pdf." in output
    assert "Wrote 2 pick-list lines on 1 page to pick.pdf." in output
    slip = tmp_path / "packing-slip-ebay-12-34567-89012.pdf"
    assert slip.exists() and "Jürgen Weiß" in pdf_text(slip.read_bytes())
    # The order named and the same order among the open ones is picked once, not twice.
    assert "2 lines" in flat(pdf_text((tmp_path / "pick.pdf").read_bytes()))
    assert "2 units" in flat(pdf_text((tmp_path / "pick.pdf").read_bytes()))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["labels", "--account", "nope", "--sku", "X"], "No account with the slug 'nope'. Accounts: blue-note"),
        (["labels", "--account", "blue-note", "--sku", "MISSING-9"], "Not found in your account: SKU MISSING-9"),
        (["labels", "--account", "blue-note"], "Name the items to label with --sku or --item-id"),
        (["packing-slips", "--account", "blue-note", "--sku", "GTR-0001"], "Packing slips are printed for orders"),
        (["pick-list", "--account", "blue-note", "--format", "4x6in", "--sku", "GTR-0001"], "--format is for labels"),
        (["packing-slips", "--account", "blue-note", "--open-orders"], "blue-note has no open orders"),
        (
            ["labels", "--account", "blue-note", "--sku", "GTR-0001", "-o", "/no/such/folder/x.pdf"],
            "The folder /no/such/folder does not exist",
        ),
    ],
)
def test_command_errors_say_what_to_do(account, stock, args, message):
    with pytest.raises(CommandError) as error:
        call_command("print_documents", *args)

    assert message in str(error.value)


def test_command_a_date_is_part_of_the_default_file_name(account, stock, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    call_command("print_documents", "labels", "--account", "blue-note", "--sku", "GTR-0001", "--sku", "AMP-0007")

    assert [path.name for path in tmp_path.iterdir()] == [f"labels-{TODAY}.pdf"]


def _queries(api, url, payload) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert api.post(url, payload).status_code == 200
    return len(captured.captured_queries)


def test_printing_more_rows_costs_no_more_queries(api, account, stock):
    items = [make_item(account, n=10 + n, sku=f"Q-{n}", storage_location=f"Q-{n}", quantity=3) for n in range(8)]
    orders = [make_order(account, [item], number=f"Q{n}") for n, item in enumerate(items)]

    assert _queries(api, LABELS, {"items": [items[0].pk]}) == _queries(api, LABELS, {"items": [i.pk for i in items]})
    assert _queries(api, SLIPS, {"orders": [orders[0].pk]}) == _queries(api, SLIPS, {"orders": [o.pk for o in orders]})
    assert _queries(api, PICK, {"orders": [orders[0].pk]}) == _queries(api, PICK, {"orders": [o.pk for o in orders]})


def test_a_plan_without_pdf_documents_gets_402_with_the_plan_that_lifts_it(account, api):
    """PDF documents are a plan feature: refused with what to do, never a 500 and never a PDF."""
    from billing.models import Plan
    from billing.services.plans import plan_assign

    plan = Plan.objects.get(code="free")
    plan.pdf_documents = False
    plan.save()
    plan_assign(account=account, plan=plan)
    from django.core.cache import cache

    cache.clear()
    item = make_item(account, n=1, storage_location="A-01")
    response = api.post("/api/v1/documents/labels/", {"items": [item.pk]}, format="json")
    assert response.status_code == 402, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert "PDF documents" in response.json()["detail"]
