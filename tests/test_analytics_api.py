"""/api/v1/analytics/...: JSON and CSV downloads, tenant isolation, plan gating, bad filters."""

from __future__ import annotations

import csv
import io

import pytest

from billing.models import Plan
from billing.services import plan_assign
from inventory.api.analytics import csv_safe
from inventory.models import ChannelConnection, Item
from tests.test_analytics import build_shop

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "sales",
    "sales-over-time",
    "top",
    "sell-through",
    "stock",
    "stock-by-shop",
    "platforms",
    "orders",
    "sync-health",
    "ended-everywhere",
]


@pytest.fixture
def shops(account, other_account):
    build_shop(other_account, scale=7)
    return build_shop(account)


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_sales_as_json(api, shops):
    body = api.get("/api/v1/analytics/sales/?period=30d").json()
    assert body["filters"]["channel"] == ""
    assert [(r["channel"], r["units"], r["revenue"], r["margin"]) for r in body["rows"]] == [
        ("shopify", 1, "1800.00", None),
        ("reverb", 4, "1300.00", "580.00"),
        ("manual", 2, "180.00", "100.00"),
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_reads_only_the_users_account(endpoint, api, other_api, account, other_account):
    build_shop(account)
    ours = api.get(f"/api/v1/analytics/{endpoint}/").json()["rows"]
    build_shop(other_account, scale=7)
    assert api.get(f"/api/v1/analytics/{endpoint}/").json()["rows"] == ours
    theirs = other_api.get(f"/api/v1/analytics/{endpoint}/").json()["rows"]
    own = set(ChannelConnection.objects.filter(account=account).values_list("pk", flat=True))
    assert not {row.get("connection_id") for row in theirs} & own
    own_items = set(Item.objects.filter(account=account).values_list("pk", flat=True))
    assert not {row.get("item_id") for row in theirs} & own_items


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_downloads_as_csv_with_the_json_rows(endpoint, api, shops):
    response = api.get(f"/api/v1/analytics/{endpoint}/?format=csv&channel=reverb")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith(f'attachment; filename="{endpoint}')
    assert response["Content-Disposition"].endswith('-reverb.csv"')
    rows = _csv(response)
    body = api.get(f"/api/v1/analytics/{endpoint}/?channel=reverb").json()["rows"]
    assert len(rows) == 1 + len(body)
    for line, row in zip(rows[1:], body, strict=True):
        as_text = {k: "" if v is None else str(v) for k, v in row.items()}
        assert {k: v for k, v in dict(zip(rows[0], line, strict=True)).items() if k in as_text} == as_text


def test_csv_download_of_another_account_holds_none_of_ours(api, other_api, shops):
    ours = _csv(api.get("/api/v1/analytics/top/?by=item&format=csv"))
    theirs = _csv(other_api.get("/api/v1/analytics/top/?by=item&format=csv"))
    assert ours[0] == theirs[0]
    skus = {line[ours[0].index("sku")] for line in ours[1:]}
    assert skus and not skus & {line[theirs[0].index("sku")] for line in theirs[1:]}


def test_json_download_is_an_attachment(api, shops):
    response = api.get("/api/v1/analytics/orders/?format=json&period=7d")
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')
    assert response.json()["rows"]


def test_csv_cells_cannot_run_as_formulas(api, account, shops):
    Item.objects.filter(account=account, brand="Gibson").update(brand='=HYPERLINK("http://evil.example","x")')
    Item.objects.filter(account=account, brand="Fender").update(brand="@SUM(A1)")
    rows = _csv(api.get("/api/v1/analytics/top/?by=brand&format=csv"))
    names = [line[rows[0].index("name")] for line in rows[1:]]
    assert names == ['\'=HYPERLINK("http://evil.example","x")', "'@SUM(A1)", "Boss"]
    assert [csv_safe(v) for v in ("+1+2", "-2+3", "-12.50", "\tx", "plain")] == [
        "'+1+2",
        "'-2+3",
        "-12.50",
        "'\tx",
        "plain",
    ]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_analytics_is_refused_with_402_on_a_plan_without_it(endpoint, api, account, settings):
    settings.BILLING_DEFAULT_PLAN = "free"
    response = api.get(f"/api/v1/analytics/{endpoint}/")
    assert response.status_code == 402
    body = response.json()
    assert (body["code"], body["feature"], body["plan"], body["upgrade_plan"]) == (
        "feature_not_in_plan",
        "analytics",
        "free",
        "pro",
    )
    assert (
        body["detail"] == "Your Free plan does not include analytics. Pro does (29.00 USD/month): upgrade in Billing."
    )
    plan_assign(account=account, plan=Plan.objects.get(code="pro"))
    assert api.get(f"/api/v1/analytics/{endpoint}/").status_code == 200


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("period=3w", "period", "use one of 7d, 30d"),
        ("start=yesterday&end=2026-01-01", "start", "YYYY-MM-DD"),
        ("start=2026-02-01&end=2026-01-01", "end", "before start"),
        ("channel=myspace", "channel", "Unknown channel 'myspace'"),
        ("chanel=reverb", "unknown", "Unknown parameter(s) chanel"),
        ("by=colour", "by", "use brand, category or item"),
        ("format=xlsx", "format", "format=json or format=csv"),
    ],
)
def test_bad_filters_are_a_400_that_says_what_to_send(api, query, field, words):
    response = api.get(f"/api/v1/analytics/top/?{query}")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])


def test_a_bad_filter_in_a_csv_download_is_the_documented_json_400_naming_the_field(api):
    response = api.get("/api/v1/analytics/sales/?format=csv&channel=myspace")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "channel" in response.json()


def test_the_schema_documents_every_endpoint_with_json_and_csv(api):
    schema = api.get("/api/schema/?format=json").json()
    for endpoint in ENDPOINTS:
        get = schema["paths"][f"/api/v1/analytics/{endpoint}/"]["get"]
        assert set(get["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        assert {"period", "start", "end", "channel", "format"} <= {p["name"] for p in get["parameters"]}
        assert {"400", "402"} <= set(get["responses"])
