"""Analytics figures against values computed by hand on a small shop, tenant isolation on every
figure and download, plan gating, and the period / channel filters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from inventory.models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    Conflict,
    Item,
    Order,
    OrderLine,
    SyncRun,
)
from inventory.services import analytics as a
from tests.factories import make_item

pytestmark = pytest.mark.django_db
D = Decimal


@dataclass
class Shop:
    reverb: ChannelConnection
    shopify: ChannelConnection
    items: dict
    now: dt.datetime
    good_pull_at: dt.datetime


def _order(account, conn, ext, placed_at, lines, *, status="completed", total=None, channel=None, **fields):
    order = Order.objects.create(
        account=account,
        channel=channel or (conn.channel if conn else "manual"),
        connection=conn,
        external_id=ext,
        placed_at=placed_at,
        status=status,
        total=total if total is not None else sum(q * p for _i, q, p in lines),
        **fields,
    )
    for item, quantity, price in lines:
        OrderLine.objects.create(
            order=order, item=item, quantity=quantity, unit_price=price, sku=item.sku, title=item.title
        )
    return order


def _listing(account, item, conn, created_at, **fields):
    listing = ChannelListing.objects.create(account=account, item=item, connection=conn, **fields)
    ChannelListing.objects.filter(pk=listing.pk).update(created_at=created_at)
    return listing


def build_shop(account, *, scale: int = 1) -> Shop:
    """The hand-computed fixture (scale multiplies prices, so another account's figures differ).

    i1 Fender 1000 (cost 600), sold on Reverb; its Shopify listing ended 30 s after the sale.
    i2 Gibson 2000 (no cost), sold on Shopify for 1800; its Reverb listing ended 90 s after.
    i3 Boss pedal 100 (cost 40), 5 left, live on both: 3 sold on Reverb, 2 in the shop at 90.
    i4 Vox 300 (cost 100), draft: pending on Reverb, in error on Shopify.
    Plus a cancelled Reverb order, a Shopify order that lost a double sale, one order before the period.
    """
    now = timezone.now()
    day = dt.timedelta(days=1)
    reverb = ChannelConnection.objects.create(account=account, channel="reverb", name="Reverb main")
    shopify = ChannelConnection.objects.create(account=account, channel="shopify", name="Shopify store")
    m = D(scale)
    i1 = make_item(account, n=1, brand="Fender", category="Electric Guitars", price=1000 * m, cost=600 * m)
    i2 = make_item(account, n=2, brand="Gibson", category="Electric Guitars", price=2000 * m)
    i3 = make_item(account, n=3, brand="Boss", category="Effects", price=100 * m, cost=40 * m, quantity=5)
    i4 = make_item(account, n=4, brand="Vox", category="Amps", price=300 * m, cost=100 * m, state="draft")
    sold1, sold2 = now - 5 * day, now - 3 * day
    Item.objects.filter(pk=i1.pk).update(
        state="sold", quantity_on_hand=0, sold_on=reverb, sold_at=sold1, sold_recorded_at=sold1
    )
    Item.objects.filter(pk=i2.pk).update(
        state="sold", quantity_on_hand=0, sold_on=shopify, sold_at=sold2, sold_recorded_at=sold2
    )
    _listing(account, i1, reverb, sold1 - 10 * day, desired_state="ended", actual_state="sold", end_reason="sold_here")
    _listing(
        account,
        i1,
        shopify,
        sold1 - 8 * day,
        desired_state="ended",
        actual_state="ended",
        end_reason="sold_elsewhere",
        ended_at=sold1 + dt.timedelta(seconds=30),
    )
    _listing(account, i2, shopify, sold2 - 4 * day, desired_state="ended", actual_state="sold", end_reason="sold_here")
    _listing(
        account,
        i2,
        reverb,
        sold2 - 2 * day,
        desired_state="ended",
        actual_state="ended",
        end_reason="sold_elsewhere",
        ended_at=sold2 + dt.timedelta(seconds=90),
    )
    o3_at, o4_at = now - 2 * day, now - 1 * day
    _listing(account, i3, reverb, o3_at - 20 * day, actual_state="live", price_override=110 * m)
    _listing(account, i3, shopify, o3_at - 15 * day, actual_state="live")
    _listing(account, i4, reverb, now, actual_state="pending")
    _listing(account, i4, shopify, now, actual_state="error", last_error="refused")

    o1 = _order(account, reverb, "R1", sold1, [(i1, 1, 1000 * m)], total=1050 * m, shipped_at=now)
    _order(account, shopify, "S2", sold2, [(i2, 1, 1800 * m)])
    _order(account, reverb, "R3", o3_at, [(i3, 3, 100 * m)])
    _order(account, None, "M4", o4_at, [(i3, 2, 90 * m)], status="open")
    _order(account, reverb, "R5", now - 4 * day, [(i3, 1, 100 * m)], status="cancelled")
    lost = _order(account, shopify, "S6", sold1 + dt.timedelta(minutes=1), [(i1, 1, 1000 * m)])
    Conflict.objects.create(account=account, item=i1, winning_order=o1, losing_order=lost)
    _order(account, reverb, "R0", now - 60 * day, [(i3, 1, 100 * m)])  # before the 30-day period

    for status in ("ok", "ok", "ok", "failed"):
        SyncRun.objects.create(account=account, connection=reverb, kind="push", status=status, finished_at=now)
    SyncRun.objects.create(account=account, connection=shopify, kind="push", status="ok", finished_at=now)
    good_pull_at = now - dt.timedelta(minutes=10)
    SyncRun.objects.create(
        account=account, connection=reverb, kind="pull", status="ok", created=1, finished_at=good_pull_at
    )
    SyncRun.objects.create(account=account, connection=reverb, kind="pull", status="failed", finished_at=now)
    Alert.objects.create(account=account, kind="connection", title="token", dedupe_key="c1", connection=reverb)
    Alert.objects.create(
        account=account, kind="connection", title="old", dedupe_key="c2", connection=reverb, resolved_at=now
    )
    return Shop(reverb, shopify, {"i1": i1, "i2": i2, "i3": i3, "i4": i4}, now, good_pull_at)


@pytest.fixture
def shop(account, other_account):
    build_shop(other_account, scale=7)  # a rival's bigger numbers must never show up in ours
    return build_shop(account)


def F(**params) -> a.AnalyticsFilter:
    return a.analytics_filter_parse(params)


def test_sales_by_channel_match_the_hand_computed_figures(shop, staff):
    rows = a.sales_by_channel(user=staff, f=F())

    assert [(r["channel"], r["orders"], r["units"], r["revenue"]) for r in rows] == [
        ("shopify", 1, 1, D("1800.00")),
        ("reverb", 2, 4, D("1300.00")),
        ("manual", 1, 2, D("180.00")),
    ]
    shopify, reverb, manual = rows
    assert (reverb["average_sale_price"], reverb["cost"], reverb["margin"], reverb["margin_rate"]) == (
        D("325.00"),
        D("720.00"),
        D("580.00"),
        D("0.4462"),
    )
    assert (shopify["costed_units"], shopify["margin"], shopify["margin_rate"]) == (0, None, None)
    assert (manual["margin"], manual["margin_rate"]) == (D("100.00"), D("0.5556"))
    # Days from the item's first listing to the sale: i1 10 days, i3 20 days -> 15; i2 4; i3 in shop 21.
    assert [r["average_days_to_sell"] for r in rows] == [D("4.0"), D("15.0"), D("21.0")]


def test_channel_filter_keeps_one_channel(shop, staff):
    assert [r["channel"] for r in a.sales_by_channel(user=staff, f=F(channel="reverb"))] == ["reverb"]
    assert [r["channel"] for r in a.sales_by_channel(user=staff, f=F(channel="manual"))] == ["manual"]
    assert a.sales_by_channel(user=staff, f=F(channel="ebay")) == []


def test_period_filter_takes_whole_days_both_ends_included(shop, staff):
    today = timezone.localdate()
    two_days_ago = (today - dt.timedelta(days=2)).isoformat()
    rows = a.sales_by_channel(user=staff, f=F(start=two_days_ago, end=two_days_ago))
    assert [(r["channel"], r["units"]) for r in rows] == [("reverb", 3)]
    sixty = a.sales_by_channel(user=staff, f=F(period="90d"))
    assert {r["channel"]: r["units"] for r in sixty}["reverb"] == 5  # the order 60 days ago counts now


def test_sales_over_time_fills_every_day_and_adds_up(shop, staff):
    rows = a.sales_over_time(user=staff, f=F(period="7d"))
    assert len(rows) == 7
    assert [r["bucket"] for r in rows][-1] == timezone.localdate().isoformat()
    assert sum(r["revenue"] for r in rows) == D("3280.00")
    assert sum(r["units"] for r in rows) == 7
    assert sum(r["orders"] for r in rows) == 4
    assert a.analytics_filter_parse({"period": "365d"}).bucket == "month"


def test_top_brands_categories_and_items(shop, staff):
    brands = a.top_sellers(user=staff, f=F(), by="brand")
    assert [(r["rank"], r["name"], r["units"], r["revenue"]) for r in brands] == [
        (1, "Gibson", 1, D("1800.00")),
        (2, "Fender", 1, D("1000.00")),
        (3, "Boss", 5, D("480.00")),
    ]
    categories = a.top_sellers(user=staff, f=F(), by="category")
    assert [(r["name"], r["orders"], r["revenue"]) for r in categories] == [
        ("Electric Guitars", 2, D("2800.00")),
        ("Effects", 2, D("480.00")),
    ]
    items = a.top_sellers(user=staff, f=F(), by="item")
    assert [r["item_id"] for r in items] == [shop.items["i2"].pk, shop.items["i1"].pk, shop.items["i3"].pk]
    assert items[2]["margin"] == D("280.00")  # 480 - 5 x 40
    with pytest.raises(ValidationError):
        a.top_sellers(user=staff, f=F(), by="colour")


def test_sell_through_per_channel(shop, staff):
    rows = {r["channel"]: r for r in a.sell_through(user=staff, f=F())}
    assert (rows["reverb"]["units_sold"], rows["reverb"]["units_for_sale"]) == (4, 5)
    assert rows["reverb"]["sell_through_rate"] == D("0.4444")
    assert rows["shopify"]["sell_through_rate"] == D("0.1667")
    assert rows["manual"]["sell_through_rate"] == D("0.2857")
    assert (rows["all"]["units_sold"], rows["all"]["sell_through_rate"]) == (7, D("0.5833"))
    assert [r["channel"] for r in a.sell_through(user=staff, f=F(channel="shopify"))] == ["shopify"]


def test_stock_value_by_state_and_by_shop(shop, staff):
    states = {r["state"]: r for r in a.stock_by_state(user=staff, f=F())}
    assert (states["active"]["items"], states["active"]["units"], states["active"]["value"]) == (1, 5, D("500.00"))
    assert states["active"]["cost_value"] == D("200.00")
    assert (states["draft"]["value"], states["draft"]["cost_value"]) == (D("300.00"), D("100.00"))
    assert (states["sold"]["items"], states["sold"]["units"]) == (2, 0)
    on_reverb = {r["state"]: r["items"] for r in a.stock_by_state(user=staff, f=F(channel="reverb"))}
    assert on_reverb["active"] == 1 and on_reverb["draft"] == 0
    shops = a.stock_by_connection(user=staff, f=F())
    assert [(r["shop"], r["listings"], r["units"], r["value"], r["cost_value"]) for r in shops] == [
        ("Reverb main", 1, 5, D("550.00"), D("200.00")),  # its price override, 110
        ("Shopify store", 1, 5, D("500.00"), D("200.00")),
    ]


def test_platform_distribution(shop, staff):
    rows = a.platform_distribution(user=staff, f=F())
    assert [(r["shop"], r["live"], r["share"], r["pending"], r["in_error"]) for r in rows] == [
        ("Reverb main", 1, D("0.5000"), 1, 0),
        ("Shopify store", 1, D("0.5000"), 0, 1),
    ]


def test_orders_by_status(shop, staff):
    rows = a.orders_by_status(user=staff, f=F())
    assert [(r["status"], r["orders"], r["total"], r["shipped"], r["double_sale_open"]) for r in rows] == [
        ("open", 1, D("180.00"), 0, 0),
        ("completed", 4, D("4150.00"), 1, 1),
        ("cancelled", 1, D("100.00"), 0, 0),
    ]


def test_sync_health_per_connection(shop, staff):
    reverb, shopify = a.sync_health(user=staff, f=F())
    assert (reverb["shop"], reverb["pushes"], reverb["pushes_failed"], reverb["push_success_rate"]) == (
        "Reverb main",
        4,
        1,
        D("0.7500"),
    )
    assert (reverb["orders_recorded"], reverb["orders_by_pull"], reverb["webhook_share"]) == (4, 1, D("0.7500"))
    assert reverb["last_successful_pull"] == shop.good_pull_at
    assert (reverb["listings_in_error"], reverb["open_alerts"]) == (0, 1)
    assert (reverb["ends_after_sale"], reverb["end_seconds_mean"]) == (1, D("90.0"))
    assert (shopify["push_success_rate"], shopify["webhook_share"], shopify["listings_in_error"]) == (
        D("1.0000"),
        D("1.0000"),
        1,
    )
    assert (shopify["end_seconds_mean"], shopify["last_successful_pull"]) == (D("30.0"), None)


@pytest.mark.postgres
def test_sale_to_ended_everywhere_mean_and_p95(shop, staff):
    figures = a.sale_end_everywhere(user=staff, f=F())
    # 30 s and 90 s: mean 60, p95 by linear interpolation 30 + 0.95 x 60 = 87.
    assert figures == {"sales": 2, "end_seconds_mean": D("60.0"), "end_seconds_p95": D("87.0")}
    assert a.sync_health(user=staff, f=F())[0]["end_seconds_p95"] == D("90.0")


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"period": "2w"}, "period", "use one of 7d, 30d, 90d, 365d"),
        ({"start": "2026-13-01", "end": "2026-12-31"}, "start", "write it as YYYY-MM-DD"),
        ({"start": "2026-02-01"}, "end", "end is required with start"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "end", "is before start"),
        ({"start": "2000-01-01", "end": "2026-01-01"}, "end", "at most"),
        ({"period": "7d", "start": "2026-01-01", "end": "2026-01-02"}, "period", "not both"),
        ({"channel": "myspace"}, "channel", "use one of shopify, reverb"),
        ({"bucket": "hour"}, "bucket", "use day, week or month"),
    ],
)
def test_bad_filters_say_what_is_accepted(params, field, words):
    with pytest.raises(ValidationError) as refused:
        a.analytics_filter_parse(params)
    assert words in " ".join(refused.value.message_dict[field])


def test_every_registered_channel_is_a_valid_filter(settings):
    for name in settings.CHANNELS:
        assert a.analytics_filter_parse({"channel": name}).channel == name


# --- Tenant isolation ---------------------------------------------------------------------


FIGURES = {
    "sales_by_channel": lambda u, f: a.sales_by_channel(user=u, f=f),
    "sales_over_time": lambda u, f: a.sales_over_time(user=u, f=f),
    "top_brands": lambda u, f: a.top_sellers(user=u, f=f, by="brand"),
    "top_items": lambda u, f: a.top_sellers(user=u, f=f, by="item"),
    "sell_through": lambda u, f: a.sell_through(user=u, f=f),
    "stock_by_state": lambda u, f: a.stock_by_state(user=u, f=f),
    "stock_by_connection": lambda u, f: a.stock_by_connection(user=u, f=f),
    "platforms": lambda u, f: a.platform_distribution(user=u, f=f),
    "orders_by_status": lambda u, f: a.orders_by_status(user=u, f=f),
    "sync_health": lambda u, f: a.sync_health(user=u, f=f),
    "sale_end_everywhere": lambda u, f: a.sale_end_everywhere(user=u, f=f),
}


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_is_scoped_to_the_users_account(figure, account, other_account, staff, other_staff):
    build_shop(account)
    alone = FIGURES[figure](staff, F())
    build_shop(other_account, scale=7)
    assert FIGURES[figure](staff, F()) == alone  # the rival's shop changes nothing in ours
    theirs = FIGURES[figure](other_staff, F())
    own_ids = set(ChannelConnection.objects.filter(account=account).values_list("pk", flat=True))
    assert not {row.get("connection_id") for row in theirs if isinstance(row, dict)} & own_ids
