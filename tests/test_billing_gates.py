"""Plan limits and features as sellers meet them, and the rule that billing never stops a sale."""

import threading
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone

from accounts.services import staff_user_create
from billing.errors import FeatureNotInPlan, PlanLimitReached
from billing.gates import Feature, Limit, can, check_limit, require
from billing.models import Plan, Subscription
from billing.services import plan_assign, plan_change
from inventory.models import Item, ItemStateChange
from inventory.services import (
    Actor,
    LineSpec,
    item_bulk_transition,
    item_create,
    item_transition,
    order_cancel,
    order_complete,
    order_create,
)
from tests.factories import make_item
from tests.test_billing_fixtures import *  # noqa: F403 (fixtures)
from tests.test_billing_fixtures import activate_items, deliver, subscribe

ACTOR = Actor(source="test")


def _active(account) -> int:
    return Item.objects.filter(account=account, state="active").count()


# --- FREE: 25 active listings ---------------------------------------------------------------


def test_free_account_listing_its_26th_item_gets_402_with_limit_usage_and_the_plan_that_lifts_it(api, account):
    activate_items(account, 25)

    response = api.post(
        "/api/v1/items/", {"title": "1966 Fender Jazzmaster", "price": "4200.00", "initial_state": "active"}
    )

    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "plan_limit_reached"
    assert body["limit"] == "active_listings"
    assert (body["allowed"], body["usage"], body["adding"]) == (25, 25, 1)
    assert (body["plan"], body["upgrade_plan"], body["upgrade_allowed"]) == ("free", "pro", 300)
    assert body["action"] == "upgrade"
    assert body["detail"] == (
        "Your Free plan allows 25 active listings; you have 25, so another cannot be added. "
        "Upgrade to Pro (300 active listings, 29.00 USD/month) in Billing, or end listings you no longer sell."
    )
    assert not Item.objects.filter(account=account, title="1966 Fender Jazzmaster").exists()
    assert _active(account) == 25


def test_free_account_can_still_add_drafts_and_the_25th_listing(api, account):
    activate_items(account, 24)

    assert api.post("/api/v1/items/", {"title": "25th", "price": "10", "initial_state": "active"}).status_code == 201
    draft = api.post("/api/v1/items/", {"title": "Draft 26", "price": "10", "initial_state": "draft"})

    assert draft.status_code == 201
    assert _active(account) == 25
    # ...but making the draft active is the 26th listing.
    refused = api.post(f"/api/v1/items/{draft.json()['id']}/transition/", {"to_state": "active"})
    assert refused.status_code == 402
    assert Item.objects.get(pk=draft.json()["id"]).state == "draft"
    assert not ItemStateChange.objects.filter(item_id=draft.json()["id"], to_state="active").exists()


def test_limits_are_data_not_code(account):
    Plan.objects.filter(code="free").update(max_active_listings=2)
    activate_items(account, 2)

    with pytest.raises(PlanLimitReached) as refused:
        make_item(account, n=99)

    assert refused.value.details["allowed"] == 2


def test_the_admin_shows_the_refusal_with_an_upgrade_link(admin_client_for, staff, account):
    activate_items(account, 25)
    draft = make_item(account, n=50, state="draft")

    client = admin_client_for(staff)
    response = client.post(f"/admin/inventory/item/{draft.pk}/transition/active/", follow=True)

    text = response.content.decode()
    assert "Your Free plan allows 25 active listings" in text
    assert 'href="/admin/billing/subscription/account/">See plans and upgrade</a>' in text
    draft.refresh_from_db()
    assert draft.state == "draft"


# --- Bulk operations -----------------------------------------------------------------------


def test_bulk_make_active_is_refused_on_free_in_the_api_and_nothing_moves(api, account):
    drafts = [make_item(account, n=n, state="draft") for n in range(3)]

    response = api.post("/api/v1/items/bulk-transition/", {"ids": [d.pk for d in drafts], "to_state": "active"})

    assert response.status_code == 402
    body = response.json()
    assert (body["code"], body["feature"], body["plan"], body["upgrade_plan"]) == (
        "feature_not_in_plan",
        "bulk_operations",
        "free",
        "pro",
    )
    assert (
        body["detail"]
        == "Your Free plan does not include bulk operations. Pro does (29.00 USD/month): upgrade in Billing."
    )
    assert _active(account) == 0


def test_bulk_moves_off_sale_stay_open_on_free(api, account):
    """Taking listings off sale shrinks usage: never gated (a downgraded shop must get under its limit)."""
    items = activate_items(account, 3)

    response = api.post("/api/v1/items/bulk-transition/", {"ids": [i.pk for i in items], "to_state": "draft"})

    assert response.status_code == 200
    assert len(response.json()["moved"]) == 3
    assert _active(account) == 0


def test_bulk_make_active_admin_action_is_refused_on_free(admin_client_for, staff, account):
    drafts = [make_item(account, n=n, state="draft") for n in range(2)]

    response = admin_client_for(staff).post(
        "/admin/inventory/item/",
        {"action": "transition_to_active", "_selected_action": [d.pk for d in drafts]},
        follow=True,
    )

    assert "Your Free plan does not include bulk operations" in response.content.decode()
    assert _active(account) == 0


def test_bulk_activation_over_the_limit_refuses_the_whole_batch_and_says_how_many_fit(account):
    plan_assign(account=account, plan=Plan.objects.get(code="pro"))
    Plan.objects.filter(code="pro").update(max_active_listings=5)
    activate_items(account, 3)
    drafts = [make_item(account, n=10 + n, state="draft") for n in range(4)]

    with pytest.raises(PlanLimitReached) as refused:
        item_bulk_transition(account=account, item_ids=[d.pk for d in drafts], to_state="active", actor=ACTOR)

    assert refused.value.details["usage"] == 3
    assert refused.value.details["adding"] == 4
    assert "at most 2 fit" in refused.value.message
    assert _active(account) == 3

    result = item_bulk_transition(account=account, item_ids=[d.pk for d in drafts[:2]], to_state="active", actor=ACTOR)
    assert len(result.moved) == 2
    assert _active(account) == 5


# --- Downgrades and payment trouble never delist -----------------------------------------


def test_downgrade_below_usage_delists_nothing_and_blocks_new_listings_until_under(stripe_sandbox, account):
    subscribe(stripe_sandbox, account, "business")
    Plan.objects.filter(code="pro").update(max_active_listings=3)
    items = activate_items(account, 5)

    result = plan_change(account=account, plan=Plan.objects.get(code="pro"))

    assert result.subscription.plan.code == "pro"
    assert result.warnings == [
        "You have 5 active listings; Pro allows 3. Nothing is removed or delisted, "
        "but no new active listings can be added until you are under 3."
    ]
    assert _active(account) == 5  # nothing delisted
    with pytest.raises(PlanLimitReached) as refused:
        make_item(account, n=77)
    assert "you have 5, which is above it: nothing has been delisted" in refused.value.message

    for item in items[:3]:
        item_transition(item_id=item.pk, to_state="draft", actor=ACTOR)
    make_item(account, n=78)  # 2 active + 1 = 3: allowed again
    assert _active(account) == 3


def test_past_due_keeps_the_paid_plan_during_grace_then_free_limits_apply(stripe_sandbox, account, settings):
    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    subscription = subscribe(stripe_sandbox, account, "pro")
    activate_items(account, 30)
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "invoice.payment_failed",
        stripe_sandbox.invoices[stripe_sandbox.subscriptions[subscription.stripe_subscription_id]["latest_invoice"]],
    )

    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    assert subscription.past_due_since is not None
    make_item(account, n=100)  # within grace: PRO's 300 apply
    assert can(account, Feature.BULK_OPERATIONS)

    Subscription.objects.filter(pk=subscription.pk).update(past_due_since=timezone.now() - timedelta(days=8))

    with pytest.raises(PlanLimitReached) as refused:
        make_item(account, n=101)
    details = refused.value.details
    assert (details["plan"], details["subscribed_plan"], details["reason"]) == ("free", "pro", "payment_overdue")
    assert (details["upgrade_plan"], details["action"]) == ("pro", "update_payment_method")
    assert "the 7-day grace period ended on" in refused.value.message
    assert "Update your payment method" in refused.value.message
    with pytest.raises(FeatureNotInPlan):
        require(account, Feature.BULK_OPERATIONS)
    assert _active(account) == 31  # still nothing delisted


def test_past_due_past_grace_still_sells_and_ends_items(stripe_sandbox, account):
    """The safety machinery: a sale is recorded and completes, the sold item leaves sale."""
    subscription = subscribe(stripe_sandbox, account, "pro")
    items = activate_items(account, 30)
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "customer.subscription.updated",
        stripe_sandbox.subscriptions[subscription.stripe_subscription_id],
    )
    Subscription.objects.filter(pk=subscription.pk).update(past_due_since=timezone.now() - timedelta(days=30))
    with pytest.raises(PlanLimitReached):
        make_item(account, n=200)

    order, created = order_create(
        account=account,
        actor=ACTOR,
        channel="reverb",
        external_id="R-1001",
        placed_at=timezone.now(),
        lines=[LineSpec(items[0].pk, 1, Decimal("100"))],
    )
    order_complete(order_id=order.pk, actor=ACTOR)

    assert created
    items[0].refresh_from_db()
    assert items[0].state == "sold"
    item_transition(item_id=items[0].pk, to_state="shipped", actor=ACTOR)


def test_the_sale_and_end_services_never_consult_the_gate(account):
    """Patch every gate entry to explode, then run the whole sale path: nothing may call them."""
    items = activate_items(account, 3)
    boom = mock.Mock(side_effect=AssertionError("the billing gate was consulted on the sale path"))
    with (
        mock.patch("billing.gates.billing_state", boom),
        mock.patch("billing.selectors.billing_state", boom),
        mock.patch("inventory.services.items.check_limit", boom),
        mock.patch("billing.gates.check_limit", boom),
    ):
        sold, _ = order_create(
            account=account,
            actor=ACTOR,
            channel="ebay",
            external_id="E-1",
            placed_at=timezone.now(),
            lines=[LineSpec(items[0].pk, 1)],
        )
        order_complete(order_id=sold.pk, actor=ACTOR)
        item_transition(item_id=items[0].pk, to_state="shipped", actor=ACTOR)
        item_transition(item_id=items[0].pk, to_state="archived", actor=ACTOR)
        open_order, _ = order_create(
            account=account,
            actor=ACTOR,
            channel="ebay",
            external_id="E-2",
            placed_at=timezone.now(),
            lines=[LineSpec(items[1].pk, 1)],
        )
        order_cancel(order_id=open_order.pk, actor=ACTOR, reason="buyer changed their mind")
        returned, _ = order_create(
            account=account,
            actor=ACTOR,
            channel="ebay",
            external_id="E-3",
            placed_at=timezone.now(),
            lines=[LineSpec(items[2].pk, 1)],
        )
        order_complete(order_id=returned.pk, actor=ACTOR)
        order_cancel(order_id=returned.pk, actor=ACTOR, reason="returned")  # back to active: a sale undone
        item_transition(item_id=items[1].pk, to_state="draft", actor=ACTOR)
        item_bulk_transition(account=account, item_ids=[items[2].pk], to_state="archived", actor=ACTOR)

    assert boom.call_count == 0
    states = dict(Item.objects.filter(pk__in=[i.pk for i in items]).values_list("pk", "state"))
    assert states == {items[0].pk: "archived", items[1].pk: "draft", items[2].pk: "archived"}


# --- Staff users and other limits -------------------------------------------------------------


def test_staff_users_are_limited_by_the_plan(account, staff):
    staff_user_create(account=account, username="bob", password="correct-horse-battery-9")

    with pytest.raises(PlanLimitReached) as refused:
        staff_user_create(account=account, username="carol", password="correct-horse-battery-9")

    assert refused.value.details["limit"] == "staff_users"
    assert refused.value.details["upgrade_plan"] == "pro"
    assert not account.users.filter(username="carol").exists()


def test_the_admin_refuses_a_third_colleague_on_free_with_the_reason(admin_client_for, staff, account):
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["add_user", "change_user"]))
    staff_user_create(account=account, username="bob", password="correct-horse-battery-9")

    # Colleagues are invited by e-mail (accounts: the admin's "add user" is the invitation).
    response = admin_client_for(staff).post(
        "/admin/accounts/user/invite/", {"email": "carol@example.com", "role": "staff"}
    )

    assert response.status_code == 200
    assert "Your Free plan allows 2 staff users" in response.content.decode()
    assert not account.users.filter(email="carol@example.com").exists()


def test_channels_limit_is_exposed_for_the_channel_apps(account):
    assert check_limit(account, Limit.CHANNELS, adding=2) == 0
    with pytest.raises(PlanLimitReached) as refused:
        check_limit(account, Limit.CHANNELS, adding=3)
    assert refused.value.details["limit"] == "channels"
    assert refused.value.details["upgrade_plan"] == "pro"


def test_admin_plan_is_unlimited_and_never_offered(account):
    plan_assign(account=account, plan=Plan.objects.get(code="admin"))
    activate_items(account, 30)

    assert check_limit(account, Limit.ACTIVE_LISTINGS, adding=1000) is None
    assert can(account, Feature.API_ACCESS)
    assert not Plan.objects.get(code="admin").is_public


def test_business_grows_past_its_listing_limit_without_a_forced_upgrade(account):
    plan_assign(account=account, plan=Plan.objects.get(code="business"))
    Plan.objects.filter(code="business").update(max_active_listings=2)
    activate_items(account, 4)  # metered overage, not a refusal

    assert _active(account) == 4


# --- Concurrency ------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_listings_racing_for_the_last_free_place_cannot_both_win():
    from accounts.services import account_create

    account = account_create(name="Race Guitars", slug="race-guitars")
    activate_items(account, 24)
    barrier = threading.Barrier(2)
    outcomes = []

    def list_one(n):
        try:
            barrier.wait()
            item_create(account=account, actor=ACTOR, fields={"title": f"Racer {n}", "price": 10}, state="active")
            outcomes.append("listed")
        except PlanLimitReached:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=list_one, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["listed", "refused"]
    assert _active(account) == 25


# --- With the channel engine: sales end items everywhere whatever the plan; growth is gated ----


def _connection(account, name: str, channel: str = "reverb", priority: int = 100):
    from inventory.models import ChannelConnection

    return ChannelConnection.objects.create(account=account, channel=channel, name=name, priority=priority)


def test_past_due_past_grace_a_sale_still_ends_the_item_on_every_other_channel(stripe_sandbox, account):
    from inventory.channels import OrderLineSeen, OrderSeen
    from inventory.models import ChannelListing
    from inventory.services.selling import sale_record

    subscription = subscribe(stripe_sandbox, account, "pro")
    activate_items(account, 30)  # above FREE's 25
    shops = [_connection(account, f"Shop {n}", channel, n) for n, channel in enumerate(["reverb", "ebay", "shopify"])]
    item = make_item(account, n=500, sku="JM-1966")
    for shop in shops:
        ChannelListing.objects.create(
            account=account, item=item, connection=shop, external_id=f"L-{shop.pk}", actual_state="live"
        )
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "customer.subscription.updated",
        stripe_sandbox.subscriptions[subscription.stripe_subscription_id],
    )
    Subscription.objects.filter(pk=subscription.pk).update(past_due_since=timezone.now() - timedelta(days=20))
    with pytest.raises(PlanLimitReached):  # growth is limited to FREE now...
        make_item(account, n=501)
    seen = OrderSeen(
        external_id="R-9001",
        status="paid",
        placed_at=timezone.now(),
        updated_at=timezone.now(),
        lines=(
            OrderLineSeen(
                sku="JM-1966", external_listing_id=f"L-{shops[0].pk}", quantity=1, unit_price=Decimal("4200")
            ),
        ),
        currency="USD",
        total=Decimal("4200"),
    )
    boom = mock.Mock(side_effect=AssertionError("the billing gate was consulted on the sale path"))

    with mock.patch("billing.gates.billing_state", boom), mock.patch("billing.selectors.billing_state", boom):
        outcome = sale_record(connection=shops[0], seen=seen, actor=ACTOR)  # ...but the sale goes through

    assert outcome.created and boom.call_count == 0
    item.refresh_from_db()
    assert item.state == "sold"
    others = ChannelListing.objects.filter(item=item).exclude(connection=shops[0])
    assert sorted(others.values_list("desired_state", "end_reason")) == [
        ("ended", "sold_elsewhere"),
        ("ended", "sold_elsewhere"),
    ]


def test_a_listing_made_on_a_channel_is_not_imported_without_the_feature_and_the_pull_goes_on(account):
    from inventory.channels import ListingSeen
    from inventory.models import Alert
    from inventory.services.sync import listing_seen_apply

    shop = _connection(account, "Reverb")
    seen = ListingSeen(
        external_id="RV-77", sku="NEW-77", state="live", title="1977 Gibson Marauder", price=Decimal("900")
    )

    counted = listing_seen_apply(shop, seen, actor=ACTOR)

    assert counted == "skipped"
    assert not Item.objects.filter(account=account, sku="NEW-77").exists()
    alert = Alert.objects.get(account=account)
    assert alert.title == "NEW-77 is listed on Reverb but was not imported"
    assert alert.message.startswith("Your Free plan does not include import of listings made on a channel.")


def test_an_import_past_the_listing_limit_is_an_alert_not_a_failed_pull(account):
    from inventory.channels import ListingSeen
    from inventory.models import Alert
    from inventory.services.sync import listing_seen_apply

    plan_assign(account=account, plan=Plan.objects.get(code="pro"))
    Plan.objects.filter(code="pro").update(max_active_listings=2)
    activate_items(account, 2)
    shop = _connection(account, "Reverb")

    counted = listing_seen_apply(
        shop, ListingSeen(external_id="RV-1", sku="NEW-1", state="live", title="x"), actor=ACTOR
    )

    assert counted == "skipped"
    assert "Your Pro plan allows 2 active listings" in Alert.objects.get(account=account).message
    Plan.objects.filter(code="pro").update(max_active_listings=3)
    assert (
        listing_seen_apply(shop, ListingSeen(external_id="RV-1", sku="NEW-1", state="live", title="x"), actor=ACTOR)
        == "created"
    )


def test_connecting_a_third_marketplace_on_free_is_a_form_error(admin_client_for, staff, account):
    from channels_reverb.models import ReverbConnection

    _connection(account, "eBay", "ebay")
    _connection(account, "Shopify", "shopify")
    data = {
        "name": "Reverb main shop",
        "enabled": "on",
        "priority": "100",
        "api_token": "rvb-token-0123456789",
        "base_url": "https://api.reverb.com/api",
        "timeout_seconds": "10",
        "shipping_profile_id": "",
        "category_uuids": "{}",
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "900",
        "stock_buffer_percent": "0",
    }

    response = admin_client_for(staff).post("/admin/channels_reverb/reverbconnection/add/", data)

    assert response.status_code == 200
    assert "Your Free plan allows 2 connected channels; you have 2" in response.content.decode()
    assert not ReverbConnection.objects.exists()
    data["enabled"] = ""  # a disabled connection connects nothing: allowed
    assert admin_client_for(staff).post("/admin/channels_reverb/reverbconnection/add/", data).status_code == 302


def test_editing_a_connected_marketplace_at_the_limit_is_allowed(admin_client_for, staff, account):
    from channels_reverb.models import ReverbConnection

    _connection(account, "eBay", "ebay")
    reverb = ReverbConnection.objects.create(account=account, name="Reverb main shop", api_token="rvb-token-0123456789")
    data = {
        "name": "Reverb main shop (renamed)",
        "enabled": "on",
        "priority": "100",
        "api_token": "",
        "base_url": "https://api.reverb.com/api",
        "timeout_seconds": "10",
        "shipping_profile_id": "",
        "category_uuids": "{}",
        "pull_interval_seconds": "60",
        "pull_offset_seconds": "0",
        "listing_scan_interval_seconds": "900",
        "stock_buffer_percent": "0",
    }

    response = admin_client_for(staff).post(f"/admin/channels_reverb/reverbconnection/{reverb.pk}/change/", data)

    assert response.status_code == 302
    reverb.refresh_from_db()
    assert reverb.name == "Reverb main shop (renamed)"
