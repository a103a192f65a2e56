"""The V&R sync functions driving a real Chromium against the loopback dealer site.

One browser for the whole module: the sync keeps one browser per dealer login and process,
and every test here logs in as the same dealer on the same site (reset between tests), so
the browser launched by the first test is reused by the next. Tests that need another
login or timeout come last (they replace it).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from channels_vr import sync
from channels_vr.client import close_all_sessions
from channels_vr.models import VRBrandMapping, VRCategoryMapping, VRConnection, VRListingDetail, VRStepFailure
from channels_vr.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, VRSandbox
from inventory.channels import (
    END_SOLD_ELSEWHERE,
    END_WITHDRAWN,
    ListingPayload,
    PermanentChannelError,
    TransientChannelError,
)
from inventory.models import Alert, AlertKind, ChannelListing, Item, ListingState
from inventory.services.listings import listing_converge
from inventory.services.sync import connection_pull
from tests.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

JPEG = b"\xff\xd8\xff\xe0" + b"0" * 64


@pytest.fixture(scope="module")
def site():
    with VRSandbox() as running:
        yield running
    close_all_sessions()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    return tmp_path_factory.mktemp("media")


@pytest.fixture
def connection(account, site, settings, media):
    site.reset()
    settings.MEDIA_ROOT = media
    conn = VRConnection.objects.create(
        account=account,
        name="V&R",
        username=DEFAULT_USERNAME,
        password=DEFAULT_PASSWORD,
        base_url=site.base_url,
        step_timeout_seconds=5,
        currency="GBP",
    )
    VRCategoryMapping.objects.create(
        account=account, connection=conn, category="Electric Guitars", level_0="51", level_1="83"
    )
    return conn


def payload(site, sku="VR-1", **changes) -> ListingPayload:
    values = {
        "sku": sku,
        "title": "1963 Fender Stratocaster",
        "description": "All original.",
        "price": Decimal("1500.00"),
        "currency": "GBP",
        "quantity": 1,
        "brand": "Fender",
        "model": "Stratocaster",
        "year": "1963",
        "finish": "Sunburst",
        "category": "Electric Guitars",
        "photos": (site.host_photo(f"{sku}.jpg", JPEG),),
        "video_url": "https://youtu.be/abc",
    }
    values.update(changes)
    return ListingPayload(**values)


def test_publish_fills_the_form_then_finds_the_new_id_in_the_export_and_never_creates_twice(connection, site):
    result = sync.publish(connection, payload(site), None)

    assert (result.external_id, result.adopted) == ("70001", False)
    [item] = site.items()
    assert item.fields == {
        "recipient_name": "Fender",
        "model_name": "Stratocaster",
        "year": "1963",
        "decade": "1960",
        "finish_color": "Sunburst",
        "item_desc": "<p>All original.</p>",
        "price": "1500.00",
        "external_id": "VR-1",
        "categ_level_0": "51",
        "categ_level_1": "83",
        "categ_level_2": "",
        "categ_level_3": "",
        "processing_time": "3",
        "hours_days_sel": "days",
        "available_for_shipment": "1",
        "youtube_upload": "https://youtu.be/abc",
    }
    assert item.images == [("VR-1.jpg", "image/jpeg", JPEG)]  # uploaded as a file
    kinds = [r.kind for r in site.requests() if r.kind in ("export", "brand", "add")]
    assert kinds == ["export", "brand", "add", "export"]  # look up, brand first, submit, find the id
    [add] = site.requests("add")
    assert add.unknown_fields == () and add.files == ("image_1",)
    assert VRListingDetail.objects.get(connection=connection, product_id="70001").state == "live"

    logins = sync.browser_for(connection).logins
    again = sync.publish(connection, payload(site), None)  # e.g. a retry after a lost answer
    assert sync.browser_for(connection).logins == logins  # the session is reused, not logged in again

    assert (again.external_id, again.adopted) == ("70001", True)
    assert len(site.requests("add")) == 1 and len(site.items()) == 1


def test_a_submit_whose_answer_fails_after_the_item_was_stored_is_not_published_twice(connection, site):
    site.set_switches(fail_after_store=1)

    result = sync.publish(connection, payload(site), None)

    assert result.external_id == "70001"
    assert [r.status for r in site.requests("add")] == [500]
    assert sync.publish(connection, payload(site), "70001").adopted is False  # the engine's retry adopts it
    assert len(site.items()) == 1 and len(site.requests("add")) == 1


def test_a_submit_that_stored_nothing_is_retried_by_the_engine(connection, site):
    site.set_switches(fail_before_store=1)

    with pytest.raises(TransientChannelError):
        sync.publish(connection, payload(site), None)

    assert site.items() == []
    assert sync.publish(connection, payload(site), None).external_id == "70001"
    assert len(site.items()) == 1 and [r.status for r in site.requests("add")] == [500, 302]


def test_revise_posts_the_whole_form_back_with_only_the_changed_values(connection, site):
    made = site.add_external_item("VR-2", model="Telecaster", price="900.00", local_pickup="1", buy_now="1")
    before = dict(made.fields)

    sync.revise(
        connection, str(made.id), payload(site, "VR-2", model="Telecaster", price=Decimal("850")), frozenset({"price"})
    )

    item = site.item(made.id)
    assert item.fields == {**before, "price": "850.00"}  # local pickup and buy now kept, nothing else changed
    assert item.version == 2
    [edit] = site.requests("edit")
    assert edit.fields["version"] == "1" and edit.files == ()

    sync.revise(connection, str(made.id), payload(site, "VR-2"), frozenset({"quantity", "seo_keywords"}))
    assert len(site.requests("edit")) == 1  # no V&R field changed: nothing sent


def test_end_marks_sold_or_deletes_and_confirms_it_in_the_export(connection, site):
    sold = site.add_external_item("VR-3")
    withdrawn = site.add_external_item("VR-4")

    assert sync.end(connection, str(sold.id), END_SOLD_ELSEWHERE).confirmed
    assert sync.end(connection, str(withdrawn.id), END_WITHDRAWN).confirmed

    assert site.item(sold.id).sold_by == "dealer" and site.item(withdrawn.id) is None
    assert VRListingDetail.objects.get(product_id=str(sold.id)).ended_here
    again = sync.end(connection, str(sold.id), END_SOLD_ELSEWHERE)  # ending an ended item is a success
    assert again.confirmed and again.state == "sold"
    assert len(site.requests("mark_sold")) == 1 and len(site.requests("delete")) == 1


def test_pull_reports_a_sale_on_vr_once_timed_when_first_seen_never_our_own_mark(connection, site):
    ours = site.add_external_item("VR-5", price="1200.00")
    other = site.add_external_item("VR-6")
    history = site.add_external_item("OLD-1", sold=True)
    first = sync.pull(connection, None)
    assert first.orders == [] and first.pages_read == 1
    assert {seen.external_id: seen.state for seen in first.listings} == {
        str(ours.id): "live",
        str(other.id): "live",
        str(history.id): "sold",
    }

    site.simulate_sale("VR-5")
    sync.end(connection, str(other.id), END_SOLD_ELSEWHERE)
    before = timezone.now()
    second = sync.pull(connection, first.watermark)

    [order] = second.orders
    assert order.external_id == f"vr-{ours.id}" and order.lines[0].sku == "VR-5"
    assert before <= order.placed_at <= timezone.now() and order.total == Decimal("1200.00")
    assert order.currency == "GBP"

    third = sync.pull(connection, second.watermark)  # read again within the overlap: same order, same time
    assert [(o.external_id, o.placed_at) for o in third.orders] == [(order.external_id, order.placed_at)]


def test_a_pull_imports_items_listed_directly_on_vr_for_review(connection, site):
    site.add_external_item("ELSEWHERE-1", brand="Gibson", model="Les Paul", price="2500.00", year="1959")

    run = connection_pull(connection_id=connection.pk)

    item = Item.objects.get(sku="ELSEWHERE-1")
    assert (item.brand, item.model, item.price, item.needs_review) == ("gibson", "Les Paul", Decimal("2500.00"), True)
    listing = ChannelListing.objects.get(item=item)
    assert listing.external_id == "70001" and listing.imported
    assert run.created == 1 and Alert.objects.filter(kind=AlertKind.REVIEW, item=item).count() == 1


def test_an_expired_session_logs_in_again_and_finishes_the_step(connection, site):
    sync.publish(connection, payload(site, "VR-7"), None)
    browser = sync.browser_for(connection)
    logins = browser.logins
    site.set_switches(expire_after=2)  # expires between the export and the add-item form

    result = sync.publish(connection, payload(site, "VR-8"), None)

    assert result.external_id == "70002"
    assert browser.logins == logins + 1
    assert [r.fields["external_id"] for r in site.requests("add")] == ["VR-7", "VR-8"]
    assert site.requests("redirect_to_login")


def test_an_unknown_brand_is_a_clear_error_and_nothing_is_submitted(connection, site):
    with pytest.raises(PermanentChannelError, match='V&R does not know the brand "Acme"'):
        sync.publish(connection, payload(site, brand="Acme"), None)
    assert site.requests("form") == [] and site.items() == []

    VRBrandMapping.objects.create(account=connection.account, connection=connection, brand="Acme", vr_brand="Gibson")
    assert sync.publish(connection, payload(site, brand="Acme"), None).external_id == "70001"
    assert site.item(70001).fields["recipient_name"] == "Gibson"


def test_a_changed_layout_stops_the_listing_with_a_clear_error_a_screenshot_and_an_alert(connection, site, media):
    item = make_item(connection.account, brand="Fender", model="Jaguar", category="Electric Guitars", sku="VR-9")
    listing = ChannelListing.objects.create(account=connection.account, item=item, connection=connection)
    site.set_switches(renamed_fields={"model_name": "model_title"})

    outcome = listing_converge(listing.pk)

    listing.refresh_from_db()
    assert outcome.startswith("error:") and listing.actual_state == ListingState.ERROR
    assert "no field 'model_name'" in listing.last_error and "layout changed" in listing.last_error
    [failure] = VRStepFailure.objects.filter(connection=connection)
    assert failure.sku == "VR-9" and failure.step == "submit the add-item form" and failure.listing == listing
    assert f"/media/{failure.screenshot}" in listing.last_error
    assert (media / failure.screenshot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'name="model_title"' in (media / failure.page_html).read_text()
    assert Alert.objects.filter(kind=AlertKind.SYNC_ERROR, listing=listing).count() == 1
    assert site.requests("add") == [] and site.items() == []  # nothing half-submitted


def test_a_bot_challenge_stops_with_a_clear_message_instead_of_looping(connection, site):
    site.set_switches(bot_challenge=True)

    with pytest.raises(PermanentChannelError, match="bot check"):
        sync.publish(connection, payload(site), None)
    result = sync.check(connection)

    assert not result.ok and "bot check" in result.summary
    assert all(r.kind == "challenge" for r in site.requests())
    assert len(site.requests()) <= 3  # one try per call, no loop


def test_the_connection_check_logs_in_and_reads_the_export(connection, site):
    site.add_external_item("VR-10")
    site.add_external_item("VR-11", sold=True)

    result = sync.check(connection)

    assert result.ok, result.summary
    assert [step.label for step in result.steps] == ["Login", "Inventory export"]
    assert "lists 2 items (1 for sale)" in result.summary


def test_a_sale_on_vr_found_by_an_end_is_still_reported_by_the_next_pull(connection, site):
    made = site.add_external_item("VR-12")
    first = sync.pull(connection, None)
    site.simulate_sale("VR-12")  # bought on V&R while the item sold elsewhere too: a double sale

    ended = sync.end(connection, str(made.id), END_SOLD_ELSEWHERE)

    assert ended.confirmed and ended.state == "sold" and site.requests("mark_sold") == []
    [order] = sync.pull(connection, first.watermark).orders
    assert order.external_id == f"vr-{made.id}"


def test_price_changed_on_vr_is_drift_the_audit_pushes_back(connection, site):
    from inventory.services.sync import listings_reconcile

    item = make_item(connection.account, brand="Gibson", model="SG", category="Electric Guitars", sku="VR-13")
    listing = ChannelListing.objects.create(account=connection.account, item=item, connection=connection)
    assert listing_converge(listing.pk) == "published"
    listing.refresh_from_db()
    site.item(listing.external_id).fields["price"] = "99.00"  # changed on V&R behind the shop's back

    listings_reconcile(connection_id=connection.pk)

    listing.refresh_from_db()
    assert listing.needs_push
    assert Alert.objects.filter(kind=AlertKind.PRICE_DRIFT, listing=listing).count() == 1


def test_the_api_connects_vr_with_its_defaults_and_checks_it_without_showing_the_password(api, site):
    site.reset()
    answer = api.post(
        "/api/v1/connections/",
        {
            "channel": "vr",
            "name": "V&R via API",
            "username": DEFAULT_USERNAME,
            "password": DEFAULT_PASSWORD,
            "base_url": site.base_url,
            "step_timeout_seconds": 5,
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert (body["priority"], body["pull_interval_seconds"], body["secrets"]) == (30, 900, {"password": "set"})
    assert DEFAULT_PASSWORD not in answer.content.decode()

    checked = api.post(f"/api/v1/connections/{body['id']}/check/")

    assert checked.status_code == 200 and DEFAULT_PASSWORD not in checked.content.decode()
    assert checked.json()["ok"] is True, checked.json()


def test_an_item_deleted_on_vr_is_missing_with_an_alert_not_kept_live(connection, site):
    item = make_item(connection.account, brand="Vox", model="AC30", category="Electric Guitars", sku="VR-14")
    listing = ChannelListing.objects.create(account=connection.account, item=item, connection=connection)
    assert listing_converge(listing.pk) == "published"
    listing.refresh_from_db()
    site.store.items.pop(int(listing.external_id))  # the dealer deleted it on V&R

    connection_pull(connection_id=connection.pk)

    listing.refresh_from_db()
    assert listing.actual_state == ListingState.MISSING and listing.external_id == ""
    assert VRListingDetail.objects.get(connection=connection, product_id="70001").state == "deleted"


def test_a_buyer_who_beats_our_mark_sold_by_a_moment_is_a_sale_on_vr(connection, site):
    made = site.add_external_item("VR-15")
    first = sync.pull(connection, None)
    site.set_switches(buyer_before_mark_sold=1)

    ended = sync.end(connection, str(made.id), END_SOLD_ELSEWHERE)

    assert ended.confirmed and site.item(made.id).sold_by == "buyer"
    [order] = sync.pull(connection, first.watermark).orders  # a double sale for the engine to settle
    assert order.external_id == f"vr-{made.id}"


def test_a_site_that_cannot_be_reached_is_transient_and_keeps_the_browser(account):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = VRConnection.objects.create(
        account=account, name="V&R down", username="d", password="p", base_url=f"http://127.0.0.1:{port}"
    )

    for _ in range(2):
        with pytest.raises(TransientChannelError, match="the browser failed to"):
            sync.browser_for(down).login()

    assert sync.browser_for(down).launches == 1  # a network error is not a crash: no relaunch
    assert not sync.check(down).ok


def test_closing_the_browser_ends_its_processes_and_the_next_step_launches_a_new_one(connection, site):
    browser = sync.browser_for(connection)
    browser.export()
    assert browser.launches == 1  # every test of this module so far drove this one browser
    pid = browser.browser_pid
    assert pid and Path(f"/proc/{pid}").exists()

    close_all_sessions()

    assert wait_gone(pid)
    again = sync.browser_for(connection)
    assert again is not browser and again.export() == []
    assert again.launches == 1 and again.logins == 1

    again.idle_seconds = 0.2  # an idle browser is closed, and the next step launches one again
    again.export()
    assert wait_gone(again.browser_pid)
    assert again.export() == [] and again.launches == 2


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status")
        if not status.exists() or "zombie" in status.read_text():
            return True
        time.sleep(0.05)
    return False


def test_a_slow_page_fails_the_step_in_time_with_a_screenshot(connection, site):
    connection.step_timeout_seconds = 1
    connection.save()
    sync.check(connection)  # logs in with the short timeout while the site is fast
    site.set_switches(slow_ms=1500)

    with pytest.raises(TransientChannelError, match="did not answer in time"):
        sync.revise(connection, "70001", payload(site), frozenset({"price"}))
    site.set_switches(slow_ms=0)


def test_a_wrong_password_is_said_in_plain_words(connection, site):
    connection.password = "not-the-password"
    connection.save()

    result = sync.check(connection)

    assert not result.ok
    assert "refused the login" in result.summary and "check the username and password" in result.summary
    assert DEFAULT_PASSWORD not in result.summary and "not-the-password" not in result.summary
