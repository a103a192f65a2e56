"""The admin as a shop's working surface, in a real Chromium at 1280 px (issue 12).

One browser for the module; each test a fresh context. The shop has two shops on the first
configured channel (whatever settings.CHANNELS names), items listed, pending and in error, a
double sale, paid orders, alerts, webhook deliveries and sync runs, so every page shows rows.

Reference screenshots go to docs/screenshots/ only with UPDATE_SCREENSHOTS=1:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_admin_working_surface.py
"""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts.services import account_create, staff_user_create
from inventory.channels import OrderLineSeen, OrderSeen, channel
from inventory.models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    Conflict,
    ItemPhoto,
    Order,
    SyncRun,
    WebhookEvent,
)
from inventory.services import Actor, order_complete
from inventory.services.alerts import alert_raise
from inventory.services.selling import sale_record
from tests.conftest import CHROMIUM
from tests.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
TIMEOUT_MS = 10_000
WIDTH = 1280
CHANNEL = next(iter(settings.CHANNELS))  # any configured channel: nothing here is channel-specific
LABEL = getattr(channel(CHANNEL), "LABEL", CHANNEL)


@pytest.fixture(scope="module")
def browser() -> Browser:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Page:
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": WIDTH, "height": 900}, color_scheme="light"
    )
    context.set_default_timeout(TIMEOUT_MS)
    # The network is closed: anything not served by the live server is refused.
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost)"), lambda route: route.abort())
    page = context.new_page()
    yield page
    context.close()


def _sale(connection, order_id, sku, when, buyer="", total="0"):
    seen = OrderSeen(
        external_id=order_id,
        status="paid",
        placed_at=when,
        updated_at=when,
        lines=(OrderLineSeen(sku=sku, external_listing_id="", quantity=1),),
        buyer_name=buyer,
        total=Decimal(total),
    )
    return sale_record(connection=connection, seen=seen)


@pytest.fixture
def shop():
    account = account_create(name="Blue Note Guitars", slug="blue-note")
    staff_user_create(account=account, username="alice", password=PASSWORD)
    main = ChannelConnection.objects.create(account=account, channel=CHANNEL, name=f"{LABEL} main shop", priority=1)
    outlet = ChannelConnection.objects.create(account=account, channel=CHANNEL, name=f"{LABEL} outlet", priority=2)
    gear = [
        ("GIB-LP-59", "1959 Gibson Les Paul Standard Sunburst, original PAFs", "325000"),
        ("FEN-STRAT-64", "1964 Fender Stratocaster Sonic Blue", "18500"),
        ("MAR-D28-68", "1968 Martin D-28 Brazilian Rosewood Natural", "9500"),
        ("VOX-AC30-63", "1963 Vox AC30 Top Boost Fawn", "6500"),
        ("FEN-DLX-66", "1966 Fender Deluxe Reverb Blackface", "3400"),
    ]
    items = {
        sku: make_item(account, n=n, sku=sku, title=title, price=Decimal(price), storage_location=f"A-0{n}-1")
        for n, (sku, title, price) in enumerate(gear)
    }
    for item in items.values():
        ItemPhoto.objects.create(item=item, url="/static/inventory/favicon.svg", position=0)
    # Live on both, pending on one, one refused with a long error.
    for sku in ("GIB-LP-59", "MAR-D28-68"):
        for n, connection in enumerate((main, outlet)):
            ChannelListing.objects.create(
                account=account,
                item=items[sku],
                connection=connection,
                actual_state="live",
                external_id=f"{n}{items[sku].pk}",
                last_synced_at=timezone.now(),
            )
    ChannelListing.objects.create(account=account, item=items["FEN-DLX-66"], connection=main)
    ChannelListing.objects.create(
        account=account,
        item=items["FEN-DLX-66"],
        connection=outlet,
        actual_state="error",
        attempts=5,
        last_error="The channel refused the listing: shipping profile 'US domestic' was not found for this shop; "
        "pick one under the connection's settings.",
    )
    # A double sale of the Strat: the main shop sold it first.
    now = timezone.now()
    _sale(main, "A-4100001", "FEN-STRAT-64", now - timedelta(seconds=40), "Jimi H.", "18500")
    conflict = _sale(outlet, "B-9000002", "FEN-STRAT-64", now - timedelta(seconds=20), "Eric C.", "18500").conflict
    # A plain sale: paid, to ship.
    sale = _sale(main, "A-4100003", "VOX-AC30-63", now - timedelta(minutes=5), "Brian M.", "6500").order
    order_complete(order_id=sale.pk, actor=Actor(source="test"))
    alert_raise(
        account_id=account.pk,
        kind="sync_error",
        dedupe_key=f"listing-error:{ChannelListing.objects.get(connection=outlet, item=items['FEN-DLX-66']).pk}",
        title="FEN-DLX-66 could not be listed on the outlet",
        message="shipping profile not found",
        item=items["FEN-DLX-66"],
        listing=ChannelListing.objects.get(connection=outlet, item=items["FEN-DLX-66"]),
    )
    for n in range(3):
        WebhookEvent.objects.create(
            account=account,
            connection=main,
            topic="orders/updated",
            dedupe_key=f"order-4100001-delivery-{n:04d}-{'x' * 40}",
            payload={},
            status="processed",
            attempts=1,
        )
        SyncRun.objects.create(account=account, connection=main, kind="pull", status="ok", duration_ms=412, api_calls=2)
    return {"account": account, "items": items, "main": main, "outlet": outlet, "conflict": conflict, "sale": sale}


def log_in(page: Page) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("alice")


def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    shot = shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot.save(folder / f"{name}.png", optimize=True)


def assert_fits(page: Page, columns: list[str]) -> None:
    """No horizontal scroll, and each decisive column's header is wholly inside the window."""
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow} px"
    # The admin wraps the table in a scrolling box: the table must fit that box, not hide in it.
    inner = page.evaluate(
        "(() => { const r = document.querySelector('#changelist .results'); return r.scrollWidth - r.clientWidth; })()"
    )
    assert inner <= 0, f"{page.url}: the table scrolls sideways inside its box by {inner} px"
    results = page.locator("#changelist .results").bounding_box()
    for column in columns:
        header = page.locator(f"#result_list thead th.column-{column}")
        expect(header).to_be_visible()
        box = header.bounding_box()
        assert box is not None and box["x"] >= results["x"], f"{column} is cut off: {box}"
        assert box["x"] + box["width"] <= results["x"] + results["width"] + 1, f"{column} is cut off: {box}"


LIST_PAGES = [
    ("items", "/admin/inventory/item/", ["sku", "title", "state_badge", "price_display", "channels"]),
    ("listings", "/admin/inventory/channellisting/", ["item_sku", "shop", "state", "tries", "short_error"]),
    ("connections", "/admin/inventory/channelconnection/", ["name", "status", "last_pull", "live"]),
    ("conflicts", "/admin/inventory/conflict/", ["item_sku", "winner", "loser", "status"]),
    ("webhooks", "/admin/inventory/webhookevent/", ["received", "shop", "topic", "status", "tries"]),
    ("alerts", "/admin/inventory/alert/", ["severity", "title_short", "shop", "state"]),
    ("orders", "/admin/inventory/order/", ["order_ref", "progress", "skus", "total_display"]),
]


def test_every_list_page_fits_1280_px_with_its_decisive_columns(page: Page, shop, tmp_path):
    log_in(page)
    for name, url, columns in LIST_PAGES:
        page.goto(url)
        page.wait_for_selector("#result_list tbody tr")
        screenshot(page, f"list-{name}", tmp_path)
        assert_fits(page, columns)
    # The words staff asked for: shops by name, states per shop, orders not "Completed" when unshipped.
    page.goto("/admin/inventory/item/")
    dlx = page.locator("#result_list tbody tr", has_text="FEN-DLX-66")
    expect(dlx.locator(f'.listing-badge[data-shop="{LABEL} main shop"]')).to_contain_text("pending")
    error = dlx.locator(f'.listing-badge[data-shop="{LABEL} outlet"]')
    expect(error).to_contain_text("Error")
    expect(error).to_have_attribute("title", re.compile("shipping profile 'US domestic' was not found"))
    page.goto("/admin/inventory/order/")
    vox = page.locator("#result_list tbody tr", has_text="A-4100003")
    expect(vox.locator("td.field-progress")).to_have_text("Paid, to ship")
    expect(vox.locator("td.field-total_display")).to_have_text("6,500.00\N{NO-BREAK SPACE}USD")
    expect(vox.locator("td.field-skus")).to_have_text("VOX-AC30-63")
    page.goto("/admin/inventory/alert/")
    expect(page.locator("#result_list td.field-shop").first).to_have_text(f"{LABEL} outlet")
    expect(page.locator('#changelist-filter a[href="?state=open"]')).to_have_text("Open")
    # "Delete selected" is not the first action.
    page.goto("/admin/inventory/item/")
    first = page.locator("select[name=action] option").nth(1)
    expect(first).not_to_have_text(re.compile("Delete"))
    # The dashboard counts what needs attention and links to the filtered lists.
    page.goto("/admin/")
    expect(page.locator("#tile-double-sales .n")).to_have_text("1")
    expect(page.locator("#tile-listings-in-error .n")).to_have_text("1")
    # The double sale's winner and the Vox; never the losing order of an unsettled double sale.
    expect(page.locator("#tile-orders-to-ship .n")).to_have_text("2")
    expect(page.locator("#sales-today")).to_contain_text(f"{LABEL} main shop")
    assert page.locator("#nav-sidebar a, #content-main a").filter(has_text="Items").count() >= 1
    screenshot(page, "dashboard", tmp_path)
    page.click("#tile-listings-in-error")
    page.wait_for_url(re.compile(r"state=error"))
    expect(page.locator("#result_list tbody tr")).to_have_count(1)


def test_listing_one_item_on_one_chosen_shop_from_its_page(page: Page, shop, tmp_path):
    strat_free = shop["items"]["FEN-DLX-66"]
    vox = make_item(shop["account"], n=9, sku="FEN-TWIN-65", title="1965 Fender Twin Reverb", price=Decimal("2900"))
    # A photo with a very long address: the photos table must wrap it, not widen the page.
    ItemPhoto.objects.create(item=vox, url="/static/inventory/favicon.svg?" + "long-photo-name-" * 20, position=0)
    log_in(page)
    page.goto(f"/admin/inventory/item/{vox.pk}/change/")
    panel = page.locator("#channel-panel")
    expect(panel.locator("tr", has_text=f"{LABEL} main shop")).to_contain_text("not listed")
    screenshot(page, "item-page", tmp_path)
    panel.locator("tr", has_text=f"{LABEL} outlet").locator("button.list-here").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(f"1 item listed on {LABEL} outlet.")
    listings = ChannelListing.objects.filter(item=vox)
    assert list(listings.values_list("connection__name", "desired_state", "actual_state")) == [
        (f"{LABEL} outlet", "live", "pending")
    ], "listed on the chosen shop only"
    expect(panel.locator("tr", has_text=f"{LABEL} outlet")).to_contain_text("pending")
    expect(panel.locator("tr", has_text=f"{LABEL} main shop")).to_contain_text("not listed")
    # The item page has no horizontal scroll either, photos and all.
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    assert strat_free.pk != vox.pk
    # Delist it there again with the same panel.
    panel.locator("tr", has_text=f"{LABEL} outlet").locator("button.delist-here").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(f"Delisted from {LABEL} outlet.")
    assert listings.get().desired_state == "ended"
    # Drag the second photo above the first: the order is saved at once.
    second = ItemPhoto.objects.create(item=vox, url="/static/inventory/favicon.svg?back", position=1)
    page.reload()
    photo_rows = page.locator(".photos-inline tbody tr.has_original")
    expect(photo_rows).to_have_count(2)
    photo_rows.nth(1).drag_to(photo_rows.nth(0))
    expect(page.locator("body")).to_have_attribute("data-photos-saved", "yes")
    assert vox.photos.order_by("position", "pk").values_list("pk", flat=True).first() == second.pk
    expect(photo_rows.nth(0).locator("td.field-position input")).to_have_value("0")
    # The quick add screen, keyboard first: the title has the focus.
    page.goto("/admin/inventory/item/quick-add/")
    expect(page.locator("#id_title")).to_be_focused()
    screenshot(page, "quick-add", tmp_path)


def test_resolving_a_double_sale_from_the_conflict_page(page: Page, shop, tmp_path):
    conflict = shop["conflict"]
    log_in(page)
    # The item page says it sold twice and links to the conflict.
    page.goto(f"/admin/inventory/item/{shop['items']['FEN-STRAT-64'].pk}/change/")
    expect(page.locator("#sale-block")).to_contain_text("Double sale")
    expect(page.locator("#sale-order-link")).to_have_text("#A-4100001")
    screenshot(page, "item-sold-twice", tmp_path)
    page.click("#sale-block a.conflict-link")
    page.wait_for_url(re.compile(rf"/conflict/{conflict.pk}/change/"))
    expect(page.locator("#content h1, #content h2").first).to_contain_text("FEN-STRAT-64 1964 Fender Stratocaster")
    table = page.locator("table.conflict-orders")
    expect(table).to_contain_text("18,500.00\N{NO-BREAK SPACE}USD")
    assert ".000000" not in table.inner_text()
    screenshot(page, "conflict", tmp_path)
    page.fill("#id_settle_note", "Eric refunded on the outlet")
    page.click("#cancel-loser")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Double sale settled.")
    expect(page.locator("#next-steps")).to_contain_text("Eric refunded on the outlet")
    conflict.refresh_from_db()
    assert conflict.status == "resolved"
    assert Order.objects.get(pk=conflict.losing_order_id).status == "cancelled"
    assert Order.objects.get(pk=conflict.winning_order_id).status == "completed"
    assert not Alert.objects.filter(conflict=conflict, acknowledged_at__isnull=True).exists()
    assert Conflict.objects.filter(status="open").count() == 0


def test_marking_an_order_shipped(page: Page, shop, tmp_path):
    sale = shop["sale"]
    log_in(page)
    page.goto(f"/admin/inventory/order/{sale.pk}/change/")
    page.click("#mark-shipped")
    page.fill("#id_carrier", "UPS")
    page.fill("#id_tracking_number", "1Z999AA10123456784")
    screenshot(page, "order-ship", tmp_path)
    page.click("#ship-form input[type=submit]")
    expect(page.locator("ul.messagelist li.success")).to_contain_text("marked shipped with UPS")
    expect(page.locator(".field-shipment")).to_contain_text("1Z999AA10123456784")
    screenshot(page, "order-page", tmp_path)
    sale.refresh_from_db()
    assert (sale.carrier, sale.tracking_number) == ("UPS", "1Z999AA10123456784")
    assert shop["items"]["VOX-AC30-63"].__class__.objects.get(sku="VOX-AC30-63").state == "shipped"
    page.goto("/admin/inventory/order/?progress=to_ship")
    expect(page.locator("#result_list tbody tr", has_text="A-4100003")).to_have_count(0)


def test_api_docs_render_with_the_network_blocked(page: Page, live_server):
    outside = []
    page.on("request", lambda request: outside.append((request.resource_type, request.url)))
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Gear back office API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.goto("/api/redoc/")
    expect(page.locator("h1", has_text="Gear back office API")).to_be_visible(timeout=30_000)
    # What the pages need (scripts, styles, the schema, fonts) comes from this server. ReDoc's bundle
    # still asks for its own "powered by" logo image, which fails harmlessly.
    needed = [
        (kind, url)
        for kind, url in outside
        if not re.match(r"^https?://(127\.0\.0\.1|localhost)[:/]", url)
        and kind != "image"
        and not url.startswith("data:")
    ]
    assert needed == [], f"the docs reached out: {needed}"
