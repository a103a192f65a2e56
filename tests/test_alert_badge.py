"""The urgent-alert badge in the admin header: open critical and high alerts, on every admin
page for shop staff, linking to that filtered alert list; one COUNT, then the cache."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from PIL import Image

from inventory.models import Alert, AlertKind
from inventory.services.alerts import alert_raise, alerts_resolve
from tests.factories import make_item

pytestmark = pytest.mark.django_db

BADGE = re.compile(r'<a href="([^"]+)" id="alert-badge" class="alert-badge( hot)?"[^>]*>([^<]+)</a>')
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"


def _raise(account, key: str, kind: str) -> Alert:
    return alert_raise(account_id=account.pk, kind=kind, dedupe_key=key, title=f"Alert {key}")


def _badge(client, url: str = "/admin/") -> tuple[str, bool, str]:
    page = client.get(url)
    assert page.status_code == 200
    found = BADGE.search(page.content.decode())
    assert found, f"no badge on {url}"
    href, hot, text = found.groups()
    return href.replace("&amp;", "&"), bool(hot), text


def test_the_badge_counts_open_critical_and_high_alerts_of_the_shop_only(
    admin_client_for, staff, account, other_account
):
    _raise(account, "a", AlertKind.CONFLICT)  # critical
    _raise(account, "b", AlertKind.SYNC_ERROR)  # high
    _raise(account, "c", AlertKind.PRICE_DRIFT)  # medium: not urgent
    _raise(account, "d", AlertKind.LOW_STOCK)  # low: not urgent
    resolved = _raise(account, "e", AlertKind.CONNECTION)  # high, but resolved
    alerts_resolve(alert_ids=[resolved.pk], user=staff)
    for n in range(3):
        _raise(other_account, f"x{n}", AlertKind.CONFLICT)  # another shop's
    cache.clear()

    href, hot, text = _badge(admin_client_for(staff))

    assert (text, hot) == ("2 urgent alerts", True)
    assert href == "/admin/inventory/alert/?state=open&severity__in=critical,high"


def test_the_badge_links_to_exactly_the_alerts_it_counts(admin_client_for, staff, account):
    _raise(account, "a", AlertKind.CONFLICT)
    _raise(account, "b", AlertKind.PRICE_DRIFT)
    client = admin_client_for(staff)
    href, _hot, _text = _badge(client)

    listed = client.get(href).content.decode()

    assert "Alert a" in listed and "Alert b" not in listed


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/inventory/item/",
        "/admin/inventory/alert/",
        "/admin/inventory/order/",
        "/admin/inventory/conflict/",
    ],
)
def test_the_badge_is_on_every_admin_page(admin_client_for, staff, account, url):
    item = make_item(account, n=1)
    client = admin_client_for(staff)

    assert _badge(client, url)[2] == "No urgent alerts"
    assert _badge(client, f"/admin/inventory/item/{item.pk}/change/")[2] == "No urgent alerts"


def test_the_badge_costs_one_query_then_none_while_cached(admin_client_for, staff, account):
    _raise(account, "a", AlertKind.CONFLICT)
    client = admin_client_for(staff)
    cache.clear()

    def counted(url):
        with CaptureQueriesContext(connection) as ctx:
            client.get(url)
        return [q["sql"] for q in ctx.captured_queries if 'FROM "inventory_alert"' in q["sql"]]

    first = counted("/admin/inventory/order/")
    second = counted("/admin/inventory/order/")

    assert len(first) == 1 and "COUNT(" in first[0]
    assert second == []


def test_a_new_or_resolved_urgent_alert_shows_at_once(
    admin_client_for, staff, account, django_capture_on_commit_callbacks
):
    client = admin_client_for(staff)
    assert _badge(client)[2] == "No urgent alerts"  # now cached

    with django_capture_on_commit_callbacks(execute=True):
        alert = _raise(account, "a", AlertKind.CONFLICT)
    assert _badge(client)[2] == "1 urgent alert"

    with django_capture_on_commit_callbacks(execute=True):
        alerts_resolve(alert_ids=[alert.pk], user=staff)
    assert _badge(client)[2] == "No urgent alerts"


def test_no_badge_for_a_user_of_no_shop(admin_client, db):
    page = admin_client.get("/admin/").content.decode()  # a superuser without an account

    assert 'id="alert-badge"' not in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_badge_in_chromium_at_1280_px(live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from accounts.services import account_create, staff_user_create
    from tests.conftest import CHROMIUM

    account = account_create(name="Blue Note Guitars", slug="blue-note")
    staff_user_create(account=account, username="alice", password="correct-horse-battery-9")
    _raise(account, "a", AlertKind.CONFLICT)
    _raise(account, "b", AlertKind.NOT_ENDED)
    _raise(account, "c", AlertKind.SYNC_ERROR)
    _raise(account, "d", AlertKind.LOW_STOCK)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(
                base_url=live_server.url, viewport={"width": 1280, "height": 800}, color_scheme="light"
            )
            page = context.new_page()
            page.goto("/admin/login/?next=/admin/inventory/item/")
            page.fill("#id_username", "alice")
            page.fill("#id_password", "correct-horse-battery-9")
            page.click("input[type=submit]")
            page.wait_for_url(re.compile(r"/admin/inventory/item/"))

            badge = page.locator("#alert-badge")
            assert badge.text_content().strip() == "3 urgent alerts"
            box = badge.bounding_box()
            header = page.locator("#header").bounding_box()
            assert box["y"] >= header["y"] and box["y"] + box["height"] <= header["y"] + header["height"]
            assert box["x"] + box["width"] <= 1280  # wholly in the window
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0
            shot = Image.open(io.BytesIO(page.screenshot(clip={"x": 0, "y": 0, "width": 1280, "height": 400})))
            folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
            folder.mkdir(parents=True, exist_ok=True)
            shot.convert("RGB").save(folder / "alert-badge.png", optimize=True)

            badge.click()
            page.wait_for_url(re.compile(r"/admin/inventory/alert/\?"))
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 3
            context.close()
            browser.close()
