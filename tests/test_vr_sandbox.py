"""The loopback V&R dealer site behaves as the client relies on (plain HTTP here, no browser)."""

from __future__ import annotations

import re

import pytest
import requests

from channels_vr import mappers
from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, VRSandbox

XHR = {"X-Requested-With": "XMLHttpRequest"}


@pytest.fixture(scope="module")
def site():
    with VRSandbox() as running:
        yield running


@pytest.fixture
def dealer(site):
    site.reset()
    session = requests.Session()
    answer = session.post(
        site.base_url + "/do_login",
        data={"username": DEFAULT_USERNAME, "pass": DEFAULT_PASSWORD, "open_where": "header"},
        allow_redirects=False,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/account"
    assert "PHPSESSID" in session.cookies
    return session


def form_tokens(session, url) -> dict[str, str]:
    page = session.get(url).text
    return dict(re.findall(r'name="(unique_id|version)" value="([^"]*)"', page))


def item_fields(**changes) -> dict[str, str]:
    fields = {
        "recipient_name": "Fender",
        "model_name": "Telecaster",
        "price": "900.00",
        "external_id": "SKU-1",
        "categ_level_0": "51",
        "categ_level_1": "83",
    }
    fields.update(changes)
    return fields


def post_item(session, url, fields, files=None):
    files = files or {"image_1": ("a.jpg", b"\xff\xd8jpeg", "image/jpeg")}
    return session.post(url, data=fields, files=files, allow_redirects=False)


def test_a_wrong_password_is_sent_back_to_the_login_page(site):
    answer = requests.post(
        site.base_url + "/do_login",
        data={"username": DEFAULT_USERNAME, "pass": "nope", "open_where": "header"},
        allow_redirects=False,
    )
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert "PHPSESSID" not in answer.cookies
    assert all(r.fields.get("pass") == "***" for r in site.requests("login"))  # never kept


def test_pages_need_the_session_cookie(site):
    answer = requests.get(site.base_url + "/instruments/add_edit_item", allow_redirects=False)
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_an_item_is_saved_once_per_unique_id_and_the_answer_has_no_id(site, dealer):
    url = site.base_url + "/instruments/add_edit_item"
    tokens = form_tokens(dealer, url)
    answer = post_item(dealer, url, {**item_fields(), **tokens})
    assert answer.status_code == 302 and "70001" not in answer.headers["Location"]
    again = post_item(dealer, url, {**item_fields(), **tokens})
    assert again.status_code == 400 and "already sent" in again.text
    assert len(site.items()) == 1
    assert site.item(70001).images[0][2] == b"\xff\xd8jpeg"


def test_an_edit_needs_the_current_version_and_replaces_every_field(site, dealer):
    site.add_external_item("SKU-2", local_pickup="1")
    url = site.base_url + "/instruments/add_edit_item/70001"
    tokens = form_tokens(dealer, url)
    assert tokens["version"] == "1"
    stale = post_item(dealer, url, {**item_fields(external_id="SKU-2"), **tokens, "version": "0"}, files={})
    assert stale.status_code == 409
    tokens = form_tokens(dealer, url)
    saved = dealer.post(url, data={**item_fields(external_id="SKU-2"), **tokens}, files={"x": ("", b"")})
    assert saved.status_code == 200
    item = site.item(70001)
    assert item.version == 2 and "local_pickup" not in item.fields  # not posted back: gone


def test_unknown_brand_or_category_is_refused_with_the_form_shown_again(site, dealer):
    url = site.base_url + "/instruments/add_edit_item"
    answer = post_item(dealer, url, {**item_fields(recipient_name="Nobody"), **form_tokens(dealer, url)})
    assert answer.status_code == 400 and "alert-danger" in answer.text and 'name="unique_id"' in answer.text
    answer = post_item(dealer, url, {**item_fields(categ_level_1="90"), **form_tokens(dealer, url)})
    assert answer.status_code == 400 and "Unknown category" in answer.text
    assert site.items() == []


def test_the_item_form_must_be_multipart(site, dealer):
    url = site.base_url + "/instruments/add_edit_item"
    answer = dealer.post(url, data={**item_fields(), **form_tokens(dealer, url)}, allow_redirects=False)
    assert answer.status_code == 400 and site.items() == []


def test_the_export_has_vr_columns_in_order(site, dealer):
    site.add_external_item("SKU-3", price="1599.00", year="1960")
    answer = dealer.get(site.base_url + "/instruments/export_inventory/export_inventory")
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.text.splitlines()[0] == ",".join(mappers.EXPORT_COLUMNS)
    [row] = mappers.parse_export(answer.text)
    assert (row["product id"], row["external id"], row["product price"], row["decade"], row["product sold"]) == (
        "70001",
        "SKU-3",
        "1599",
        "1960",
        "no",
    )


def test_ajax_calls_need_the_xhr_header_and_a_form_body(site, dealer):
    site.add_external_item("SKU-4")
    base = site.base_url
    assert dealer.post(base + "/ajax/check_brand_exists", data={"brand_name": "Gibson"}).status_code == 400
    assert dealer.post(base + "/ajax/check_brand_exists", data={"brand_name": "Gibson"}, headers=XHR).json() == "102"
    assert dealer.post(base + "/ajax/check_brand_exists", data={"brand_name": "Acme"}, headers=XHR).json() == "0"
    assert dealer.post(base + "/ajax/mark_as_sold/123", data={"product_id": "70001"}, headers=XHR).text == "true"
    assert dealer.post(base + "/ajax/mark_as_sold/456", data={"product_id": "70001"}, headers=XHR).text == "false"
    assert site.item(70001).sold_by == "dealer"
    assert dealer.post(base + "/ajax/delete_item", data={"product_id": "70001"}, headers=XHR).text == "true"
    assert site.items() == []


def test_switches_misbehave_as_asked(site, dealer):
    url = site.base_url + "/instruments/add_edit_item"
    site.set_switches(fail_after_store=1)
    answer = post_item(dealer, url, {**item_fields(), **form_tokens(dealer, url)})
    assert answer.status_code == 500 and len(site.items()) == 1  # stored all the same
    site.set_switches(renamed_fields={"model_name": "model_title"})
    assert 'name="model_name"' not in dealer.get(url).text
    site.set_switches(expire_after=1)
    assert dealer.get(site.base_url + "/account", allow_redirects=False).status_code == 200
    assert dealer.get(site.base_url + "/account", allow_redirects=False).status_code == 302
    site.set_switches(bot_challenge=True)
    challenged = requests.get(site.base_url + "/")
    assert challenged.status_code == 403 and "challenge-form" in challenged.text


def test_a_state_file_keeps_the_dealers_items_across_restarts(tmp_path):
    state = str(tmp_path / "vr.state")
    with VRSandbox(state_file=state) as first:
        session = requests.Session()
        session.post(
            first.base_url + "/do_login",
            data={"username": DEFAULT_USERNAME, "pass": DEFAULT_PASSWORD, "open_where": "header"},
        )
        url = first.base_url + "/instruments/add_edit_item"
        post_item(session, url, {**item_fields(), **form_tokens(session, url)})
    with VRSandbox(state_file=state) as second:
        [item] = second.items()
        assert (item.id, item.fields["external_id"], item.images[0][2]) == (70001, "SKU-1", b"\xff\xd8jpeg")
        assert second.add_external_item("SKU-2").id == 70002
