"""Analytics summaries (services/analytics/summary.py): a stored figure is the live figure as of
when it was computed, is served until it is refreshed (by beat, on demand, or once older than
the maximum age) with its age on the dashboard and in the API, and belongs to one account."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import staff_user_create
from inventory.models import AnalyticsSummary
from inventory.services import analytics as a
from inventory.services.analytics import summary
from inventory.tasks import analytics_summaries_refresh_task
from tests.test_analytics import _order, build_shop

pytestmark = pytest.mark.django_db
NAMES = list(a.FIGURES)


@pytest.fixture
def shop(account, other_account):
    build_shop(other_account, scale=7)
    return build_shop(account)


def F(**params) -> a.AnalyticsFilter:
    return a.analytics_filter_parse(params)


def live(user, f) -> dict:
    return {name: a.FIGURES[name](user, f) for name in NAMES}


def a_new_sale(shop):
    """Three more units of the Boss pedal on Reverb today: revenue, orders and units all move."""
    i3 = shop.items["i3"]
    _order(i3.account, shop.reverb, "R9", timezone.now() - dt.timedelta(hours=1), [(i3, 3, Decimal("100"))])


def test_stored_figures_are_the_live_figures_with_their_types(shop, staff):
    f = F(period="30d")
    first = a.figures_get(user=staff, f=f, names=NAMES, period="30d")
    assert first.summarised and first.figures == live(staff, f)
    assert AnalyticsSummary.objects.filter(account=staff.account).count() == len(NAMES)
    again = a.figures_get(user=staff, f=f, names=NAMES, period="30d")
    assert again.figures == live(staff, f)  # read back from the rows, decimals and dates as they were
    assert again.as_of == first.as_of
    sales = again.figures["sales_by_channel"][0]
    assert isinstance(sales["revenue"], Decimal) and isinstance(sales["average_days_to_sell"], Decimal)
    assert isinstance(again.figures["sync_health"][0]["last_successful_pull"], dt.datetime)


def test_pack_and_unpack_keep_every_value():
    value = {
        "d": Decimal("-12.50"),
        "day": dt.date(2026, 12, 4),
        "at": timezone.now(),
        "took": dt.timedelta(seconds=90.5),
        "rows": [{"n": 3, "s": "x", "none": None, "share": 0.5}],
    }
    assert summary.unpack(summary.pack(value)) == value


def test_a_stored_figure_is_served_until_refreshed(shop, staff):
    f = F(period="30d")
    before = a.figures_get(user=staff, f=f, names=["sales_by_channel"], period="30d")
    a_new_sale(shop)
    stale = a.figures_get(user=staff, f=f, names=["sales_by_channel"], period="30d")
    assert stale.figures == before.figures != {"sales_by_channel": a.sales_by_channel(user=staff, f=f)}
    assert stale.as_of == before.as_of
    fresh = a.figures_get(user=staff, f=f, names=["sales_by_channel"], period="30d", fresh=True)
    assert fresh.figures["sales_by_channel"] == a.sales_by_channel(user=staff, f=f)
    assert fresh.as_of > before.as_of


def test_a_figure_older_than_the_maximum_age_is_recomputed(shop, staff, settings):
    settings.ANALYTICS_SUMMARY_MAX_AGE = 600
    f = F(period="30d")
    a.figures_get(user=staff, f=f, names=["sales_by_channel"], period="30d")
    a_new_sale(shop)
    AnalyticsSummary.objects.update(computed_at=timezone.now() - dt.timedelta(seconds=601))
    answer = a.figures_get(user=staff, f=f, names=["sales_by_channel"], period="30d")
    assert answer.figures["sales_by_channel"] == a.sales_by_channel(user=staff, f=f)
    assert answer.age_seconds < 5


def test_beat_refreshes_what_was_read_to_the_live_figures(shop, staff):
    f = F(period="30d")
    a.figures_get(user=staff, f=f, names=NAMES, period="30d")
    a_new_sale(shop)
    assert summary.summaries_refresh() == 0  # computed a moment ago: not redone
    assert summary.summaries_refresh(older_than=dt.timedelta(0)) == len(NAMES)
    stored = a.figures_get(user=staff, f=f, names=NAMES, period="30d")
    assert stored.figures == live(staff, f)
    reverb = next(r for r in stored.figures["sales_by_channel"] if r["channel"] == "reverb")
    assert reverb["orders"] == 3 and reverb["units"] == 7  # R1, R3 and the new R9


def test_the_beat_task_refreshes_too(shop, staff):
    a.figures_get(user=staff, f=F(), names=["orders_by_status"], period="30d")
    AnalyticsSummary.objects.update(computed_at=timezone.now() - dt.timedelta(minutes=5))
    assert analytics_summaries_refresh_task() == 1


def test_beat_moves_a_preset_period_to_today_and_keeps_dates(shop, staff):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    old_preset = a.AnalyticsFilter(start_date=yesterday - dt.timedelta(days=29), end_date=yesterday, bucket="day")
    dates = a.AnalyticsFilter(start_date=yesterday - dt.timedelta(days=9), end_date=yesterday, bucket="day")
    a.figures_get(user=staff, f=old_preset, names=["sales_over_time"], period="30d")
    a.figures_get(user=staff, f=dates, names=["sales_over_time"], period="")
    summary.summaries_refresh(older_than=dt.timedelta(0))
    keys = set(AnalyticsSummary.objects.values_list("filter_key", "period"))
    assert keys == {(summary.filter_key(F(period="30d")), "30d"), (summary.filter_key(dates), "")}
    today = a.figures_get(user=staff, f=F(period="30d"), names=["sales_over_time"], period="30d")
    assert today.figures["sales_over_time"] == a.sales_over_time(user=staff, f=F(period="30d"))


def test_beat_forgets_what_nobody_read(shop, staff):
    a.figures_get(user=staff, f=F(period="7d"), names=["orders_by_status"], period="7d")
    a.figures_get(user=staff, f=F(period="90d"), names=["orders_by_status"], period="90d")
    now = timezone.now()
    AnalyticsSummary.objects.update(computed_at=now - dt.timedelta(hours=1))
    AnalyticsSummary.objects.filter(period="7d").update(read_at=now - dt.timedelta(days=3))
    AnalyticsSummary.objects.filter(period="90d").update(read_at=now - dt.timedelta(days=1, minutes=1))
    assert summary.summaries_refresh() == 0  # neither was read in the last day
    assert list(AnalyticsSummary.objects.values_list("period", flat=True)) == ["90d"]  # 7d: unread for 2 days


def test_summaries_are_per_account(shop, staff, other_staff, other_account):
    f = F(period="30d")
    mine = a.figures_get(user=staff, f=f, names=NAMES, period="30d")
    theirs = a.figures_get(user=other_staff, f=f, names=NAMES, period="30d")
    assert mine.figures == live(staff, f) != theirs.figures
    assert theirs.figures == live(other_staff, f)
    assert AnalyticsSummary.objects.filter(account=other_account).count() == len(NAMES)
    summary.summaries_refresh(older_than=dt.timedelta(0))  # beat computes each for its own account
    refreshed = a.figures_get(user=staff, f=f, names=NAMES)
    assert refreshed.figures == live(staff, f)
    assert a.figures_get(user=other_staff, f=f, names=NAMES).figures == live(other_staff, f)
    colleague = staff_user_create(account=staff.account, username="bob", password="correct-horse-battery-9")
    assert a.figures_get(user=colleague, f=f, names=NAMES).as_of == refreshed.as_of  # one per account


def test_a_superuser_is_answered_live_and_nothing_is_stored(shop, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "correct-horse-battery-9")
    answer = a.figures_get(user=root, f=F(), names=NAMES)
    assert not answer.summarised and answer.figures == live(root, F())
    assert not AnalyticsSummary.objects.exists()


def test_max_age_zero_switches_summaries_off(shop, staff, settings):
    settings.ANALYTICS_SUMMARY_MAX_AGE = 0
    answer = a.figures_get(user=staff, f=F(), names=NAMES)
    assert not answer.summarised and not AnalyticsSummary.objects.exists()


# --- Shown on the dashboard and in the API ------------------------------------------------


def test_the_dashboard_says_how_old_its_figures_are_and_refreshes_on_demand(shop, staff, admin_client_for):
    client = admin_client_for(staff)
    html = client.get("/admin/").content.decode()
    assert '<span class="n">3,280.00\xa0USD</span>Revenue' in html
    computed = timezone.localtime(AnalyticsSummary.objects.get(figure="sales_by_channel").computed_at)
    assert f"Figures as of {computed:%H:%M} (just now)" in html
    assert 'href="/admin/?fresh=1">Refresh now</a>' in html
    a_new_sale(shop)
    AnalyticsSummary.objects.update(computed_at=timezone.now() - dt.timedelta(minutes=7))
    html = client.get("/admin/").content.decode()
    assert '<span class="n">3,280.00\xa0USD</span>Revenue' in html and "(7 min ago)" in html
    html = client.get("/admin/?period=30d&fresh=1").content.decode()
    assert '<span class="n">3,580.00\xa0USD</span>Revenue' in html and "(just now)" in html
    assert 'href="/admin/?period=30d&amp;fresh=1">Refresh now</a>' in html


def test_the_api_answers_the_age_of_a_figure_and_recomputes_with_fresh(shop, api):
    first = api.get("/api/v1/analytics/sales/?period=30d")
    assert first.status_code == 200 and first.json()["summarised"] is True
    as_of = first.json()["as_of"]
    assert first["X-Analytics-As-Of"] == AnalyticsSummary.objects.get().computed_at.isoformat()
    a_new_sale(shop)
    stale = api.get("/api/v1/analytics/sales/?period=30d").json()
    assert stale["as_of"] == as_of and stale["rows"] == first.json()["rows"]
    fresh = api.get("/api/v1/analytics/sales/?period=30d&fresh=1").json()
    reverb = next(r for r in fresh["rows"] if r["channel"] == "reverb")
    assert reverb["orders"] == 3 and fresh["as_of"] > as_of
    csv = api.get("/api/v1/analytics/sales/?period=30d&format=csv")
    assert csv.status_code == 200 and csv["X-Analytics-As-Of"] == fresh["as_of"].replace("Z", "+00:00")


def test_a_bad_fresh_is_a_400_that_says_what_to_send(shop, api):
    response = api.get("/api/v1/analytics/sales/?fresh=maybe")
    assert response.status_code == 400
    assert response.json() == {"fresh": ["'maybe' is not a yes/no: use fresh=1 to recompute the figure now."]}


def test_the_api_keeps_each_accounts_figures_apart(shop, api, other_api):
    mine = api.get("/api/v1/analytics/stock-by-shop/").json()
    theirs = other_api.get("/api/v1/analytics/stock-by-shop/").json()
    assert mine["rows"] != theirs["rows"]
    assert {r["value"] for r in theirs["rows"]} == {"3850.00", "3500.00"}  # 5 pedals at the rival's 7x prices
    assert api.get("/api/v1/analytics/stock-by-shop/").json()["rows"] == mine["rows"]
