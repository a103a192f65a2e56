"""Edits made directly on a channel, end to end through the loopback Reverb.

The seller changes a listing on reverb.com itself (the sandbox's `edit_listing`); a pull
reads it; the connection's strategy for that field decides (ours wins, the channel wins,
highest / lowest price, ask staff); workers converge the listings, and the sandbox shows
what each channel ends up with. Two Reverb shops stand in for two channels where a tie
between channels is tested (the rule is the connection's priority, whatever the channel).
"""

from decimal import Decimal

import pytest

from channels_reverb import sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import DEFAULT_TOKEN, ReverbSandbox
from inventory.models import Alert, AlertKind, ChannelListing, Conflict, ConflictKind, ItemStateChange
from inventory.services import Actor
from inventory.services.edits import field_edit_settle
from inventory.services.listings import listing_converge, listings_publish
from inventory.services.sync import connection_pull, listings_audit
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")

ORIGINAL = {"price": "1000.00", "quantity": 5, "title": "Boss DS-1 Distortion", "description": "New in box."}
EDITED = {"price": "1200.00", "quantity": 3, "title": "Boss DS-1 Distortion (Japan)", "description": "New, boxed."}


@pytest.fixture(autouse=True)
def _fresh_clients():
    sync._clients.__dict__.clear()
    yield
    sync._clients.__dict__.clear()


@pytest.fixture
def reverb():
    with ReverbSandbox() as running:
        yield running


@pytest.fixture
def outlet_sandbox():
    with ReverbSandbox() as running:
        yield running


def _connection(account, sandbox, name, **fields):
    return ReverbConnection.objects.create(
        account=account, name=name, api_token=DEFAULT_TOKEN, base_url=sandbox.base_url, timeout_seconds=2, **fields
    )


@pytest.fixture
def main(account, reverb):
    return _connection(account, reverb, "Reverb main", priority=20)


@pytest.fixture
def outlet(account, outlet_sandbox):
    return _connection(account, outlet_sandbox, "Reverb outlet", priority=40)


def _list(account, connections, sku="BOSS-DS1"):
    """A multi-quantity item the engine listed on each connection."""
    item = make_item(
        account,
        sku=sku,
        brand="Boss",
        model="DS-1",
        condition="brand_new",
        quantity=ORIGINAL["quantity"],
        title=ORIGINAL["title"],
        description=ORIGINAL["description"],
        price=Decimal(ORIGINAL["price"]),
    )
    listings_publish(account=account, item_ids=[item.pk], actor=STAFF, connection_ids=[c.pk for c in connections])
    listings = {}
    for connection in connections:
        listing = ChannelListing.objects.get(item=item, connection=connection)
        listing_converge(listing.pk)
        listing.refresh_from_db()
        listings[connection.pk] = listing
    return item, listings


def _shown(sandbox, listing) -> dict:
    raw = sandbox.listing(listing.external_id)
    return {
        "price": raw["price"]["amount"],
        "quantity": raw["inventory"],
        "title": raw["title"],
        "description": raw["description"],
    }


def _edit(sandbox, listing, field, value):
    sandbox.edit_listing(listing.external_id, **{field: value})


def _converge_all(item):
    for listing in ChannelListing.objects.filter(item=item):
        listing_converge(listing.pk)


def _item_value(item, field):
    item.refresh_from_db()
    value = getattr(item, "quantity_on_hand" if field == "quantity" else field)
    return f"{value:.2f}" if field == "price" else value


def _decisions(item) -> list[str]:
    return list(
        ItemStateChange.objects.filter(item=item, from_state="active", to_state="active")
        .order_by("id")
        .values_list("reason", flat=True)
    )


FIELDS = ["price", "quantity", "title", "description"]


# --- ours wins (the default: what every shop had before strategies) ---------------------------


@pytest.mark.parametrize("field", FIELDS)
def test_by_default_ours_wins_and_is_pushed_back(account, main, reverb, field):
    item, listings = _list(account, [main])
    listing = listings[main.pk]
    _edit(reverb, listing, field, EDITED[field])

    run = connection_pull(connection_id=main.pk, full_scan=True)
    reverb.reset_log()
    _converge_all(item)

    assert run.status == "ok" and run.updated == 1
    assert _item_value(item, field) == ORIGINAL[field]  # the item kept ours
    assert _shown(reverb, listing)[field] == ORIGINAL[field]  # and the channel shows ours again
    assert [(r.method, r.path) for r in reverb.requests() if r.method == "PUT"] == [
        ("PUT", f"/listings/{listing.external_id}")
    ]
    [decision] = _decisions(item)
    assert (
        decision.startswith(f"{field.capitalize()} changed on Reverb main to ") and "ours wins, pushed back" in decision
    )
    assert not Conflict.objects.exists()


def test_a_price_pushed_back_beyond_the_tolerance_is_still_a_drift_alert(account, main, reverb):
    main.price_drift_percent = Decimal("5")
    main.save()
    item, listings = _list(account, [main])
    _edit(reverb, listings[main.pk], "price", "1030.00")  # 3 %: within
    connection_pull(connection_id=main.pk, full_scan=True)
    assert not Alert.objects.filter(kind=AlertKind.PRICE_DRIFT).exists()

    _converge_all(item)
    _edit(reverb, listings[main.pk], "price", "1200.00")  # 20 %: beyond
    connection_pull(connection_id=main.pk, full_scan=True)

    [alert] = Alert.objects.filter(kind=AlertKind.PRICE_DRIFT)
    assert alert.title == "BOSS-DS1 costs 1200.00 on Reverb main, not 1000.00"


def test_a_second_pull_before_the_push_back_decides_nothing_twice(account, main, reverb):
    item, listings = _list(account, [main])
    _edit(reverb, listings[main.pk], "price", "1200.00")

    connection_pull(connection_id=main.pk, full_scan=True)
    again = connection_pull(connection_id=main.pk, full_scan=True)  # the push back has not run yet

    assert again.updated == 0
    assert len(_decisions(item)) == 1


def test_a_sale_on_the_channel_lowers_its_quantity_without_being_an_edit(account, main, reverb):
    item, _listings = _list(account, [main])
    reverb.simulate_sale("BOSS-DS1", quantity=2, deliver_webhook=False)

    connection_pull(connection_id=main.pk, full_scan=True)

    item.refresh_from_db()
    assert item.quantity_on_hand == 3  # the sale, once
    assert _decisions(item) == []


# --- the channel wins ------------------------------------------------------------------------


@pytest.mark.parametrize("field", FIELDS)
def test_the_channel_wins_into_the_item_and_on_to_the_other_channels(
    account, main, outlet, reverb, outlet_sandbox, field
):
    setattr(main, f"edit_{field}", "channel")
    main.save()
    item, listings = _list(account, [main, outlet])
    _edit(reverb, listings[main.pk], field, EDITED[field])

    connection_pull(connection_id=main.pk, full_scan=True)
    reverb.reset_log()
    outlet_sandbox.reset_log()
    _converge_all(item)

    assert _item_value(item, field) == EDITED[field]
    assert _shown(outlet_sandbox, listings[outlet.pk])[field] == EDITED[field]  # propagated
    assert _shown(reverb, listings[main.pk])[field] == EDITED[field]
    assert not [r for r in reverb.requests() if r.method == "PUT"]  # nothing sent back to where it came from
    [decision] = _decisions(item)
    assert "the channel wins" in decision and "taken into the item" in decision


def test_a_channel_price_with_its_own_override_stays_on_that_channel(account, main, outlet, reverb, outlet_sandbox):
    main.edit_price = "channel"
    main.save()
    item, listings = _list(account, [main, outlet])
    ChannelListing.objects.filter(pk=listings[main.pk].pk).update(price_override=Decimal("1100.00"))
    listing_converge(listings[main.pk].pk)  # not needed to be pushed: mark changed the way staff would
    _edit(reverb, listings[main.pk], "price", "1250.00")

    connection_pull(connection_id=main.pk, full_scan=True)
    _converge_all(item)

    assert _item_value(item, "price") == "1000.00"
    assert ChannelListing.objects.get(pk=listings[main.pk].pk).price_override == Decimal("1250.00")
    assert _shown(outlet_sandbox, listings[outlet.pk])["price"] == "1000.00"
    assert "into this channel's own price" in _decisions(item)[0]


# --- highest / lowest price ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "theirs", "winner"),
    [
        ("highest", "1200.00", "1200.00"),
        ("highest", "900.00", "1000.00"),
        ("lowest", "900.00", "900.00"),
        ("lowest", "1200.00", "1000.00"),
    ],
)
def test_highest_or_lowest_price_wins(account, main, outlet, reverb, outlet_sandbox, rule, theirs, winner):
    main.edit_price = rule
    main.save()
    item, listings = _list(account, [main, outlet])
    _edit(reverb, listings[main.pk], "price", theirs)

    connection_pull(connection_id=main.pk, full_scan=True)
    _converge_all(item)

    assert _item_value(item, "price") == winner
    assert _shown(reverb, listings[main.pk])["price"] == winner
    assert _shown(outlet_sandbox, listings[outlet.pk])["price"] == winner
    [decision] = _decisions(item)
    assert f"the {rule} price wins" in decision
    assert ("taken into the item" in decision) == (winner == theirs)


# --- ties between channels: priority -----------------------------------------------------------


@pytest.mark.parametrize("pulled_first", ["main", "outlet"])
def test_two_channels_changing_one_field_the_lower_priority_number_wins(
    account, main, outlet, reverb, outlet_sandbox, pulled_first
):
    for connection in (main, outlet):
        connection.edit_price = "channel"
        connection.save()
    item, listings = _list(account, [main, outlet])
    _edit(reverb, listings[main.pk], "price", "1200.00")  # main: priority 20
    _edit(outlet_sandbox, listings[outlet.pk], "price", "950.00")  # outlet: priority 40

    first = main if pulled_first == "main" else outlet
    connection_pull(connection_id=first.pk, full_scan=True)
    _converge_all(item)
    for connection in (main, outlet):
        connection_pull(connection_id=connection.pk, full_scan=True)  # nothing left to decide

    assert _item_value(item, "price") == "1200.00"
    assert _shown(outlet_sandbox, listings[outlet.pk])["price"] == "1200.00"
    assert _shown(reverb, listings[main.pk])["price"] == "1200.00"
    [decision] = _decisions(item)
    assert "Reverb outlet's 950.00 loses by priority" in decision


def test_a_changed_priority_changes_who_wins_a_tie(account, main, outlet, reverb, outlet_sandbox):
    for connection in (main, outlet):
        connection.edit_price = "channel"
        connection.save()
    outlet.priority = 5
    outlet.save()
    item, listings = _list(account, [main, outlet])
    _edit(reverb, listings[main.pk], "price", "1200.00")
    _edit(outlet_sandbox, listings[outlet.pk], "price", "950.00")

    connection_pull(connection_id=main.pk, full_scan=True)
    _converge_all(item)

    assert _item_value(item, "price") == "950.00"
    assert _shown(reverb, listings[main.pk])["price"] == "950.00"


# --- ask staff ---------------------------------------------------------------------------------


def _asked(account, main, reverb, field):
    setattr(main, f"edit_{field}", "ask")
    main.save()
    item, listings = _list(account, [main])
    _edit(reverb, listings[main.pk], field, EDITED[field])
    connection_pull(connection_id=main.pk, full_scan=True)
    return item, listings[main.pk]


@pytest.mark.parametrize("field", FIELDS)
def test_ask_staff_opens_one_conflict_with_both_values_and_holds_the_field(account, main, reverb, field):
    item, listing = _asked(account, main, reverb, field)
    connection_pull(connection_id=main.pk, full_scan=True)  # seen again: still one

    [conflict] = Conflict.objects.all()
    assert (conflict.kind, conflict.field, conflict.listing_id) == (ConflictKind.FIELD_EDIT, field, listing.pk)
    assert (conflict.ours, conflict.theirs) == (str(ORIGINAL[field]), str(EDITED[field]))
    assert Alert.objects.get(kind=AlertKind.CHANNEL_EDIT).conflict == conflict
    assert _item_value(item, field) == ORIGINAL[field]
    # Another edit here goes out, but not the field staff are asked about.
    other = "model" if field != "title" else "description"
    item.refresh_from_db()
    from inventory.services.items import item_update

    item_update(item_id=item.pk, actor=STAFF, changes={other: "DS-1X" if other == "model" else "Changed here."})
    _converge_all(item)
    assert _shown(reverb, listing)[field] == EDITED[field]
    assert "staff asked" in _decisions(item)[0]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("keep", ["ours", "theirs"])
def test_settling_an_edit_in_the_admin_either_way(admin_client_for, staff, account, main, reverb, field, keep):
    item, listing = _asked(account, main, reverb, field)
    conflict = Conflict.objects.get()
    client = admin_client_for(staff)

    page = client.get(f"/admin/inventory/conflict/{conflict.pk}/change/").content.decode()
    assert 'id="keep-ours-button"' in page and 'id="keep-theirs-button"' in page
    assert 'id="value-theirs"' in page
    response = client.post(f"/admin/inventory/conflict/{conflict.pk}/settle/", {"keep": keep})
    _converge_all(item)

    assert response.status_code == 302
    conflict.refresh_from_db()
    assert conflict.status == "resolved" and conflict.resolved_by == staff
    wanted = ORIGINAL[field] if keep == "ours" else EDITED[field]
    assert _item_value(item, field) == wanted
    assert _shown(reverb, listing)[field] == wanted
    assert not Alert.objects.filter(conflict=conflict, resolved_at__isnull=True).exists()
    assert "settled by staff" in _decisions(item)[-1]


@pytest.mark.parametrize("keep", ["ours", "theirs"])
def test_settling_an_edit_over_the_api_either_way(api, account, main, reverb, keep):
    item, listing = _asked(account, main, reverb, "price")
    conflict = Conflict.objects.get()

    listed = api.get("/api/v1/conflicts/?kind=field_edit&status=open").json()
    wrong = api.post(f"/api/v1/conflicts/{conflict.pk}/settle/", {"cancel": "loser"}, format="json")
    settled = api.post(f"/api/v1/conflicts/{conflict.pk}/settle/", {"keep": keep}, format="json")
    again = api.post(f"/api/v1/conflicts/{conflict.pk}/settle/", {"keep": keep}, format="json")
    _converge_all(item)

    assert [row["id"] for row in listed["results"]] == [conflict.pk]
    assert listed["results"][0]["theirs"] == "1200.00" and listed["results"][0]["winning_order"] is None
    assert wrong.status_code == 400 and "keep" in wrong.json()
    assert settled.status_code == 200 and settled.json()["status"] == "resolved"
    assert again.status_code == 409
    wanted = "1000.00" if keep == "ours" else "1200.00"
    assert _item_value(item, "price") == wanted
    assert _shown(reverb, listing)["price"] == wanted


def test_the_read_back_audit_applies_the_same_strategies(account, main, reverb):
    main.edit_title = "channel"
    main.save()
    item, listings = _list(account, [main])
    _edit(reverb, listings[main.pk], "title", EDITED["title"])

    report_only = listings_audit(connection_id=main.pk, apply=False)
    assert report_only.report["drifted"] == ["BOSS-DS1"] and _item_value(item, "title") == ORIGINAL["title"]
    listings_audit(connection_id=main.pk, apply=True)

    assert _item_value(item, "title") == EDITED["title"]


# --- strategies configured per connection, and tenants ------------------------------------------


def test_strategies_are_set_per_connection_over_the_api(api, main):
    ok = api.patch(f"/api/v1/connections/{main.pk}/", {"edit_price": "highest", "edit_title": "ask"}, format="json")
    refused = api.patch(f"/api/v1/connections/{main.pk}/", {"edit_title": "highest"}, format="json")

    assert ok.status_code == 200, ok.content
    assert (ok.json()["edit_price"], ok.json()["edit_title"], ok.json()["edit_quantity"]) == ("highest", "ask", "ours")
    assert refused.status_code == 400
    assert "price only" in str(refused.json())
    main.refresh_from_db()
    assert (main.edit_price, main.edit_title) == ("highest", "ask")


def test_the_connection_admin_shows_the_edit_strategies(admin_client_for, staff, main):
    page = admin_client_for(staff).get(f"/admin/channels_reverb/reverbconnection/{main.pk}/change/").content.decode()

    assert "Edits made on the channel" in page
    for name in ("edit_price", "edit_quantity", "edit_title", "edit_description", "price_drift_percent"):
        assert f'name="{name}"' in page


def test_another_shop_cannot_see_or_settle_an_edit(other_api, other_staff, admin_client_for, account, main, reverb):
    _item, _listing = _asked(account, main, reverb, "price")
    conflict = Conflict.objects.get()

    assert other_api.get("/api/v1/conflicts/").json()["results"] == []
    assert (
        other_api.post(f"/api/v1/conflicts/{conflict.pk}/settle/", {"keep": "theirs"}, format="json").status_code == 404
    )
    other_admin = admin_client_for(other_staff)
    assert other_admin.post(f"/admin/inventory/conflict/{conflict.pk}/settle/", {"keep": "theirs"}).status_code == 404
    conflict.refresh_from_db()
    assert conflict.status == "open"


def test_settling_twice_changes_nothing_the_second_time(account, main, reverb):
    item, _listing = _asked(account, main, reverb, "price")
    conflict = Conflict.objects.get()

    field_edit_settle(conflict_id=conflict.pk, keep="theirs", actor=STAFF)
    field_edit_settle(conflict_id=conflict.pk, keep="ours", actor=STAFF)

    assert _item_value(item, "price") == "1200.00"
    assert len([d for d in _decisions(item) if "settled by staff" in d]) == 1


# --- through Shopify's webhook, and Shopify against Reverb ---------------------------------------


@pytest.fixture
def shopify():
    from channels_shopify import sync as shopify_sync
    from channels_shopify.sandbox import ShopifySandbox

    shopify_sync._clients.__dict__.clear()
    with ShopifySandbox() as running:
        yield running
    shopify_sync._clients.__dict__.clear()


@pytest.fixture
def website(account, shopify):
    from tests.shopify_market import shopify_connection

    return shopify_connection(account, shopify, name="Website")  # priority 10: Shopify first, by default


def _webhook_then_pull(client, connection, shopify, monkeypatch, payload):
    """Shopify delivers products/update; the stored event asks for a pull, which the worker runs."""
    import json

    from inventory import tasks
    from inventory.models import WebhookEvent
    from inventory.services.sync import webhook_process

    asked = []
    monkeypatch.setattr(tasks, "enqueue_pull", asked.append)
    body = json.dumps(payload).encode()
    headers = shopify.webhook_headers("products/update", body)
    answer = client.post(
        connection.webhook_path,
        body,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )
    assert answer.status_code == 200, answer.content
    event = WebhookEvent.objects.get(connection=connection, topic="products/update")
    assert webhook_process(event_id=event.pk) == "pull requested"
    assert asked == [connection.pk]
    return connection_pull(connection_id=connection.pk)


def test_shopifys_html_description_read_back_is_not_an_edit(account, website, shopify):
    item, listings = _list(account, [website])
    ItemStateChange.objects.filter(item=item).delete()
    from inventory.services.items import item_update

    item_update(item_id=item.pk, actor=STAFF, changes={"description": "Fish & chips <ok>\n\nSecond line\nand a third"})
    _converge_all(item)
    assert "&amp;" in shopify.product(listings[website.pk].external_id)["descriptionHtml"]  # Shopify's own HTML

    connection_pull(connection_id=website.pk, full_scan=True)

    assert _decisions(item) == []


def test_an_edit_on_shopify_arrives_by_its_webhook_and_the_channel_wins_everywhere(
    client, account, website, main, shopify, reverb, monkeypatch
):
    website.edit_title = "channel"
    website.edit_description = "channel"
    website.save()
    item, listings = _list(account, [website, main])
    product_id = listings[website.pk].external_id
    shopify.edit_listing(
        product_id,
        title="Boss DS-1 (1980, Japan)",
        description_html="<p>Made in Japan.</p><p>Boxed.</p>",
        deliver_webhook=False,
    )

    run = _webhook_then_pull(client, website, shopify, monkeypatch, {"id": 1, "admin_graphql_api_id": product_id})
    _converge_all(item)

    assert run.status == "ok"
    item.refresh_from_db()
    assert (item.title, item.description) == ("Boss DS-1 (1980, Japan)", "Made in Japan.\n\nBoxed.")  # text, not HTML
    assert _shown(reverb, listings[main.pk])["title"] == "Boss DS-1 (1980, Japan)"
    assert _shown(reverb, listings[main.pk])["description"] == "Made in Japan.\n\nBoxed."
    assert sorted(d.split(" changed on ")[0] for d in _decisions(item)) == ["Description", "Title"]


@pytest.mark.parametrize("pulled_first", ["reverb", "shopify"])
def test_shopify_wins_a_tie_with_reverb_by_the_default_platform_order(
    account, website, main, shopify, reverb, pulled_first
):
    for connection in (website, main):
        connection.edit_price = "channel"
        connection.save()
    item, listings = _list(account, [website, main])
    shopify.edit_listing(listings[website.pk].external_id, price="1111.00", deliver_webhook=False)
    _edit(reverb, listings[main.pk], "price", "1333.00")

    first = main if pulled_first == "reverb" else website
    connection_pull(connection_id=first.pk, full_scan=True)
    _converge_all(item)

    assert _item_value(item, "price") == "1111.00"
    assert _shown(reverb, listings[main.pk])["price"] == "1111.00"
    [variant] = shopify.product(listings[website.pk].external_id)["variants"]["nodes"]
    assert Decimal(str(variant["price"])) == Decimal("1111.00")
    [decision] = _decisions(item)
    assert "Reverb main's 1333.00 loses by priority" in decision


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_staff_settle_an_edit_with_one_click_in_chromium_at_1280_px(live_server, reverb, tmp_path):
    import io
    import os
    import re
    from pathlib import Path

    from PIL import Image
    from playwright.sync_api import sync_playwright

    from accounts.services import account_create, staff_user_create
    from tests.conftest import CHROMIUM

    shop = account_create(name="Blue Note Guitars", slug="blue-note")
    staff_user_create(account=shop, username="alice", password="correct-horse-battery-9")
    reverb_shop = _connection(shop, reverb, "Reverb main", priority=20, edit_price="ask")
    item, _listing = _asked(shop, reverb_shop, reverb, "price")
    conflict = Conflict.objects.get()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            context = browser.new_context(
                base_url=live_server.url, viewport={"width": 1280, "height": 900}, color_scheme="light"
            )
            page = context.new_page()
            page.goto(f"/admin/login/?next=/admin/inventory/conflict/{conflict.pk}/change/")
            page.fill("#id_username", "alice")
            page.fill("#id_password", "correct-horse-battery-9")
            page.click("input[type=submit]")
            page.wait_for_url(re.compile(rf"/conflict/{conflict.pk}/change/"))

            assert page.locator("#value-ours").text_content() == "1000.00"
            assert page.locator("#value-theirs").text_content() == "1200.00"
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0
            shot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
            screenshots = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
            folder = screenshots if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
            folder.mkdir(parents=True, exist_ok=True)
            shot.convert("RGB").save(folder / "conflict-field-edit.png", optimize=True)

            page.fill("#id_settle_note", "Raised on Reverb for the sale.")
            page.click("#keep-theirs-button")
            page.wait_for_url(re.compile(rf"/conflict/{conflict.pk}/change/"))
            message = page.locator(".messagelist").text_content()
            assert "Took Reverb main's price (1200.00) into the item. Raised on Reverb for the sale." in message
            context.close()
            browser.close()

    conflict.refresh_from_db()
    assert conflict.status == "resolved"
    assert _item_value(item, "price") == "1200.00"


def test_every_channel_names_only_fields_an_edit_is_looked_for_in():
    from django.conf import settings

    from inventory.channels import channel
    from inventory.models.channels import EDITED_FIELDS

    for name in settings.CHANNELS:
        seen = getattr(channel(name), "EDITS_SEEN", frozenset(EDITED_FIELDS))
        assert seen and set(seen) <= set(EDITED_FIELDS), name
        assert {"price", "quantity"} <= set(seen), name  # every channel reads its price and stock back as pushed


def test_a_title_the_channel_does_not_read_back_as_pushed_is_never_an_edit(account, main, reverb, monkeypatch):
    from channels_reverb import sync as reverb_sync

    monkeypatch.setattr(reverb_sync, "EDITS_SEEN", frozenset({"price", "quantity"}), raising=False)
    item, listings = _list(account, [main])
    _edit(reverb, listings[main.pk], "title", "Rewritten by the channel")

    run = connection_pull(connection_id=main.pk, full_scan=True)

    assert run.updated == 0 and _decisions(item) == []
