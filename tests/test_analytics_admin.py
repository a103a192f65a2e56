"""The analytics section of the admin index: hand-computed figures, links that count what the
figure counts, the plan gate, bad filters, tenant isolation and a query count that does not grow."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import ChannelConnection, Order
from tests.test_analytics import build_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(admin_client_for, staff, account, other_account):
    build_shop(other_account, scale=7)
    build_shop(account)
    client = admin_client_for(staff)
    return client, client.get("/admin/").content.decode()


def _section(html: str, table_id: str) -> str:
    return html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]


def _links(fragment: str) -> list[str]:
    return [unescape(href) for href in re.findall(r'href="([^"]+)"', fragment)]


def test_the_index_shows_the_sales_figures_computed_by_hand(page):
    _client, html = page
    sales = _section(html, "analytics-sales")
    assert [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", sales)][:7] == [
        "Shopify",
        "1",
        "1",
        "1,800.00\xa0USD",
        "1,800.00\xa0USD",
        "\N{EN DASH} (no costs)",
        "4.0",
    ]
    assert "1,300.00\xa0USD" in sales and "580.00\xa0USD (44.6\xa0%)" in sales
    assert '<span class="n">3,280.00\xa0USD</span>Revenue' in html
    assert '<span class="n">58.3\xa0%</span>Sell-through' in html
    assert '<svg class="columns"' in html and html.count('class="bar"') >= 30  # one column per day + bars


def test_each_sales_number_links_to_the_orders_it_counts(page):
    client, html = page
    reverb_row = next(row for row in _section(html, "analytics-sales").split("<tr>") if "Reverb" in row)
    url = _links(reverb_row)[0]
    assert "progress=sales" in url and "channel__exact=reverb" in url
    listed = client.get(url)
    assert listed.status_code == 200
    text = listed.content.decode()
    shown = set(re.findall(r"reverb #(R\d)", text))
    assert shown == {"R1", "R3"}  # not the cancelled R5, not R0 from before the period


def test_other_figures_link_to_their_filtered_lists(page, account):
    client, html = page
    reverb = ChannelConnection.objects.get(account=account, channel="reverb")
    platforms = _links(_section(html, "analytics-platforms"))
    assert f"/admin/inventory/channellisting/?state=live&shop={reverb.pk}" in platforms
    sync = _links(_section(html, "analytics-sync"))
    assert any(u.startswith("/admin/inventory/syncrun/?shop=") and "kind__exact=push" in u for u in sync)
    assert f"/admin/inventory/alert/?state=open&connection__id__exact={reverb.pk}" in sync
    stock = _links(_section(html, "analytics-stock"))
    assert "/admin/inventory/item/?state__exact=active" in stock
    for url in platforms + sync + stock + _links(_section(html, "analytics-orders")):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "?e=1" not in response.get("Location", ""), url  # the admin accepted every lookup


def test_channel_and_period_filters_apply(admin_client_for, staff, account):
    build_shop(account)
    html = admin_client_for(staff).get("/admin/?channel=manual&period=7d").content.decode()
    sales = _section(html, "analytics-sales")
    assert "In the shop" in sales and "Reverb" not in sales
    assert '<option value="manual" selected>' in html
    assert '<a href="/admin/?channel=manual&amp;period=7d" class="current">Last 7 days</a>' in html


def test_a_bad_filter_says_what_is_wrong_and_shows_the_default_period(admin_client_for, staff, account):
    build_shop(account)
    html = admin_client_for(staff).get("/admin/?channel=myspace").content.decode()
    assert '<p class="errornote">channel: Unknown channel &#x27;myspace&#x27;: use one of' in html
    assert "Revenue per day" in html


def test_a_rivals_figures_never_show(page):
    _client, html = page
    assert "12,600.00" not in html  # the rival's Shopify sale, 1,800 x 7
    assert "Reverb main" in html and html.count("Reverb main") == html.count("Reverb main")


def test_without_the_plans_analytics_the_index_says_which_plans_have_it(admin_client_for, staff, account, settings):
    settings.BILLING_DEFAULT_PLAN = "free"
    build_shop(account)
    html = admin_client_for(staff).get("/admin/").content.decode()
    assert "Sales analytics is not in your plan: Pro and Business include it." in html
    assert 'id="analytics-sales"' not in html
    assert 'id="dashboard"' in html  # what needs attention is on every plan


def test_the_index_query_count_does_not_grow_with_the_data(admin_client_for, staff, account):
    build_shop(account)
    client = admin_client_for(staff)
    client.get("/admin/")
    with CaptureQueriesContext(connection) as small:
        client.get("/admin/")
    more = ChannelConnection.objects.create(account=account, channel="etsy", name="Etsy too")
    order = Order.objects.filter(account=account).first()
    Order.objects.create(account=account, channel="etsy", connection=more, external_id="E1", placed_at=order.placed_at)
    with CaptureQueriesContext(connection) as bigger:
        client.get("/admin/")
    assert len(bigger) == len(small)
