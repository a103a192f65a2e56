"""The billing API, API access and the per-account request rate, and tenancy."""

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from billing.models import Plan, Subscription
from tests.test_billing_fixtures import *  # noqa: F403 (fixtures)
from tests.test_billing_fixtures import activate_items, subscribe

pytestmark = pytest.mark.django_db


def test_overview_shows_plan_status_and_usage_against_limits(api, account):
    activate_items(account, 3)

    body = api.get("/api/v1/billing/").json()

    assert (body["plan"]["code"], body["subscribed_plan"]["code"], body["status"]) == ("free", "free", "active")
    assert body["restriction"] == ""
    listings = next(row for row in body["limits"] if row["limit"] == "active_listings")
    assert (listings["usage"], listings["allowed"], listings["percent"], listings["over"]) == (3, 25, 12, False)
    staff = next(row for row in body["limits"] if row["limit"] == "staff_users")
    assert (staff["usage"], staff["allowed"]) == (1, 2)
    assert body["api_requests_per_minute"] == 30
    assert set(body["counters"]) == {"api_requests", "orders_imported", "sync_runs", "pdfs_generated"}


def test_plans_on_sale_cheapest_first_without_the_internal_plan(api):
    plans = api.get("/api/v1/billing/plans/").json()

    assert [p["code"] for p in plans] == ["free", "pro", "business"]
    business = plans[2]
    assert (business["max_active_listings"], business["max_channels"], business["monthly_price"]) == (
        2000,
        None,
        "79.00",
    )
    assert "api_access" in business["features"] and "bulk_operations" not in plans[0]["features"]
    assert business["overage_price_per_listing_day"] == "0.0100"


def test_checkout_and_portal_answer_stripe_urls(api, account, stripe_sandbox):
    response = api.post(
        "/api/v1/billing/checkout/",
        {"plan": "pro", "success_url": "https://shop.test/ok", "cancel_url": "https://shop.test/no"},
    )

    assert response.status_code == 200
    assert response.json()["url"].startswith(f"{stripe_sandbox.url}/c/pay/cs_test_")
    session = next(iter(stripe_sandbox.sessions.values()))
    assert (session["success_url"], session["cancel_url"]) == ("https://shop.test/ok", "https://shop.test/no")

    portal = api.post("/api/v1/billing/portal/", {})
    assert portal.status_code == 200
    assert portal.json()["url"].startswith(f"{stripe_sandbox.url}/p/session/bps_")
    # Without explicit URLs Stripe sends the buyer back to the admin billing page.
    assert next(iter(stripe_sandbox.portal_sessions.values()))["return_url"].endswith(
        "/admin/billing/subscription/account/"
    )


def test_bad_input_says_what_to_send(api, stripe_sandbox):
    assert api.post("/api/v1/billing/checkout/", {"plan": "admin"}).json() == {
        "plan": ["Object with code=admin does not exist."]
    }
    assert api.post("/api/v1/billing/checkout/", {"plan": "free"}).status_code == 409
    change = api.post("/api/v1/billing/change-plan/", {"plan": "business"})
    assert change.status_code == 409
    assert change.json()["action"] == "checkout"


def test_change_plan_and_cancel_through_the_api(api, account, staff, stripe_sandbox):
    subscribe(stripe_sandbox, account, "pro")

    changed = api.post("/api/v1/billing/change-plan/", {"plan": "business"})
    assert changed.status_code == 200
    assert changed.json()["plan"]["code"] == "business"
    assert changed.json()["warnings"] == []

    cancelled = api.post("/api/v1/billing/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["cancel_at_period_end"] is True
    assert cancelled.json()["plan"]["code"] == "business"

    invoices = api.get("/api/v1/billing/invoices/").json()
    assert [i["status"] for i in invoices] == ["paid", "paid"]  # the first payment and the upgrade's proration


def test_stripe_down_is_a_502_that_says_nothing_changed(api, account, stripe_sandbox):
    stripe_sandbox.fail_next.append((500, "boom"))

    response = api.post("/api/v1/billing/checkout/", {"plan": "pro"})

    assert response.status_code == 502
    assert response.json()["code"] == "stripe_unavailable"
    assert "Nothing was changed; try again in a minute." in response.json()["detail"]


def test_staff_without_the_billing_permission_cannot_change_it(api, staff, stripe_sandbox):
    staff.groups.clear()
    staff.user_permissions.remove(*Permission.objects.filter(codename="manage_billing"))
    staff = User.objects.get(pk=staff.pk)  # fresh permission cache
    client = APIClient()
    client.force_authenticate(staff)

    assert client.get("/api/v1/billing/").status_code == 200
    refused = client.post("/api/v1/billing/checkout/", {"plan": "pro"})
    assert refused.status_code == 403
    assert stripe_sandbox.requests == []


# --- Tenancy ---------------------------------------------------------------------------------


def test_a_tenant_cannot_see_or_change_another_accounts_billing(api, other_api, account, other_account, stripe_sandbox):
    subscribe(stripe_sandbox, account, "pro")
    activate_items(account, 7)

    theirs = other_api.get("/api/v1/billing/").json()
    assert theirs["subscribed_plan"]["code"] == "free"
    assert next(r for r in theirs["limits"] if r["limit"] == "active_listings")["usage"] == 0
    assert other_api.get("/api/v1/billing/invoices/").json() == []

    # Their portal and cancel act on their own account only: there is nothing to open or cancel.
    assert other_api.post("/api/v1/billing/portal/", {}).status_code == 409
    assert other_api.post("/api/v1/billing/cancel/").status_code == 409
    mine = Subscription.objects.get(account=account)
    assert (mine.plan.code, mine.status, mine.cancel_at_period_end) == ("pro", "active", False)
    assert len(stripe_sandbox.portal_sessions) == 0


def test_platform_superusers_have_no_account_to_bill(db):
    root = User.objects.create_superuser("root", "root@example.com", "x-very-long-password-1")
    client = APIClient()
    client.force_authenticate(root)

    response = client.get("/api/v1/billing/")

    assert response.status_code == 400
    assert "Platform superusers have no account" in response.json()["account"][0]


# --- API access and rate ------------------------------------------------------------------------


def _edit_free_plan(**fields):
    """Platform staff edit the plan; cached account states pick it up within a minute, here at once."""
    Plan.objects.filter(code="free").update(**fields)
    cache.clear()


def test_a_plan_without_api_access_gets_402_but_can_still_see_billing_and_upgrade(api, stripe_sandbox):
    _edit_free_plan(api_access=False)

    refused = api.get("/api/v1/items/")
    assert refused.status_code == 402
    assert refused.json()["code"] == "feature_not_in_plan"
    assert refused.json()["feature"] == "api_access"
    assert refused.json()["detail"] == (
        "Your Free plan does not include REST API access. Pro does (29.00 USD/month): upgrade in Billing."
    )
    assert api.get("/api/v1/billing/").status_code == 200
    assert api.post("/api/v1/billing/checkout/", {"plan": "pro"}).status_code == 200


def test_requests_per_minute_are_limited_per_account(api, other_api, monkeypatch):
    monkeypatch.setattr("billing.api.throttles._clock", lambda: 1_800_000_010.0)  # 50 s left in the minute
    _edit_free_plan(api_requests_per_minute=3)

    answers = [api.get("/api/v1/items/") for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    body = answers[-1].json()
    assert body["code"] == "rate_limit_reached"
    assert (body["allowed"], body["plan"], body["upgrade_plan"]) == (3, "free", "pro")
    assert body["detail"].startswith("Your Free plan allows 3 API requests per minute and this minute's are used up")
    assert answers[-1]["Retry-After"] == "51"
    assert other_api.get("/api/v1/items/").status_code == 200  # another account has its own budget


@pytest.mark.redis
def test_the_rate_limit_counts_in_redis_when_configured(api, settings, monkeypatch):
    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("the cache is not Redis here (set REDIS_URL)")
    monkeypatch.setattr("billing.api.throttles._clock", lambda: 1_800_000_010.0)
    _edit_free_plan(api_requests_per_minute=2)

    statuses = [api.get("/api/v1/billing/plans/").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_the_schema_documents_the_billing_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in ["/api/v1/billing/", "/api/v1/billing/checkout/", "/api/v1/billing/portal/", "/api/v1/billing/plans/"]:
        assert path in schema["paths"]


def test_without_stripe_keys_upgrades_say_what_to_configure_and_limits_still_apply(api, account, client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = api.post("/api/v1/billing/checkout/", {"plan": "pro"})

    assert response.status_code == 503
    assert response.json()["detail"].startswith("Stripe is not configured: set STRIPE_SECRET_KEY")
    webhook = client.post("/billing/stripe/webhook/", data="{}", content_type="application/json")
    assert webhook.status_code == 503
    assert api.get("/api/v1/billing/").json()["plan"]["code"] == "free"


def test_an_unknown_default_plan_is_a_configuration_error_that_names_the_choices(settings, db):
    from django.core.exceptions import ImproperlyConfigured

    from billing.selectors import billing_state

    settings.BILLING_DEFAULT_PLAN = "gold"
    with pytest.raises(
        ImproperlyConfigured, match="BILLING_DEFAULT_PLAN='gold' is not a plan code; use one of free, pro"
    ):
        billing_state(1)
