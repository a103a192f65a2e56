"""The bulk SEO edit (service, API, admin action) and the item page's per-channel SEO preview."""

from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from inventory.models import ChannelConnection, ChannelListing, DesiredState, Item, ItemEdit, ListingState
from inventory.services import Actor, item_update
from inventory.services.seo import Operation, items_seo_bulk, seo_pattern_fill
from tests.factories import make_item

pytestmark = pytest.mark.django_db

STAFF = Actor(source="test")
PATTERN = "{brand} {model} {year} {finish}"
LONG_SEO = "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case, ultra rare find"


@pytest.fixture
def items(account):
    return [
        make_item(account, n=1, sku="BLK-1", brand="Fender", model="Stratocaster", year="1964", finish="Sunburst"),
        make_item(account, n=2, sku="BLK-2", brand="Gibson", model="ES-335", year="", finish="Cherry"),
        make_item(account, n=3, sku="BLK-3", brand="Fender", model="Telecaster", year="1952", finish="Butterscotch"),
    ]


def live_listing(item, name="Reverb"):
    connection, _ = ChannelConnection.objects.get_or_create(
        account=item.account, name=name, defaults={"channel": "reverb"}
    )
    return ChannelListing.objects.create(
        account=item.account,
        item=item,
        connection=connection,
        desired_state=DesiredState.LIVE,
        actual_state=ListingState.LIVE,
        external_id=f"R-{item.pk}",
    )


# --- the service -------------------------------------------------------------------------------


def test_a_pattern_fills_from_the_items_words_without_gaps(items):
    assert seo_pattern_fill(PATTERN, items[0]) == "Fender Stratocaster 1964 Sunburst"
    assert seo_pattern_fill(PATTERN, items[1]) == "Gibson ES-335 Cherry"  # no year: no double space
    assert seo_pattern_fill("{brand} {model}, {year}, {condition}", items[1]) == "Gibson ES-335, Excellent"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{brand} {colour}", "Unknown placeholder {colour}. Use: {brand}, {model}"),
        ("{brand} {price} {cost}", "Unknown placeholders {price}, {cost}."),
        ("{brand} {}", "Write each placeholder as a plain name"),
        ("{brand:>10}", "Write each placeholder as a plain name"),
        ("{brand", "The pattern cannot be read"),
        ("   ", "Enter a pattern"),
    ],
)
def test_a_bad_pattern_is_refused_with_what_to_write_and_nothing_changes(account, items, pattern, message):
    with pytest.raises(ValidationError) as refused:
        items_seo_bulk(
            account=account, item_ids=[i.pk for i in items], operation=Operation.FILL_TITLE, value=pattern, actor=STAFF
        )
    assert message in refused.value.message_dict["pattern"][0]
    assert not Item.objects.exclude(seo_title="").exists()


def test_the_dry_run_shows_every_change_and_cut_and_writes_nothing(account, items):
    listing = live_listing(items[0])
    result = items_seo_bulk(
        account=account, item_ids=[i.pk for i in items], operation=Operation.FILL_TITLE, value=PATTERN, actor=STAFF
    )

    assert not result.applied and result.summary() == "3 item(s) would change, 0 already so"
    first = result.changed[0]
    assert first["changes"] == {"seo_title": {"from": "", "to": "Fender Stratocaster 1964 Sunburst"}}
    ebay = next(c for c in first["channels"] if c["channel"] == "ebay")
    assert (ebay["fields"][0]["sent"], ebay["fields"][0]["length"]) == ("Fender Stratocaster 1964 Sunburst", 33)
    vr = next(c for c in first["channels"] if c["channel"] == "vr")
    assert vr["fields"][0]["sent"] == "Stratocaster 1964 Sunburst"
    assert all(f["sent_to_channel"] for c in first["channels"] for f in c["fields"])  # only what goes out
    assert not Item.objects.exclude(seo_title="").exists()
    assert not ItemEdit.objects.exists()
    listing.refresh_from_db()
    assert not listing.needs_push


def test_the_dry_run_shows_where_a_long_title_is_cut_per_channel(account, items):
    result = items_seo_bulk(
        account=account, item_ids=[items[0].pk], operation=Operation.FILL_TITLE, value=LONG_SEO, actor=STAFF
    )
    row = result.changed[0]
    cuts = {c["channel"]: [(f["name"], f["cut"]) for f in c["fields"]] for c in row["channels"]}
    assert cuts["ebay"] == [("product.title", ", ultra rare find")]
    # Shopify's product title is the item's title (unchanged): only its SEO title changes, and is cut
    assert cuts["shopify"] == [("seo.title", "hardshell case, ultra rare find")]
    assert cuts["reverb"] == [("title", "")]  # no stated limit
    assert row["channels_unchanged"] == ["WooCommerce", "Amazon"]  # neither shows the SEO title


def test_apply_writes_history_and_marks_only_live_listings(account, items):
    listing = live_listing(items[0])
    ended = live_listing(items[1])
    ChannelListing.objects.filter(pk=ended.pk).update(desired_state=DesiredState.ENDED, actual_state=ListingState.ENDED)
    staff_actor = Actor(source="admin")

    result = items_seo_bulk(
        account=account,
        item_ids=[i.pk for i in items],
        operation=Operation.FILL_TITLE,
        value=PATTERN,
        actor=staff_actor,
        apply=True,
    )

    assert result.applied and result.listings_marked == 1
    assert list(Item.objects.order_by("pk").values_list("seo_title", flat=True)) == [
        "Fender Stratocaster 1964 Sunburst",
        "Gibson ES-335 Cherry",
        "Fender Telecaster 1952 Butterscotch",
    ]
    edits = list(ItemEdit.objects.order_by("item_id").values_list("item__sku", "field", "old_value", "source"))
    assert edits == [
        ("BLK-1", "seo_title", "", "admin"),
        ("BLK-2", "seo_title", "", "admin"),
        ("BLK-3", "seo_title", "", "admin"),
    ]
    assert ItemEdit.objects.first().reason == f"bulk SEO: fill_title {PATTERN}"
    listing.refresh_from_db()
    ended.refresh_from_db()
    assert listing.needs_push and not ended.needs_push

    again = items_seo_bulk(
        account=account,
        item_ids=[i.pk for i in items],
        operation=Operation.FILL_TITLE,
        value=PATTERN,
        actor=STAFF,
        apply=True,
    )
    assert (len(again.changed), len(again.unchanged)) == (0, 3)
    assert ItemEdit.objects.count() == 3  # nothing changed: no history row


def test_keywords_are_added_once_in_any_case_and_removed(account, items):
    item_update(item_id=items[0].pk, actor=STAFF, changes={"seo_keywords": "vintage, Strat"})

    added = items_seo_bulk(
        account=account,
        item_ids=[i.pk for i in items],
        operation=Operation.APPEND_KEYWORD,
        value="strat",
        actor=STAFF,
        apply=True,
    )
    assert [row["sku"] for row in added.unchanged] == ["BLK-1"]
    assert Item.objects.get(sku="BLK-2").seo_keywords == "strat"
    removed = items_seo_bulk(
        account=account,
        item_ids=[items[0].pk],
        operation=Operation.REMOVE_KEYWORD,
        value="VINTAGE",
        actor=STAFF,
        apply=True,
    )
    assert removed.changed[0]["changes"]["seo_keywords"] == {"from": "vintage, Strat", "to": "Strat"}
    with pytest.raises(ValidationError) as refused:
        items_seo_bulk(
            account=account, item_ids=[items[0].pk], operation=Operation.APPEND_KEYWORD, value="a, b", actor=STAFF
        )
    assert "One keyword at a time" in refused.value.message_dict["value"][0]


def test_a_value_too_long_for_the_field_is_refused_per_item(account, items):
    Item.objects.filter(pk=items[0].pk).update(title="T" * 199)
    result = items_seo_bulk(
        account=account,
        item_ids=[items[0].pk, items[1].pk],
        operation=Operation.FILL_TITLE,
        value="{title} {brand}",
        actor=STAFF,
        apply=True,
    )
    assert result.not_done == [
        {"id": items[0].pk, "sku": "BLK-1", "reason": "the new SEO title is 206 characters; it holds 200"}
    ]
    assert [row["sku"] for row in result.changed] == ["BLK-2"]


def test_another_accounts_items_are_not_found_and_untouched(account, other_account, items):
    theirs = make_item(other_account, n=9, sku="THEIRS-1")
    result = items_seo_bulk(
        account=account,
        item_ids=[theirs.pk, items[0].pk],
        operation=Operation.FILL_TITLE,
        value=PATTERN,
        actor=STAFF,
        apply=True,
    )
    assert result.not_done == [{"id": theirs.pk, "sku": None, "reason": "not found"}]
    theirs.refresh_from_db()
    assert theirs.seo_title == "" and not ItemEdit.objects.filter(item=theirs).exists()


# --- the API -------------------------------------------------------------------------------------


def test_api_dry_run_then_apply_on_a_filtered_set(api, items):
    url = "/api/v1/items/bulk-seo/?brand=Fender"
    dry = api.post(url, {"operation": "fill_title", "value": PATTERN}, format="json")

    assert dry.status_code == 200, dry.content
    body = dry.json()
    assert (body["applied"], [r["sku"] for r in body["changed"]]) == (False, ["BLK-1", "BLK-3"])
    assert body["summary"] == "2 item(s) would change, 0 already so"
    assert not Item.objects.exclude(seo_title="").exists()

    done = api.post(url, {"operation": "fill_title", "value": PATTERN, "apply": True}, format="json")
    assert done.status_code == 200 and done.json()["applied"] is True
    assert set(Item.objects.exclude(seo_title="").values_list("sku", flat=True)) == {"BLK-1", "BLK-3"}
    assert ItemEdit.objects.count() == 2


def test_api_refuses_an_unknown_placeholder_and_an_unscoped_call(api, items):
    bad = api.post(
        "/api/v1/items/bulk-seo/",
        {"operation": "fill_title", "value": "{brand} {colour}", "ids": [items[0].pk]},
        format="json",
    )
    assert bad.status_code == 400
    assert "Unknown placeholder {colour}. Use: {brand}" in str(bad.json())
    everything = api.post("/api/v1/items/bulk-seo/", {"operation": "append_keyword", "value": "vintage"}, format="json")
    assert everything.status_code == 400 and "filter them in the query string" in str(everything.json())
    assert not ItemEdit.objects.exists()


def test_api_bulk_seo_never_reaches_another_account(api, other_api, items, other_account):
    theirs = make_item(other_account, n=9, sku="THEIRS-1", brand="Fender")

    by_filter = other_api.post(
        "/api/v1/items/bulk-seo/?brand=Fender",
        {"operation": "fill_title", "value": PATTERN, "apply": True},
        format="json",
    )
    by_ids = other_api.post(
        "/api/v1/items/bulk-seo/",
        {"operation": "append_keyword", "value": "x", "ids": [items[0].pk, items[2].pk], "apply": True},
        format="json",
    )

    assert [r["sku"] for r in by_filter.json()["changed"]] == ["THEIRS-1"]
    assert by_ids.json()["changed"] == [] and len(by_ids.json()["not_done"]) == 2
    assert not Item.objects.filter(account=items[0].account).exclude(seo_title="", seo_keywords="").exists()
    theirs.refresh_from_db()
    assert theirs.seo_title == "Fender Model 9"
    assert api.get(f"/api/v1/items/{theirs.pk}/seo/").status_code == 404


def test_api_seo_preview_of_one_item(api, items):
    item_update(item_id=items[0].pk, actor=STAFF, changes={"seo_title": LONG_SEO})
    answer = api.get(f"/api/v1/items/{items[0].pk}/seo/")

    assert answer.status_code == 200
    ebay = next(c for c in answer.json() if c["channel"] == "ebay")
    title = ebay["fields"][0]
    assert (title["length"], title["limit"], title["cut"]) == (78, 80, ", ultra rare find")


# --- the admin ----------------------------------------------------------------------------------


def test_the_item_page_shows_each_channel_with_counts_and_the_cut_marked(admin_client_for, staff, items):
    item_update(
        item_id=items[0].pk,
        actor=STAFF,
        changes={"seo_title": LONG_SEO, "seo_description": "Pre-CBS.", "seo_keywords": "vintage, pre-CBS"},
    )
    page = admin_client_for(staff).get(reverse("admin:inventory_item_change", args=[items[0].pk]))

    html = page.content.decode()
    assert page.status_code == 200 and 'id="seo-preview"' in html
    ebay_row = re.search(r'<tr data-channel="ebay" data-field="product.title".*?</tr>', html, re.S).group(0)
    assert "Fender Stratocaster 1964 Sunburst pre-CBS L-series all original hardshell case</span>" in ebay_row
    assert 'class="seo-cut"' in ebay_row and ", ultra rare find</span>" in ebay_row
    assert "78 / 80 chars" in ebay_row and "17 chars cut" in ebay_row
    reverb_row = re.search(r'<tr data-channel="reverb" data-field="title".*?</tr>', html, re.S).group(0)
    assert "no stated limit" in reverb_row
    assert re.search(r'data-channel="amazon" data-field="item_name" class="seo-not-sent"', html)
    for name in ("ebay", "shopify", "reverb", "vr", "etsy", "woocommerce", "amazon"):
        assert f'data-channel="{name}"' in html


def test_the_admin_action_previews_then_applies(admin_client_for, staff, items):
    client = admin_client_for(staff)
    url = reverse("admin:inventory_item_changelist")
    chosen = {"action": "edit_seo", "_selected_action": [items[0].pk, items[1].pk]}

    form = client.post(url, chosen)
    assert form.status_code == 200 and b"Preview (dry run)" in form.content

    bad = client.post(url, {**chosen, "operation": "fill_title", "value": "{brand} {colour}"})
    assert b"Unknown placeholder {colour}" in bad.content

    preview = client.post(url, {**chosen, "operation": "fill_title", "value": PATTERN})
    html = preview.content.decode()
    assert "Dry run: 2 item(s) would change" in html and 'id="seo-apply-button"' in html
    assert "Fender Stratocaster 1964 Sunburst" in html
    assert not Item.objects.exclude(seo_title="").exists()

    applied = client.post(url, {**chosen, "operation": "fill_title", "value": PATTERN, "apply": "yes"}, follow=True)
    assert b"SEO edited: 2 item(s) changed" in applied.content
    assert set(Item.objects.exclude(seo_title="").values_list("sku", flat=True)) == {"BLK-1", "BLK-2"}
    assert set(ItemEdit.objects.values_list("user__username", flat=True)) == {staff.username}
    history = client.get(reverse("admin:inventory_item_change", args=[items[0].pk])).content.decode()
    assert "SEO edits" in history and "bulk SEO: fill_title {brand} {model} {year} {finish}" in history
