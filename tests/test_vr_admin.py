"""The V&R connection admin and API: the password is typed in and never shown back; mapping tables;
failed steps with their screenshot and page."""

from __future__ import annotations

import pytest

from channels_vr import sync
from channels_vr.models import (
    DEFAULT_PRIORITY,
    VRBrandMapping,
    VRCategoryMapping,
    VRConnection,
    VRStepFailure,
)
from channels_vr.serializers import VRConnectionSerializer
from inventory.channels import WebhookRejected

pytestmark = pytest.mark.django_db

PASSWORD = "dealer-secret-password-42"
ADD_URL = "/admin/channels_vr/vrconnection/add/"
LIST_URL = "/admin/channels_vr/vrconnection/"


def form_data(**changes) -> dict:
    data = {
        "name": "V&R shop",
        "enabled": "on",
        "priority": "30",
        "username": "dealer@example.com",
        "password": PASSWORD,
        "base_url": "https://www.vintageandrare.com",
        "step_timeout_seconds": "30",
        "currency": "GBP",
        "processing_time": "3",
        "processing_unit": "days",
        "available_for_shipment": "on",
        "pull_interval_seconds": "900",
        "pull_offset_seconds": "0",
        "stock_buffer_percent": "0",
        "category_mappings-TOTAL_FORMS": "1",
        "category_mappings-INITIAL_FORMS": "0",
        "category_mappings-0-category": "Electric Guitars",
        "category_mappings-0-level_0": "51",
        "category_mappings-0-level_1": "83",
        "brand_mappings-TOTAL_FORMS": "1",
        "brand_mappings-INITIAL_FORMS": "0",
        "brand_mappings-0-brand": "Fender Custom Shop",
        "brand_mappings-0-vr_brand": "Fender",
    }
    data.update(changes)
    return data


@pytest.fixture
def connection(account):
    return VRConnection.objects.create(account=account, name="V&R shop", username="dealer", password=PASSWORD)


def test_a_new_connection_gets_vr_defaults(account):
    connection = VRConnection.objects.create(account=account, name="V&R", username="d", password="p")
    assert (connection.channel, connection.priority, connection.pull_interval_seconds) == ("vr", DEFAULT_PRIORITY, 900)
    assert sync.DEFAULT_PRIORITY == 30 and sync.NAME == "vr"


def test_staff_add_a_connection_with_its_mapping_tables(admin_client_for, staff, account):
    response = admin_client_for(staff).post(ADD_URL, form_data())

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connection = VRConnection.objects.get()
    assert (connection.account, connection.password) == (account, PASSWORD)
    mapping = VRCategoryMapping.objects.get()
    assert (mapping.account, mapping.levels) == (account, ("51", "83"))
    assert sync.category_levels(connection, "electric guitars") == ("51", "83")
    assert VRBrandMapping.objects.get().account == account
    assert sync.vr_brand(connection, "Fender Custom Shop") == "Fender"
    assert sync.vr_brand(connection, "Gibson") == "Gibson"


def test_the_password_is_never_shown_back_and_blank_keeps_it(admin_client_for, staff, connection):
    client = admin_client_for(staff)

    change_page = client.get(f"{LIST_URL}{connection.pk}/change/").content.decode()
    list_page = client.get(LIST_URL).content.decode()
    assert PASSWORD not in change_page and PASSWORD not in list_page
    assert "set" in change_page

    data = form_data(password="", name="V&R renamed")
    data["category_mappings-TOTAL_FORMS"] = data["brand_mappings-TOTAL_FORMS"] = "0"
    response = client.post(f"{LIST_URL}{connection.pk}/change/", data)

    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.password) == ("V&R renamed", PASSWORD)


def test_a_new_connection_needs_a_password(admin_client_for, staff):
    response = admin_client_for(staff).post(ADD_URL, form_data(password=""))
    assert response.status_code == 200 and not VRConnection.objects.exists()


def test_a_failed_step_shows_its_screenshot_and_page(admin_client_for, staff, connection):
    from inventory.models import ChannelListing
    from tests.factories import make_item

    item = make_item(connection.account, sku="VR-1")
    listing = ChannelListing.objects.create(account=connection.account, item=item, connection=connection)
    failure = VRStepFailure.objects.create(
        account=connection.account,
        connection=connection,
        listing=listing,
        sku="VR-1",
        step="submit the add-item form",
        message="V&R's item form has no field 'model_name' any more",
        screenshot="vr-failures/1/x.png",
        page_html="vr-failures/1/x.html",
    )
    client = admin_client_for(staff)

    list_page = client.get("/admin/channels_vr/vrstepfailure/").content.decode()
    detail = client.get(f"/admin/channels_vr/vrstepfailure/{failure.pk}/change/").content.decode()

    assert '<img src="/media/vr-failures/1/x.png"' in list_page
    assert f'href="/admin/inventory/channellisting/{listing.pk}/change/"' in list_page
    assert 'href="/media/vr-failures/1/x.html"' in detail and "model_name" in detail


def test_the_api_serializer_never_returns_the_password(connection):
    data = VRConnectionSerializer(connection).data
    assert "password" not in data and data["secrets"] == {"password": "set"} and "s-42" not in str(data)
    update = VRConnectionSerializer(connection, data={"password": "", "name": "x"}, partial=True)
    assert update.is_valid(), update.errors
    assert "password" not in update.validated_data  # blank keeps the stored one


def test_vr_has_no_webhooks_so_nothing_is_stored(connection):
    with pytest.raises(WebhookRejected) as rejected:
        sync.parse_webhook(connection, {}, b"{}")
    assert rejected.value.http_status == 404
    assert sync.webhook_orders(connection, None) == []
