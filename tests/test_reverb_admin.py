"""The Reverb connection admin as shop staff use it: the token is typed in and never shown back."""

import pytest

from channels_reverb import sync
from channels_reverb.models import ReverbConnection, ReverbListingDetail
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox

pytestmark = pytest.mark.django_db

TOKEN = "rvb-personal-token-0123456789abcdef"
ADD_URL = "/admin/channels_reverb/reverbconnection/add/"
LIST_URL = "/admin/channels_reverb/reverbconnection/"


def form_data(**changes) -> dict:
    data = {
        "name": "Reverb main shop",
        "enabled": "on",
        "priority": "100",
        "api_token": TOKEN,
        "base_url": "https://api.reverb.com/api",
        "timeout_seconds": "10",
        "shipping_profile_id": "",
        "category_uuids": "{}",
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "900",
        "stock_buffer_percent": "0",
    }
    data.update(changes)
    return data


@pytest.fixture
def connection(account):
    return ReverbConnection.objects.create(account=account, name="Reverb main shop", api_token=TOKEN)


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()


def test_staff_add_a_connection_for_their_own_account(admin_client_for, staff, account):
    client = admin_client_for(staff)

    response = client.post(ADD_URL, form_data())

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    connection = ReverbConnection.objects.get()
    assert (connection.account, connection.channel, connection.api_token) == (account, "reverb", TOKEN)


def test_a_new_connection_needs_a_token(admin_client_for, staff):
    response = admin_client_for(staff).post(ADD_URL, form_data(api_token=""))

    assert response.status_code == 200
    assert "Paste the API token." in response.content.decode()
    assert not ReverbConnection.objects.exists()


def test_the_token_is_never_shown_back_and_the_webhook_path_is(admin_client_for, staff, connection):
    client = admin_client_for(staff)

    change_page = client.get(f"{LIST_URL}{connection.pk}/change/").content.decode()
    list_page = client.get(LIST_URL).content.decode()

    assert TOKEN not in change_page
    assert TOKEN not in list_page
    assert "set, ends …cdef" in change_page
    assert connection.webhook_path in change_page


def test_saving_with_the_token_left_blank_keeps_it(admin_client_for, staff, connection):
    response = admin_client_for(staff).post(
        f"{LIST_URL}{connection.pk}/change/", form_data(api_token="", name="Reverb (renamed)")
    )

    assert response.status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.api_token) == ("Reverb (renamed)", TOKEN)


def test_a_second_connection_with_the_same_name_is_a_form_error_not_a_crash(admin_client_for, staff, connection):
    response = admin_client_for(staff).post(ADD_URL, form_data())

    assert response.status_code == 200
    assert "already has a Reverb connection with this name" in response.content.decode()
    assert ReverbConnection.objects.count() == 1


def test_staff_cannot_open_another_accounts_connection(admin_client_for, other_staff, connection):
    client = admin_client_for(other_staff)

    assert client.get(f"{LIST_URL}{connection.pk}/change/").status_code == 302  # to the admin index: not theirs
    assert "Reverb main shop" not in client.get(LIST_URL).content.decode()


def test_check_connection_reads_the_account_and_reports_a_bad_token(admin_client_for, staff, account):
    with ReverbSandbox() as sandbox:
        good = ReverbConnection.objects.create(
            account=account, name="Good", api_token=DEFAULT_TOKEN, base_url=sandbox.base_url
        )
        bad = ReverbConnection.objects.create(account=account, name="Bad", api_token=TOKEN, base_url=sandbox.base_url)

        response = admin_client_for(staff).post(
            LIST_URL, {"action": "check_connection", "_selected_action": [good.pk, bad.pk]}, follow=True
        )

        page = response.content.decode()
        assert "Good: Everything works: The token works for Loopback Guitars." in page
        assert "Bad: To fix: Token: Reverb refused GET /api/my/account (401)" in page
        assert "reverb.com/my/api_settings" in page  # where a new token comes from
        assert TOKEN not in page
        assert sandbox.writes == 0


def test_listing_details_are_read_only(admin_client_for, staff, connection):
    from django.utils import timezone

    ReverbListingDetail.objects.create(
        account=connection.account,
        connection=connection,
        listing_id="71000001",
        sku="BN-1",
        state="draft",
        warnings=["A category is required to publish"],
        last_seen_at=timezone.now(),
    )
    client = admin_client_for(staff)

    page = client.get("/admin/channels_reverb/reverblistingdetail/").content.decode()

    assert "71000001" in page
    assert client.get("/admin/channels_reverb/reverblistingdetail/add/").status_code == 403
