"""The item admin as shop staff use it: a real Chromium, the real login form, clicks.

One browser per module (Debian's /usr/bin/chromium driven by Playwright); each test gets
a fresh browser context, so cookies never leak between tests. The live server shares the
test database, hence `transaction=True`.

The reviewers' screenshot is written to docs/admin-item-list.png only when
UPDATE_SCREENSHOTS=1 is set, so an ordinary test run leaves the working tree clean:

    UPDATE_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_admin_browser.py -k screenshot
"""

from __future__ import annotations

import csv
import io
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from accounts.services import account_create, staff_user_create
from inventory.models import Item, ItemStateChange
from inventory.services import Actor, item_transition
from tests.conftest import CHROMIUM
from tests.factories import make_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery-9"
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "admin-item-list.png"
# Playwright's own timeout is 30 s; a page of this admin renders in well under a second,
# so a shorter limit makes a broken selector fail fast instead of stalling CI.
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Browser:
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM
    # calls from a thread with a running loop. The test's own ORM calls (fixtures,
    # assertions, teardown flush) are ordinary sync code, so allow them here only.
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
        base_url=live_server.url,
        viewport={"width": 1400, "height": 900},
        color_scheme="light",  # the admin follows the OS theme; pin it so screenshots are comparable
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shop():
    """Blue Note's catalogue (Fender drafts, an active and a shipped one, other brands) and
    one Fender draft of a rival shop that must never show up for Blue Note's staff."""
    account = account_create(name="Blue Note Guitars", slug="blue-note")
    staff = staff_user_create(account=account, username="alice", password=PASSWORD)
    gear = {
        "strat": (
            "FEN-STRAT-64",
            "1964 Fender Stratocaster Sonic Blue",
            "Fender",
            "Electric Guitars",
            "18500",
            "draft",
        ),
        "tele": ("FEN-TELE-72", "1972 Fender Telecaster Custom Black", "Fender", "Electric Guitars", "7800", "draft"),
        "pbass": ("FEN-PB-62", "1962 Fender Precision Bass Olympic White", "Fender", "Basses", "15500", "draft"),
        "deluxe": ("FEN-DLX-66", "1966 Fender Deluxe Reverb Blackface", "Fender", "Amps", "3400", "active"),
        "jazz": ("FEN-JM-65", "1965 Fender Jazzmaster Candy Apple Red", "Fender", "Electric Guitars", "9900", "active"),
        "lespaul": ("GIB-LP-59", "1959 Gibson Les Paul Standard", "Gibson", "Electric Guitars", "325000", "draft"),
        "d28": ("MAR-D28-68", "1968 Martin D-28 Natural", "Martin", "Acoustic Guitars", "9500", "active"),
        "ac30": ("VOX-AC30-63", "1963 Vox AC30 Top Boost Fawn", "Vox", "Amps", "6500", "active"),
    }
    items = {}
    for n, (key, (sku, title, brand, category, price, state)) in enumerate(gear.items()):
        items[key] = make_item(
            account,
            n=n,
            sku=sku,
            title=title,
            brand=brand,
            category=category,
            price=Decimal(price),
            storage_location=f"A-0{n}-1",
            state=state,
        )
    # Sold and shipped: it can only be archived now, so "Make active" must refuse it.
    for to_state in ("sold", "shipped"):
        item_transition(item_id=items["jazz"].pk, to_state=to_state, actor=Actor(source="test"))

    rival = account_create(name="Rival Music", slug="rival-music")
    rival_item = make_item(
        rival, sku="RIVAL-FEN-001", title="Rival 1964 Fender Stratocaster", brand="Fender", state="draft"
    )
    return {"account": account, "staff": staff, "items": items, "rival_item": rival_item}


def log_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Through the real login form, as a person would."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username)


def shown_skus(page: Page) -> list[str]:
    page.wait_for_selector("#result_list tbody tr")
    return page.locator("#result_list tbody th.field-sku").all_inner_texts()


def filter_link(page: Page, title: str, label: str):
    return page.locator(f'#changelist-filter details[data-filter-title="{title}"] a').filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")
    )


def test_staff_logs_in_filters_by_brand_and_state_and_moves_drafts_in_bulk(page: Page, shop):
    items = shop["items"]
    # A wrong password is refused by the same form, and nobody is logged in.
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong-password")
    page.click("input[type=submit]")
    expect(page.locator(".errornote")).to_contain_text("correct username and password")

    log_in(page, "alice")
    page.goto("/admin/inventory/item/")
    assert sorted(shown_skus(page)) == sorted(item.sku for item in items.values())
    les_paul = page.locator("#result_list tbody tr", has_text="GIB-LP-59")
    expect(les_paul.locator("td.field-price_display")).to_have_text("325,000.00\N{NO-BREAK SPACE}USD")
    expect(les_paul.locator("td.field-state_badge")).to_have_text("Draft")

    # The brand counts are Blue Note's own: the rival's Fender is neither counted nor listed.
    filter_link(page, "brand", "Fender (5)").click()
    page.wait_for_url(re.compile(r"brand=Fender"))
    assert sorted(shown_skus(page)) == sorted(["FEN-STRAT-64", "FEN-TELE-72", "FEN-PB-62", "FEN-DLX-66", "FEN-JM-65"])

    filter_link(page, "state", "Draft").click()
    page.wait_for_url(re.compile(r"state__exact=draft"))
    assert "brand=Fender" in page.url
    assert sorted(shown_skus(page)) == ["FEN-PB-62", "FEN-STRAT-64", "FEN-TELE-72"]
    assert "RIVAL-FEN-001" not in page.content()

    # Back to every Fender; pick two drafts and the shipped Jazzmaster, which cannot be made active.
    filter_link(page, "state", "All").click()
    page.wait_for_url(lambda url: "state__exact" not in url and "brand=Fender" in url)
    picked = [items["strat"], items["tele"], items["jazz"]]
    for item in picked:
        page.check(f'#result_list input.action-select[value="{item.pk}"]')
    page.select_option("select[name=action]", label="Make active (for sale)")
    page.click("button[name=index]")

    expect(page.locator("ul.messagelist li.warning").first).to_have_text("2 moved to active; 1 not moved.")
    expect(page.locator("ul.messagelist li.warning").nth(1)).to_have_text(
        "Not moved: FEN-JM-65: cannot move from shipped to active."
    )
    states = dict(Item.objects.filter(account=shop["account"]).values_list("sku", "state"))
    assert states["FEN-STRAT-64"] == states["FEN-TELE-72"] == "active"
    assert states["FEN-JM-65"] == "shipped"
    assert states["FEN-PB-62"] == "draft", "an unselected draft must not move"
    moves = ItemStateChange.objects.filter(source="admin")
    assert sorted(moves.values_list("item__sku", "from_state", "to_state", "user__username")) == [
        ("FEN-STRAT-64", "draft", "active", "alice"),
        ("FEN-TELE-72", "draft", "active", "alice"),
    ]
    shop["rival_item"].refresh_from_db()
    assert shop["rival_item"].state == "draft"


def test_change_page_shows_the_history_and_moves_the_item_with_a_button(page: Page, shop):
    strat = shop["items"]["strat"]
    log_in(page, "alice")
    # The move is made in the admin, so the history must credit the admin and alice.
    page.goto("/admin/inventory/item/?state__exact=draft")
    page.check(f'#result_list input.action-select[value="{strat.pk}"]')
    page.select_option("select[name=action]", label="Make active (for sale)")
    page.click("button[name=index]")
    expect(page.locator("ul.messagelist li.success")).to_have_text("1 moved to active.")

    # It left the drafts list; clear the filter, find it with the search box and open it.
    page.locator("#changelist-filter-extra-actions a", has_text="Clear all filters").click()
    page.wait_for_url(lambda url: "state__exact" not in url)
    page.fill("#searchbar", "STRAT-64")
    page.press("#searchbar", "Enter")
    page.wait_for_url(re.compile(r"q=STRAT-64"))
    assert shown_skus(page) == ["FEN-STRAT-64"]
    page.click(f'#result_list th.field-sku a[href*="/inventory/item/{strat.pk}/change/"]')
    page.wait_for_url(re.compile(rf"/admin/inventory/item/{strat.pk}/change/"))
    history = page.locator("#state_changes-group tbody tr.has_original")
    expect(history).to_have_count(2)
    newest = history.nth(0)
    expect(newest.locator("td.field-from_state")).to_have_text("Draft")
    expect(newest.locator("td.field-to_state")).to_have_text("Active")
    expect(newest.locator("td.field-source")).to_have_text("admin")
    expect(newest.locator("td.field-user")).to_have_text("alice")
    expect(newest.locator("td.field-reason")).to_have_text("bulk action: Make active (for sale)")
    expect(history.nth(1).locator("td.field-to_state")).to_have_text("Draft")
    expect(history.nth(1).locator("td.field-reason")).to_have_text("created")
    # The history is read-only: no inputs, no "add another".
    expect(page.locator("#state_changes-group input:not([type=hidden])")).to_have_count(0)

    # An active item offers exactly the moves the state machine allows.
    buttons = page.locator("button.transition-button")
    expect(buttons).to_have_count(3)
    assert sorted(buttons.evaluate_all("els => els.map(e => e.dataset.state)")) == ["archived", "draft", "sold"]
    page.click('button.transition-button[data-state="sold"]')
    expect(page.locator("ul.messagelist li.success")).to_have_text("FEN-STRAT-64 moved to sold.")
    expect(history).to_have_count(3)
    expect(history.nth(0).locator("td.field-to_state")).to_have_text("Sold")
    assert sorted(page.locator("button.transition-button").evaluate_all("els => els.map(e => e.dataset.state)")) == [
        "active",
        "archived",
        "shipped",
    ]
    strat.refresh_from_db()
    assert strat.state == "sold"
    last = ItemStateChange.objects.filter(item=strat).order_by("-id").first()
    assert (last.from_state, last.to_state, last.source, last.user.username) == ("active", "sold", "admin", "alice")

    # Another shop's item is not there for alice, not even by its URL.
    page.goto(f"/admin/inventory/item/{shop['rival_item'].pk}/change/")
    expect(page.locator("ul.messagelist li.warning")).to_contain_text(re.compile(r"Item with ID .+ doesn.t exist"))
    assert page.url.endswith("/admin/")


def test_export_csv_downloads_only_the_filtered_rows_of_the_own_account(page: Page, shop):
    log_in(page, "alice")
    page.goto("/admin/inventory/item/")
    filter_link(page, "brand", "Fender (5)").click()
    page.wait_for_url(re.compile(r"brand=Fender"))
    filter_link(page, "state", "Draft").click()
    page.wait_for_url(re.compile(r"state__exact=draft"))
    expect(page.locator("#export-csv")).to_have_attribute(
        "href", re.compile(r"brand=Fender.*state__exact=draft|state__exact=draft.*brand=Fender")
    )

    with page.expect_download() as download_info:
        page.click("#export-csv")
    download = download_info.value
    assert re.fullmatch(r"items-\d{8}-\d{4}\.csv", download.suggested_filename)
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))

    assert rows, "the export is empty"
    header = list(rows[0].keys())
    assert header[:3] == ["sku", "title", "brand"]
    assert {"price", "quantity_on_hand", "state", "storage_location"} <= set(header)
    assert sorted(row["sku"] for row in rows) == ["FEN-PB-62", "FEN-STRAT-64", "FEN-TELE-72"]
    assert {row["state"] for row in rows} == {"draft"}
    assert {row["brand"] for row in rows} == {"Fender"}
    strat = next(row for row in rows if row["sku"] == "FEN-STRAT-64")
    assert (strat["title"], Decimal(strat["price"])) == ("1964 Fender Stratocaster Sonic Blue", Decimal("18500"))
    # The rival's Fender draft matches the same filters, and must still not be there.
    assert "RIVAL" not in Path(download.path()).read_text(encoding="utf-8")


def test_item_list_screenshot_for_reviewers(page: Page, tmp_path):
    """The demo catalogue as the demo user sees it; also a smoke test of `create_demo`."""
    call_command("create_demo", stdout=io.StringIO())
    # The demo's two channel connections, with its active items live on both (as after `make run`).
    from inventory.models import ChannelConnection, ChannelListing

    demo = Item.objects.filter(account__slug="demo-guitars")
    for name in ("Reverb main shop", "Reverb outlet"):
        connection = ChannelConnection.objects.create(account=demo[0].account, channel="reverb", name=name)
        ChannelListing.objects.bulk_create(
            ChannelListing(
                account=item.account,
                item=item,
                connection=connection,
                actual_state="live",
                external_id=f"{connection.pk}-{item.pk}",
            )
            for item in demo.filter(state="active")
        )
    rival = account_create(name="Rival Music", slug="rival-music")
    make_item(rival, sku="RIVAL-FEN-001", title="Rival 1964 Fender Stratocaster", brand="Fender")

    log_in(page, "demo", "demo-gear-2026")
    page.goto("/admin/inventory/item/")
    skus = shown_skus(page)
    assert len(skus) == Item.objects.filter(account__slug="demo-guitars").count() > 10
    assert "RIVAL-FEN-001" not in skus
    expect(page.locator("#result_list .field-state_badge span", has_text="Shipped")).to_have_count(1)

    # Fold the app menu away, as staff do on a laptop, so the table gets the width.
    page.click("#toggle-nav-sidebar")
    expect(page.locator("#main")).not_to_have_class(re.compile(r"\bshifted\b"))
    page.evaluate("window.scrollTo(0, 0)")
    shot = Image.open(io.BytesIO(page.screenshot(full_page=False)))
    assert shot.size == (1400, 900)
    # A flat UI needs few colours: a 128-colour palette keeps it crisp at about a third of the bytes.
    shot = shot.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    target = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path / SCREENSHOT.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shot.save(target, optimize=True)
