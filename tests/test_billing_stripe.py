"""Subscriptions through Stripe (the loopback sandbox) and the webhook, as Stripe really behaves:
events signed, late, out of order, repeated, concurrent."""

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from billing.errors import BillingStateError, StripeUnavailable
from billing.gates import Limit, check_limit
from billing.models import Plan, StripeEvent, Subscription, SubscriptionChange
from billing.selectors import billing_state, invoice_list
from billing.services import (
    checkout_start,
    plan_change,
    portal_start,
    stripe_events_retry,
    subscription_cancel,
)
from tests.test_billing_fixtures import *  # noqa: F403 (fixtures)
from tests.test_billing_fixtures import (
    OVERAGE_PRICE,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    activate_items,
    deliver,
    post_webhook,
    sign_payload,
    subscribe,
)

pytestmark = pytest.mark.django_db


def _checkout(account, plan_code="pro", **urls):
    return checkout_start(
        account=account,
        plan=Plan.objects.get(code=plan_code),
        user=None,
        success_url=urls.get("success_url", "https://shop.test/ok"),
        cancel_url=urls.get("cancel_url", "https://shop.test/no"),
    )


# --- Checkout, portal, plan changes ---------------------------------------------------------------


def test_checkout_creates_one_customer_and_one_session_even_on_a_double_click(stripe_sandbox, account):
    first = _checkout(account)
    second = _checkout(account)

    assert first == second
    assert first.startswith(f"{stripe_sandbox.url}/c/pay/cs_test_")
    assert len(stripe_sandbox.customers) == 1
    assert len(stripe_sandbox.sessions) == 1
    customers = stripe_sandbox.calls("POST", "/v1/customers")
    assert [(c.idempotency_key, c.replayed) for c in customers] == [(f"customer-create:account:{account.pk}", False)]
    assert customers[0].params["metadata"] == {"account_id": str(account.pk), "account_slug": "blue-note"}
    sessions = stripe_sandbox.calls("POST", "/v1/checkout/sessions")
    assert [c.replayed for c in sessions] == [False, True]
    assert sessions[0].idempotency_key == sessions[1].idempotency_key
    assert sessions[0].idempotency_key.startswith(f"checkout:{account.pk}:pro:")
    params = sessions[0].params
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": "price_pro_monthly", "quantity": "1"}]
    assert params["client_reference_id"] == str(account.pk)
    assert params["subscription_data"]["metadata"] == {"account_id": str(account.pk), "plan": "pro"}
    subscription = Subscription.objects.get(account=account)
    assert subscription.stripe_customer_id == next(iter(stripe_sandbox.customers))
    assert subscription.stripe_subscription_id == ""  # linked only when Stripe says the checkout completed
    assert subscription.plan.code == "free"


def test_business_checkout_includes_the_metered_overage_price(stripe_sandbox, account):
    _checkout(account, "business")

    params = stripe_sandbox.calls("POST", "/v1/checkout/sessions")[0].params
    assert params["line_items"] == [
        {"price": "price_business_monthly", "quantity": "1"},
        {"price": OVERAGE_PRICE},
    ]


def test_checkout_is_refused_with_what_to_do_instead(stripe_sandbox, account):
    with pytest.raises(BillingStateError, match="The Free plan needs no checkout"):
        _checkout(account, "free")
    Plan.objects.filter(code="pro").update(stripe_price_id="")
    with pytest.raises(BillingStateError, match="Pro cannot be bought yet: its Stripe price id is not set"):
        _checkout(account, "pro")
    Plan.objects.filter(code="pro").update(stripe_price_id="price_pro_monthly")
    subscribe(stripe_sandbox, account, "pro")
    with pytest.raises(BillingStateError, match="You already subscribe to Pro") as refused:
        _checkout(account, "business")
    assert refused.value.details["action"] == "change_plan"
    assert len(stripe_sandbox.sessions) == 1


def test_stripe_down_during_checkout_changes_nothing(stripe_sandbox, account):
    stripe_sandbox.fail_next.append((500, "Stripe is having a bad day"))

    with pytest.raises(StripeUnavailable, match="Stripe could not create the customer"):
        _checkout(account)

    assert not Subscription.objects.filter(account=account).exclude(stripe_customer_id="").exists()
    assert stripe_sandbox.customers == {}
    assert stripe_sandbox.calls("POST", "/v1/checkout/sessions") == []


def test_portal_session_for_a_customer_and_a_clear_refusal_without_one(stripe_sandbox, account):
    with pytest.raises(BillingStateError, match="There are no payment details yet"):
        portal_start(account=account, return_url="https://shop.test/billing")

    subscribe(stripe_sandbox, account, "pro")
    url = portal_start(account=account, return_url="https://shop.test/billing")

    assert url.startswith(f"{stripe_sandbox.url}/p/session/bps_")
    call = stripe_sandbox.calls("POST", "/v1/billing_portal/sessions")[0]
    assert call.params == {
        "customer": Subscription.objects.get(account=account).stripe_customer_id,
        "return_url": "https://shop.test/billing",
    }
    assert call.idempotency_key.startswith(f"portal:{account.pk}:")


def test_upgrade_changes_the_price_with_proration_and_adds_the_overage_meter(stripe_sandbox, account, staff):
    subscription = subscribe(stripe_sandbox, account, "pro")

    result = plan_change(account=account, plan=Plan.objects.get(code="business"), user=staff, source="api")

    assert result.subscription.plan.code == "business"
    assert result.warnings == []
    call = stripe_sandbox.calls("POST", f"/v1/subscriptions/{subscription.stripe_subscription_id}")[0]
    assert call.params["proration_behavior"] == "create_prorations"
    assert call.idempotency_key.startswith(f"plan-change:{subscription.stripe_subscription_id}:business:")
    remote = stripe_sandbox.subscriptions[subscription.stripe_subscription_id]
    assert sorted(i["price"]["id"] for i in remote["items"]["data"]) == [OVERAGE_PRICE, "price_business_monthly"]
    change = SubscriptionChange.objects.filter(account=account).first()
    assert (change.from_plan.code, change.to_plan.code, change.source, change.user) == ("pro", "business", "api", staff)

    plan_change(account=account, plan=Plan.objects.get(code="pro"))  # and back down: the meter item goes
    remote = stripe_sandbox.subscriptions[subscription.stripe_subscription_id]
    assert [i["price"]["id"] for i in remote["items"]["data"]] == ["price_pro_monthly"]


def test_cancel_keeps_the_plan_until_the_period_ends_then_free_limits_apply(stripe_sandbox, account):
    subscription = subscribe(stripe_sandbox, account, "pro")
    activate_items(account, 30)

    subscription = subscription_cancel(account=account)

    assert subscription.cancel_at_period_end is True
    assert (subscription.plan.code, subscription.status) == ("pro", "active")
    assert stripe_sandbox.calls("POST", "/v1/subscriptions/")[0].params == {"cancel_at_period_end": "true"}
    assert billing_state(account).plan.code == "pro"

    # The period ends: Stripe deletes the subscription.
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "canceled")
    deliver(
        stripe_sandbox,
        "customer.subscription.deleted",
        stripe_sandbox.subscriptions[subscription.stripe_subscription_id],
    )

    state = billing_state(account)
    assert (state.status, state.plan.code, state.restriction) == ("canceled", "free", "subscription_ended")
    assert check_limit(account, Limit.STAFF_USERS, adding=1) == 0
    from inventory.models import Item

    assert Item.objects.filter(account=account, state="active").count() == 30  # nothing delisted
    # and the shop may subscribe again
    assert _checkout(account, "pro").startswith(stripe_sandbox.url)


def test_invoices_are_read_from_stripe(stripe_sandbox, account):
    assert invoice_list(account) == []
    subscribe(stripe_sandbox, account, "pro")

    invoices = invoice_list(account)

    assert [(i["number"], i["status"], i["total"], i["currency"]) for i in invoices] == [
        ("SBX-0001", "paid", "29.00", "USD")
    ]


# --- The webhook ------------------------------------------------------------------------------------


def _completed_payload(sandbox, account):
    url = _checkout(account)
    session_id = url.rsplit("/", 1)[-1]
    sandbox.complete_checkout(session_id)
    return sandbox.event_payload("checkout.session.completed", sandbox.session_public(session_id))


def test_checkout_completed_webhook_links_the_subscription(stripe_sandbox, account, client):
    payload = _completed_payload(stripe_sandbox, account)

    response = post_webhook(client, payload)

    assert response.status_code == 200
    assert response.json() == {"received": json.loads(payload)["id"], "duplicate": False, "processed": True}
    subscription = Subscription.objects.get(account=account)
    remote = next(iter(stripe_sandbox.subscriptions.values()))
    assert subscription.stripe_subscription_id == remote["id"]
    assert (subscription.plan.code, subscription.status) == ("pro", "active")
    assert subscription.current_period_end.timestamp() == remote["items"]["data"][0]["current_period_end"]
    event = StripeEvent.objects.get()
    assert (event.type, event.account, event.attempts) == ("checkout.session.completed", account, 1)
    assert event.outcome == "blue-note: pro active (was free active)"
    change = SubscriptionChange.objects.get(account=account)
    assert (change.from_plan.code, change.to_plan.code) == ("free", "pro")
    assert change.source == f"stripe {event.stripe_id}"


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "no header", "stale", "signed in the future", "tampered body", "not json"],
)
def test_a_bad_stale_or_future_signature_is_400_and_nothing_is_stored(stripe_sandbox, account, client, how):
    payload = _completed_payload(stripe_sandbox, account)
    headers = {"HTTP_STRIPE_SIGNATURE": sign_payload(payload, WEBHOOK_SECRET)}
    body = payload
    if how == "wrong secret":
        headers["HTTP_STRIPE_SIGNATURE"] = sign_payload(payload, "whsec_someone_else")
    elif how == "no header":
        headers = {}
    elif how == "stale":
        headers["HTTP_STRIPE_SIGNATURE"] = sign_payload(payload, WEBHOOK_SECRET, int(time.time()) - 301)
    elif how == "signed in the future":  # beyond the tolerance the other way (was accepted up to 1 h ahead)
        headers["HTTP_STRIPE_SIGNATURE"] = sign_payload(payload, WEBHOOK_SECRET, int(time.time()) + 301)
    elif how == "tampered body":
        body = payload.replace('"mode": "subscription"', '"mode": "payment"')
    elif how == "not json":
        body = "not json at all"
        headers["HTTP_STRIPE_SIGNATURE"] = sign_payload(body, WEBHOOK_SECRET)

    response = client.post(WEBHOOK_URL, data=body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_webhook"
    assert StripeEvent.objects.count() == 0
    assert Subscription.objects.get(account=account).stripe_subscription_id == ""
    assert stripe_sandbox.calls("GET", "/v1/subscriptions/") == []


def test_the_same_event_five_times_is_stored_once_and_acted_on_once(stripe_sandbox, account, client):
    payload = _completed_payload(stripe_sandbox, account)

    answers = [post_webhook(client, payload) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["duplicate"] for a in answers] == [False, True, True, True, True]
    assert StripeEvent.objects.count() == 1
    assert SubscriptionChange.objects.filter(account=account).count() == 1
    assert len(stripe_sandbox.calls("GET", "/v1/subscriptions/")) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_event_five_times_concurrently_is_stored_once_and_acted_on_once(stripe_sandbox):
    from accounts.services import account_create

    account = account_create(name="Concurrent Guitars", slug="concurrent")
    payload = _completed_payload(stripe_sandbox, account)
    barrier = threading.Barrier(5)
    statuses = []

    def deliver_once():
        try:
            barrier.wait()
            statuses.append(post_webhook(Client(), payload).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver_once) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 5
    assert StripeEvent.objects.count() == 1
    assert StripeEvent.objects.get().processed_at is not None
    assert SubscriptionChange.objects.filter(account=account).count() == 1
    assert len(stripe_sandbox.calls("GET", "/v1/subscriptions/")) == 1
    assert Subscription.objects.get(account=account).plan.code == "pro"


def test_subscription_deleted_before_updated_ends_canceled(stripe_sandbox, account):
    subscription = subscribe(stripe_sandbox, account, "pro")
    sub_id = subscription.stripe_subscription_id
    # Stripe sends "updated" (a change while active), then the subscription is deleted;
    # the deleted event arrives first, the updated one late.
    updated_snapshot = stripe_sandbox.set_subscription_status(sub_id, "active")
    deleted_snapshot = stripe_sandbox.set_subscription_status(sub_id, "canceled")

    deliver(stripe_sandbox, "customer.subscription.deleted", deleted_snapshot)
    deliver(stripe_sandbox, "customer.subscription.updated", updated_snapshot)

    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    assert billing_state(account).plan.code == "free"
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == 3
    changes = list(
        SubscriptionChange.objects.filter(account=account).order_by("id").values_list("to_status", flat=True)
    )
    assert changes == ["active", "canceled"]  # the late "updated" changed nothing


def test_a_stale_event_cannot_undo_a_payment_failure(stripe_sandbox, account):
    subscription = subscribe(stripe_sandbox, account, "pro")
    active_snapshot = dict(stripe_sandbox.subscriptions[subscription.stripe_subscription_id])
    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "past_due")
    deliver(
        stripe_sandbox,
        "invoice.payment_failed",
        stripe_sandbox.invoices[stripe_sandbox.subscriptions[subscription.stripe_subscription_id]["latest_invoice"]],
    )

    deliver(stripe_sandbox, "customer.subscription.updated", active_snapshot)  # old news

    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    assert subscription.past_due_since is not None

    stripe_sandbox.set_subscription_status(subscription.stripe_subscription_id, "active")
    deliver(
        stripe_sandbox,
        "invoice.paid",
        stripe_sandbox.invoices[stripe_sandbox.subscriptions[subscription.stripe_subscription_id]["latest_invoice"]],
    )
    subscription.refresh_from_db()
    assert (subscription.status, subscription.past_due_since) == ("active", None)


def test_subscription_created_before_the_checkout_completed_links_by_customer(stripe_sandbox, account):
    url = _checkout(account)
    session_id = url.rsplit("/", 1)[-1]
    remote = stripe_sandbox.complete_checkout(session_id)

    deliver(stripe_sandbox, "customer.subscription.created", remote)
    deliver(stripe_sandbox, "checkout.session.completed", stripe_sandbox.session_public(session_id))

    subscription = Subscription.objects.get(account=account)
    assert (subscription.stripe_subscription_id, subscription.plan.code) == (remote["id"], "pro")
    assert SubscriptionChange.objects.filter(account=account).count() == 1


def test_events_for_unknown_customers_and_other_types_are_stored_and_ignored(stripe_sandbox, account, other_account):
    subscribe(stripe_sandbox, other_account, "pro")
    stranger = dict(next(iter(stripe_sandbox.subscriptions.values())), customer="cus_nobody", id="sub_nobody")
    stripe_sandbox.subscriptions["sub_nobody"] = stranger

    deliver(stripe_sandbox, "customer.subscription.updated", stranger)
    deliver(stripe_sandbox, "price.created", stripe_sandbox.prices["price_pro_monthly"])

    outcomes = dict(StripeEvent.objects.values_list("type", "outcome"))
    assert outcomes["customer.subscription.updated"] == "ignored: no account has customer cus_nobody or sub_nobody"
    assert outcomes["price.created"] == "ignored: price.created is not an event billing acts on"
    assert not Subscription.objects.filter(account=account).exists()


def test_a_checkout_cannot_claim_another_accounts_customer(stripe_sandbox, account, other_account):
    """Signed events are trusted, but their account reference must match the customer we created."""
    url = _checkout(other_account)
    session_id = url.rsplit("/", 1)[-1]
    stripe_sandbox.complete_checkout(session_id)
    forged = dict(stripe_sandbox.session_public(session_id), client_reference_id=str(account.pk), metadata={})

    deliver(stripe_sandbox, "checkout.session.completed", forged)

    assert not Subscription.objects.filter(account=account).exclude(stripe_subscription_id="").exists()
    assert "belongs to another account" in StripeEvent.objects.get().outcome


def test_stripe_unreachable_while_processing_keeps_the_event_for_a_retry(stripe_sandbox, account, client):
    payload = _completed_payload(stripe_sandbox, account)
    stripe_sandbox.fail_next.append((503, "try later"))

    assert post_webhook(client, payload).status_code == 200  # stored: Stripe must not resend
    event = StripeEvent.objects.get()
    assert (event.processed_at, event.attempts) == (None, 1)
    assert "Stripe could not read the subscription" in event.last_error
    assert Subscription.objects.get(account=account).stripe_subscription_id == ""

    from datetime import timedelta

    assert stripe_events_retry(older_than=timedelta(0)) == 1
    event.refresh_from_db()
    assert (event.attempts, event.last_error) == (2, "")
    assert event.processed_at is not None
    assert Subscription.objects.get(account=account).plan.code == "pro"
    assert stripe_events_retry(older_than=timedelta(0)) == 0


def test_an_event_about_a_subscription_stripe_no_longer_has_is_ignored_not_retried(stripe_sandbox, account):
    subscription = subscribe(stripe_sandbox, account, "pro")
    gone = dict(stripe_sandbox.subscriptions.pop(subscription.stripe_subscription_id))

    deliver(stripe_sandbox, "customer.subscription.updated", gone)

    event = StripeEvent.objects.filter(type="customer.subscription.updated").get()
    assert event.processed_at is not None
    assert event.outcome == f"ignored: Stripe has no subscription {gone['id']}"
    subscription.refresh_from_db()
    assert (subscription.plan.code, subscription.status) == ("pro", "active")
