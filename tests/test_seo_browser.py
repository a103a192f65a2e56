"""The SEO screens in a real Chromium at 1280 px: the item page's per-channel preview (the cut
struck out and readable, nothing wider than the window) and the bulk action's dry run then apply.

Reference screenshots go to docs/screenshots/ only with UPDATE_SCREENSHOTS=1:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_seo_browser.py
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts.services import account_create, staff_user_create
from inventory.models import Item, ItemEdit
from inventory.services import Actor, item_update
from tests.conftest import CHROMIUM
from tests.factories import make_item
from tests.test_admin_working_surface import PASSWORD, TIMEOUT_MS, WIDTH, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LONG_SEO = "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case, ultra rare find"


@pytest.fixture(scope="module")
def browser() -> Browser:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
            )
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Page:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": WIDTH, "height": 900}, color_scheme="light"
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost)"), lambda route: route.abort())
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shop():
    account = account_create(name="Blue Note Guitars", slug="blue-note")
    staff_user_create(account=account, username="alice", password=PASSWORD)
    strat = make_item(
        account,
        n=1,
        sku="FEN-STRAT-64",
        title="1964 Fender Stratocaster Sunburst",
        brand="Fender",
        model="Stratocaster",
        year="1964",
        finish="Sunburst",
        price=Decimal("18500"),
    )
    item_update(
        item_id=strat.pk,
        actor=Actor(source="test"),
        changes={
            "seo_title": LONG_SEO,
            "seo_description": "A pre-CBS 1964 Stratocaster in three-tone sunburst, all original with its case. " * 5,
            "seo_keywords": "vintage strat, pre-CBS, sunburst, an extremely long keyword phrase here",
        },
    )
    tele = make_item(account, n=2, sku="FEN-TELE-52", brand="Fender", model="Telecaster", year="1952", finish="Blonde")
    return {"strat": strat, "tele": tele}


def test_the_item_page_shows_what_each_channel_gets_and_what_is_cut(page: Page, shop, tmp_path):
    log_in(page)
    page.goto(f"/admin/inventory/item/{shop['strat'].pk}/change/")
    panel = page.locator("#seo-preview")
    expect(panel).to_be_visible()
    ebay = panel.locator('tr[data-channel="ebay"][data-field="product.title"]')
    expect(ebay.locator(".seo-sent")).to_have_text(
        "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case"
    )
    expect(ebay.locator(".seo-cut")).to_have_text(", ultra rare find")
    expect(ebay.locator(".seo-count")).to_contain_text("78 / 80 chars")
    assert ebay.locator(".seo-cut").evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"
    etsy_tags = panel.locator('tr[data-channel="etsy"][data-field="tags"]')
    expect(etsy_tags).to_contain_text("an extremely long keyword phrase here -> an extremely long")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the item page scrolls sideways by {overflow} px"
    box = panel.bounding_box()
    assert box is not None and box["x"] + box["width"] <= WIDTH
    panel.scroll_into_view_if_needed()
    screenshot(page, "item-seo", tmp_path)
    shot = tmp_path / "seo-panel.png"
    panel.screenshot(path=str(shot))
    assert shot.stat().st_size > 0


def test_the_bulk_action_shows_a_dry_run_then_applies(page: Page, shop, tmp_path):
    log_in(page)
    page.goto("/admin/inventory/item/")
    for item in (shop["strat"], shop["tele"]):
        page.locator(f'input[name="_selected_action"][value="{item.pk}"]').check()
    page.select_option("select[name=action]", "edit_seo")
    page.click("button[name=index]")
    page.select_option("#id_operation", "fill_title")
    page.fill("#id_value", "{brand} {model} {year} {colour}")
    page.click("#seo-preview-button")
    expect(page.locator(".errorlist")).to_contain_text("Unknown placeholder {colour}")

    page.fill("#id_value", "{brand} {model} {year} {finish}")
    page.click("#seo-preview-button")
    expect(page.locator("#seo-dry-run")).to_contain_text("2 item(s) would change")
    expect(page.locator('tr[data-sku="FEN-TELE-52"]')).to_contain_text("Fender Telecaster 1952 Blonde")
    assert not ItemEdit.objects.filter(field="seo_title", item=shop["tele"]).exists()
    screenshot(page, "seo-bulk", tmp_path)

    page.click("#seo-apply-button")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("SEO edited: 2 item(s) changed")
    assert Item.objects.get(pk=shop["tele"].pk).seo_title == "Fender Telecaster 1952 Blonde"
