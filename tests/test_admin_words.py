"""The admin's words and menus: what staff read before they click (issue 12)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.channels import OrderLineSeen, OrderSeen
from inventory.models import Alert, ChannelConnection, ChannelListing
from inventory.services.alerts import alert_raise
from inventory.services.selling import sale_record
from tests.factories import make_item

pytestmark = pytest.mark.django_db


def _shop(account, name="Main shop", priority=1):
    from django.conf import settings

    return ChannelConnection.objects.create(
        account=account, channel=next(iter(settings.CHANNELS)), name=name, priority=priority
    )


def test_items_come_first_and_delete_selected_is_the_last_action(admin_client_for, staff):
    client = admin_client_for(staff)
    index = client.get("/admin/")
    apps = index.context["app_list"]
    assert apps[0]["app_label"] == "inventory"
    assert [m["object_name"] for m in apps[0]["models"]][:4] == ["Item", "Order", "Conflict", "Alert"]
    actions = [
        name for name, _label in client.get("/admin/inventory/item/").context["action_form"].fields["action"].choices
    ]
    assert actions[0] == "" and actions[1] != "delete_selected" and actions[-1] == "delete_selected"


def test_every_page_has_a_favicon_and_no_view_site_link_to_nowhere(admin_client_for, staff):
    page = admin_client_for(staff).get("/admin/inventory/item/").content.decode()
    assert 'rel="icon"' in page and "inventory/favicon.svg" in page
    assert "View site" not in page


def test_empty_lists_say_what_would_appear_there(admin_client_for, staff):
    client = admin_client_for(staff)
    conflicts = client.get("/admin/inventory/conflict/").content.decode()
    assert 'id="empty-hint"' in conflicts and "No double sales" in conflicts and "good news" in conflicts
    alerts = client.get("/admin/inventory/alert/").content.decode()
    assert "No alerts." in alerts


def test_messages_count_in_words_not_item_s(admin_client_for, staff, account):
    shop = _shop(account)
    listing = ChannelListing.objects.create(
        account=account, item=make_item(account), connection=shop, actual_state="error"
    )
    response = admin_client_for(staff).post(
        "/admin/inventory/channellisting/", {"action": "retry_now", "_selected_action": [listing.pk]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["1 listing queued."]


def test_needs_review_shows_only_on_items_that_need_it(admin_client_for, staff, account):
    client = admin_client_for(staff)
    plain = make_item(account, n=1)
    imported = make_item(account, n=2)
    type(imported).objects.filter(pk=imported.pk).update(needs_review=True)
    assert "check the title, price" not in client.get(f"/admin/inventory/item/{plain.pk}/change/").content.decode()
    assert "check the title, price" in client.get(f"/admin/inventory/item/{imported.pk}/change/").content.decode()


def test_alerts_name_the_shop_and_filter_in_plain_words(admin_client_for, staff, account):
    shop = _shop(account, "Vintage outlet")
    alert_raise(account_id=account.pk, kind="connection", dedupe_key=f"pull-failing:{shop.pk}", title="Pulls failing")
    item = make_item(account, sku="FOUND-1")
    ChannelListing.objects.create(account=account, item=item, connection=shop, imported=True, actual_state="live")
    alert_raise(account_id=account.pk, kind="review", dedupe_key=f"imported:{item.pk}", title="Imported", item=item)
    page = admin_client_for(staff).get("/admin/inventory/alert/?state=open").content.decode()
    assert page.count('<td class="field-shop">Vintage outlet</td>') == 2
    assert ">Open</a>" in page and ">Seen, still open</a>" in page and ">Resolved</a>" in page
    assert "Empty" not in page


def test_the_list_action_lets_staff_pick_the_shops(admin_client_for, staff, account):
    main, outlet = _shop(account), _shop(account, "Outlet", 2)
    item = make_item(account)
    client = admin_client_for(staff)
    picking = client.post("/admin/inventory/item/", {"action": "list_on_chosen", "_selected_action": [item.pk]})
    body = picking.content.decode()
    assert f'name="connection" value="{main.pk}"' in body and f'name="connection" value="{outlet.pk}"' in body
    assert not ChannelListing.objects.exists(), "picking lists nothing yet"
    done = client.post(
        "/admin/inventory/item/",
        {"action": "list_on_chosen", "_selected_action": [item.pk], "apply": "yes", "connection": [outlet.pk]},
        follow=True,
    )
    assert [str(m) for m in done.context["messages"]] == ["1 item listed on Outlet."]
    assert list(ChannelListing.objects.values_list("connection__name", flat=True)) == ["Outlet"]


def test_the_dashboard_counts_todays_work_and_links_to_the_filtered_lists(admin_client_for, staff, account):
    a, b = _shop(account, "A"), _shop(account, "B", 2)
    make_item(account, sku="ONE-OFF")
    now = timezone.now()
    for shop, number, when in ((a, "A1", now - timedelta(seconds=5)), (b, "B1", now)):
        seen = OrderSeen(
            external_id=number,
            status="paid",
            placed_at=when,
            updated_at=when,
            lines=(OrderLineSeen(sku="ONE-OFF", external_listing_id="", quantity=1),),
        )
        sale_record(connection=shop, seen=seen)
    page = admin_client_for(staff).get("/admin/")
    tiles = {tile["label"]: tile for tile in page.context["dashboard_tiles"]}
    assert tiles["Double sales"]["count"] == 1 and tiles["Double sales"]["url"].endswith(
        "?status__exact=open&kind__exact=double_sale"
    )
    assert tiles["Orders to ship"]["count"] == 1, "the winner only: the loser of an open double sale is not shipped"
    assert [row["shop"] for row in page.context["sales_today"]] == ["A"]
    assert Alert.objects.filter(acknowledged_at__isnull=True).count() == tiles["Open alerts"]["count"]


def test_storage_location_is_a_search_box_matching_the_start_of_the_location(admin_client_for, staff, account):
    make_item(account, n=1, sku="ROW-3A", storage_location="A-03-1")
    make_item(account, n=2, sku="ROW-3B", storage_location="A-03-2")
    make_item(account, n=3, sku="ROW-4", storage_location="A-04-1")
    page = admin_client_for(staff).get("/admin/inventory/item/?storage_location=a-03").content.decode()
    assert "ROW-3A" in page and "ROW-3B" in page and "ROW-4" not in page
    assert 'type="search" name="storage_location" value="a-03"' in page
    assert '<option value="A-04-1">' in page, "the known locations are offered as autocomplete"


def test_save_and_list_everywhere_makes_a_draft_active_and_lists_it_on_every_shop(admin_client_for, staff, account):
    _shop(account, "Main")
    _shop(account, "Outlet", 2)
    form = {
        "sku": "QUICK-1",
        "title": "1978 Gibson Les Paul Custom",
        "brand": "Gibson",
        "model": "Les Paul Custom",
        "year": "1978",
        "condition": "excellent",
        "price": "4200",
        "currency": "USD",
        "quantity_on_hand": "1",
        "storage_location": "B-01",
        "_save_list_everywhere": "Save and list everywhere",
    }
    for prefix in ("photos", "state_changes", "stock_movements", "listings"):
        form.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    response = admin_client_for(staff).post("/admin/inventory/item/add/", form, follow=True)
    from inventory.models import Item

    item = Item.objects.get(sku="QUICK-1")
    assert item.state == "active"
    assert sorted(ChannelListing.objects.filter(item=item).values_list("connection__name", "desired_state")) == [
        ("Main", "live"),
        ("Outlet", "live"),
    ]
    assert [str(m) for m in response.context["messages"]] == ["QUICK-1 saved.", "1 item listed on Main, Outlet."]


def test_delisting_on_one_shop_ends_only_that_listing(admin_client_for, staff, account):
    from inventory.services import Actor
    from inventory.services.listing_staff import listing_end_on

    main, outlet = _shop(account), _shop(account, "Outlet", 2)
    item = make_item(account)
    for shop in (main, outlet):
        ChannelListing.objects.create(
            account=account, item=item, connection=shop, actual_state="live", external_id=f"x{shop.pk}"
        )
    assert listing_end_on(account=account, item_id=item.pk, connection_id=outlet.pk, actor=Actor(user=staff)) is True
    states = dict(ChannelListing.objects.values_list("connection__name", "desired_state"))
    assert states == {"Main shop": "live", "Outlet": "ended"}
    assert ChannelListing.objects.get(connection=outlet).end_reason == "withdrawn"
    # Again: nothing left for sale there, nothing changes.
    assert listing_end_on(account=account, item_id=item.pk, connection_id=outlet.pk, actor=Actor(user=staff)) is False
    # From the item page's button, as staff do.
    response = admin_client_for(staff).post(
        f"/admin/inventory/item/{item.pk}/listings/delist/", {"connection": main.pk}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Delisted from Main shop."]
    assert set(ChannelListing.objects.values_list("desired_state", flat=True)) == {"ended"}


def test_quick_add_makes_a_used_guitar_with_photos_and_lists_it_everywhere(
    admin_client_for, staff, account, settings, tmp_path
):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from inventory.models import Item

    settings.MEDIA_ROOT = tmp_path
    _shop(account, "Main")

    def png(name):
        data = io.BytesIO()
        Image.new("RGB", (40, 30), "orange").save(data, "PNG")
        return SimpleUploadedFile(name, data.getvalue(), content_type="image/png")

    client = admin_client_for(staff)
    assert "autofocus" in client.get("/admin/inventory/item/quick-add/").content.decode()
    response = client.post(
        "/admin/inventory/item/quick-add/",
        {
            "title": "1972 Fender Telecaster Thinline",
            "brand": "Fender",
            "model": "Telecaster Thinline",
            "year": "1972",
            "condition": "very_good",
            "price": "3850",
            "storage_location": "C-02",
            "photos": [png("front.png"), png("back.png")],
            "_list_everywhere": "1",
        },
        follow=True,
    )
    item = Item.objects.get(title="1972 Fender Telecaster Thinline")
    assert (item.state, item.condition, item.storage_location, item.quantity_on_hand) == (
        "active",
        "very_good",
        "C-02",
        1,
    )
    assert item.photos.count() == 2
    assert list(ChannelListing.objects.filter(item=item).values_list("connection__name", flat=True)) == ["Main"]
    assert [str(m) for m in response.context["messages"]] == [f"{item.sku} added.", "1 item listed on Main."]


def test_quick_add_as_draft_lists_nothing_and_a_bad_price_writes_nothing(admin_client_for, staff, account):
    from inventory.models import Item

    _shop(account, "Main")
    client = admin_client_for(staff)
    bad = client.post("/admin/inventory/item/quick-add/", {"title": "Amp", "condition": "good", "price": "-1"})
    assert bad.status_code == 200 and not Item.objects.exists()
    client.post(
        "/admin/inventory/item/quick-add/", {"title": "Amp", "condition": "good", "price": "300", "_draft": "1"}
    )
    assert Item.objects.get().state == "draft" and not ChannelListing.objects.exists()


def _queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_orders_alerts_listings_and_the_dashboard_make_a_constant_number_of_queries(admin_client_for, staff, account):
    from django.core.cache import cache

    from inventory.models import Order
    from inventory.services import Actor, LineSpec, order_create

    shop = _shop(account)
    client = admin_client_for(staff)
    pages = ["/admin/inventory/order/", "/admin/inventory/alert/", "/admin/inventory/channellisting/", "/admin/"]

    def add(n):
        item = make_item(account, n=n, sku=f"Q-{n}")
        order, _ = order_create(
            account=account,
            actor=Actor(source="test"),
            channel=shop.channel,
            connection=shop,
            external_id=f"O-{n}",
            placed_at=timezone.now(),
            lines=[LineSpec(item.pk, 1)],
        )
        listing = ChannelListing.objects.create(account=account, item=item, connection=shop, actual_state="error")
        alert_raise(
            account_id=account.pk,
            kind="sync_error",
            dedupe_key=f"listing-error:{listing.pk}",
            title="x",
            listing=listing,
        )
        alert_raise(account_id=account.pk, kind="connection", dedupe_key=f"pull-failing:{shop.pk}:{n}", title="y")
        return order

    add(0)
    for url in pages:
        client.get(url)
    few = {url: _queries(client, url) for url in pages}
    for n in range(1, 15):
        add(n)
    cache.clear()
    for url in pages:
        client.get(url)
    assert {url: _queries(client, url) for url in pages} == few
    assert Order.objects.count() == 15
