"""The loopback Stripe is checked against Stripe's own published object shapes."""

import json

import pytest
import stripe

from billing.sandbox import FIXTURES_PATH, StripeSandbox, decode_form, load_fixtures, sign_payload
from tests.contracts import contract_path


def test_the_vendored_fixtures_are_a_verbatim_copy_of_the_official_contract():
    official = json.loads(contract_path("stripe", "fixtures3.json").read_text())["resources"]
    ours = load_fixtures(FIXTURES_PATH)

    assert {name: official[name] for name in ours} == ours


def _keys(obj: dict) -> set[str]:
    return set(obj)


def test_every_object_the_sandbox_answers_has_stripes_shape():
    fixtures = load_fixtures()
    with StripeSandbox() as sandbox:
        sandbox.add_price("price_x", 1000)
        client = stripe.StripeClient("sk_test_contract", base_addresses={"api": sandbox.url}, max_network_retries=0)
        customer = client.v1.customers.create({"name": "Shop", "email": "shop@example.com"}).to_dict()
        session = client.v1.checkout.sessions.create(
            {
                "mode": "subscription",
                "customer": customer["id"],
                "line_items": [{"price": "price_x", "quantity": 1}],
                "success_url": "https://x.test/ok",
                "cancel_url": "https://x.test/no",
            }
        ).to_dict()
        sandbox.complete_checkout(session["id"])
        subscription_id = sandbox.sessions[session["id"]]["subscription"]
        subscription = client.v1.subscriptions.retrieve(subscription_id).to_dict()
        invoice = client.v1.invoices.list({"customer": customer["id"]}).to_dict()["data"][0]
        portal = client.v1.billing_portal.sessions.create(
            {"customer": customer["id"], "return_url": "https://x.test/b"}
        ).to_dict()
        meter_event = client.v1.billing.meter_events.create(
            {"event_name": "e", "payload": {"stripe_customer_id": customer["id"], "value": "1"}}
        ).to_dict()
        event = json.loads(sandbox.event_payload("customer.subscription.updated", subscription))

    assert _keys(customer) == _keys(fixtures["customer"])
    assert _keys(session) == _keys(fixtures["checkout.session"])
    assert _keys(subscription) == _keys(fixtures["subscription"])
    assert _keys(subscription["items"]["data"][0]) == _keys(fixtures["subscription_item"])
    assert _keys(subscription["items"]["data"][0]["price"]) == _keys(fixtures["price"])
    assert _keys(invoice) == _keys(fixtures["invoice"])
    assert _keys(portal) == _keys(fixtures["billing_portal.session"])
    assert _keys(meter_event) == _keys(fixtures["billing.meter_event"])
    assert _keys(event) == _keys(fixtures["event"])
    assert (subscription["object"], invoice["object"], event["object"]) == ("subscription", "invoice", "event")
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription_id


def test_webhook_signatures_are_made_exactly_as_stripe_makes_them():
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {"object": {}}})
    header = sign_payload(payload, "whsec_abc", timestamp=1_700_000_000)

    assert header == stripe.WebhookSignature.generate_signature_header(payload, "whsec_abc", timestamp=1_700_000_000)
    event = stripe.Webhook.construct_event(payload, sign_payload(payload, "whsec_abc"), "whsec_abc")
    assert event["type"] == "invoice.paid"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_abc")  # too old


def test_stripe_form_encoding_is_decoded_into_nested_params():
    body = "line_items[0][price]=p1&line_items[0][quantity]=1&line_items[1][price]=p2&metadata[a]=b&mode=subscription"

    assert decode_form(body) == {
        "line_items": [{"price": "p1", "quantity": "1"}, {"price": "p2"}],
        "metadata": {"a": "b"},
        "mode": "subscription",
    }


def test_the_sandbox_refuses_what_stripe_refuses():
    with StripeSandbox() as sandbox:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": sandbox.url}, max_network_retries=0)
        with pytest.raises(stripe.InvalidRequestError, match="No such subscription"):
            client.v1.subscriptions.retrieve("sub_missing")
        with pytest.raises(stripe.AuthenticationError):
            stripe.StripeClient("rk_live_x", base_addresses={"api": sandbox.url}).v1.customers.create({})
        customer = client.v1.customers.create({"name": "A"}, {"idempotency_key": "same"})
        with pytest.raises(stripe.IdempotencyError):
            client.v1.customers.create({"name": "B"}, {"idempotency_key": "same"})
        with pytest.raises(stripe.InvalidRequestError, match="No such price"):
            client.v1.checkout.sessions.create(
                {
                    "mode": "subscription",
                    "customer": customer.id,
                    "line_items": [{"price": "price_unknown", "quantity": 1}],
                    "success_url": "https://x.test/ok",
                }
            )
