"""The billing page, the payment banner, and the billing tables for platform staff."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from billing.models import Subscription
from billing.selectors import banner_refresh
from tests.test_billing_fixtures import *  # noqa: F403 (fixtures)
from tests.test_billing_fixtures import activate_items, deliver, subscribe

pytestmark = pytest.mark.django_db
PAGE = "/admin/billing/subscription/account/"


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("platform", "platform@example.com", "a-long-platform-password-1")


def test_free_account_page_shows_usage_bars_plans_and_upgrade_buttons(admin_client_for, staff, account):
    activate_items(account, 20)

    response = admin_client_for(staff).get(PAGE)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Billing: Blue Note Guitars" in page
    assert '<div class="usage-row" data-limit="active_listings">' in page
    assert "20 / 25" in page
    assert 'aria-valuenow="80"' in page and 'class="usage-fill high" style="width: 80%"' in page
    assert 'value="Upgrade to Pro"' in page and 'value="Upgrade to Business"' in page
    assert "No invoices yet." in page
    assert "No share of your sales, ever" in page
    assert "Manage payment" not in page  # no payment details yet


def test_upgrade_button_sends_the_seller_to_stripe_checkout(admin_client_for, staff, account, stripe_sandbox):
    response = admin_client_for(staff).post(f"{PAGE}checkout/", {"plan": "pro"})

    assert response.status_code == 302
    assert response["Location"].startswith(f"{stripe_sandbox.url}/c/pay/cs_test_")
    session = next(iter(stripe_sandbox.sessions.values()))
    assert session["success_url"] == f"http://testserver{PAGE}?checkout=done"


def test_paid_account_page_lists_invoices_and_offers_portal_and_cancel(
    admin_client_for, staff, account, stripe_sandbox
):
    subscribe(stripe_sandbox, account, "pro")
    client = admin_client_for(staff)

    page = client.get(PAGE).content.decode()

    assert "SBX-0001" in page and "29.00 USD" in page
    assert 'id="billing-portal"' in page and 'id="billing-cancel"' in page
    assert 'value="Upgrade to Business"' in page
    assert "<strong>your plan</strong>" in page

    portal = client.post(f"{PAGE}portal/")
    assert portal["Location"].startswith(f"{stripe_sandbox.url}/p/session/")
    cancelled = client.post(f"{PAGE}cancel/", follow=True)
    assert "stays until" in cancelled.content.decode()
    assert Subscription.objects.get(account=account).cancel_at_period_end is True


def test_stripe_down_shows_the_page_without_invoices(admin_client_for, staff, account, stripe_sandbox):
    subscribe(stripe_sandbox, account, "pro")
    stripe_sandbox.fail_next.append((500, "down"))

    response = admin_client_for(staff).get(PAGE)

    assert response.status_code == 200
    assert "Invoices are not available right now: Stripe could not list the invoices" in response.content.decode()


def test_payment_banner_during_grace_then_after_on_every_admin_page(admin_client_for, staff, account, stripe_sandbox):
    subscription = subscribe(stripe_sandbox, account, "pro")
    client = admin_client_for(staff)
    assert 'id="billing-banner"' not in client.get("/admin/").content.decode()

    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "customer.subscription.updated",
        stripe_sandbox.subscriptions[subscription.stripe_subscription_id],
    )

    page = client.get("/admin/inventory/item/").content.decode()
    assert 'id="billing-banner"' in page
    assert "Your Pro payment failed on" in page and "Everything keeps working until" in page

    Subscription.objects.filter(pk=subscription.pk).update(past_due_since=timezone.now() - timedelta(days=9))
    banner_refresh(account.pk)  # the periodic roll-up does this
    page = client.get("/admin/").content.decode()
    assert "the grace period ended on" in page
    assert "Sales, ending sold items and conflicts keep working." in page


def test_the_banner_costs_admin_pages_no_query(admin_client_for, staff, account, stripe_sandbox):
    subscription = subscribe(stripe_sandbox, account, "pro")
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "customer.subscription.updated",
        stripe_sandbox.subscriptions[subscription.stripe_subscription_id],
    )
    client = admin_client_for(staff)

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/").content.decode()

    assert 'id="billing-banner"' in page
    assert not [q["sql"] for q in queries if "billing_" in q["sql"]]


def test_staff_cannot_open_another_accounts_billing_page(admin_client_for, staff, other_account):
    client = admin_client_for(staff)

    assert client.get(f"{PAGE}{other_account.pk}/").status_code == 404
    assert client.get(f"{PAGE}{staff.account_id}/").status_code == 200


def test_staff_cannot_browse_the_platform_tables(admin_client_for, staff, other_account, stripe_sandbox):
    subscribe(stripe_sandbox, other_account, "pro")
    client = admin_client_for(staff)

    for url in [
        "/admin/billing/plan/",
        "/admin/billing/stripeevent/",
        "/admin/billing/usageperiod/",
        "/admin/billing/overagereport/",
    ]:
        assert client.get(url).status_code == 403, url
    # The subscriptions list sends shop staff to their own page, never to the list.
    assert client.get("/admin/billing/subscription/")["Location"] == PAGE
    theirs = Subscription.objects.get(account=other_account)
    assert client.get(f"/admin/billing/subscription/{theirs.pk}/change/")["Location"] == PAGE


def test_platform_staff_browse_plans_subscriptions_usage_and_events(
    admin_client_for, superuser, account, other_account, stripe_sandbox
):
    subscribe(stripe_sandbox, account, "pro")
    client = admin_client_for(superuser)

    subscriptions = client.get("/admin/billing/subscription/").content.decode()
    assert "Blue Note Guitars" in subscriptions
    assert client.get("/admin/billing/stripeevent/").status_code == 200
    assert "checkout.session.completed" in client.get("/admin/billing/stripeevent/").content.decode()
    assert client.get("/admin/billing/usageperiod/").status_code == 200
    assert client.get("/admin/billing/plan/").status_code == 200
    plan_page = client.get("/admin/billing/plan/2/change/")
    assert plan_page.status_code == 200
    assert client.get(f"{PAGE}{other_account.pk}/").status_code == 200
    assert "Rival Music" in client.get(f"{PAGE}{other_account.pk}/").content.decode()


def test_platform_staff_edit_plan_numbers(admin_client_for, superuser):
    from billing.models import Plan

    free = Plan.objects.get(code="free")
    client = admin_client_for(superuser)
    form = client.get(f"/admin/billing/plan/{free.pk}/change/").context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data.update({"max_active_listings": 40, "code": "free"})
    data = {k: v for k, v in data.items() if v is not False}

    response = client.post(f"/admin/billing/plan/{free.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    free.refresh_from_db()
    assert free.max_active_listings == 40
    assert free.code == "free"


def test_on_business_a_smaller_plan_is_offered_as_a_move_down_and_counts_say_what_they_count(
    admin_client_for, staff, account, stripe_sandbox
):
    from channels_reverb.models import ReverbConnection
    from inventory.models import SyncRun

    subscribe(stripe_sandbox, account, "business")
    for name in ("Main", "Outlet"):
        connection = ReverbConnection.objects.create(account=account, name=name, api_token="rvb-0123456789ab")
    for _ in range(3):
        SyncRun.objects.create(account=account, connection=connection, kind="pull", status="ok")

    page = admin_client_for(staff).get(PAGE).content.decode()

    assert 'value="Move down to Pro"' in page and 'value="Upgrade to Pro"' not in page
    assert "your 2 connected shops are on 1 marketplace" in page
    assert "3 sync runs" in page  # counted now, not only after the next roll-up
