"""A loopback Stripe: the endpoints billing calls, answering with Stripe's own object shapes.

Objects are built from Stripe's published fixtures (billing/sandbox/stripe_fixtures.json, a
verbatim copy of resources from contracts/stripe/fixtures3.json) with the
fields a real answer would carry filled in. The sandbox keeps state (customers, checkout
sessions, subscriptions, invoices, meter events), honours idempotency keys as Stripe does
(same key and parameters: the first answer again; other parameters: an idempotency_error)
and records every request so tests can assert what was sent.

For tests:
    with StripeSandbox() as sandbox:            # listens on 127.0.0.1:<random port>
        sandbox.add_price("price_pro", 2900)
        settings.STRIPE_API_BASE = sandbox.url
        ...
        sandbox.complete_checkout(session_id)   # what the buyer does on Stripe's page
        payload = sandbox.event_payload("customer.subscription.updated", sandbox.subscriptions[sub_id])
        header = sign_payload(payload, secret)  # exactly as Stripe signs

For the demo (`manage.py stripe_sandbox`): the checkout URL is served by the sandbox itself,
and paying there delivers signed webhooks to the back office.
"""

from .api import StripeSandbox
from .wire import FIXTURES_PATH, decode_form, load_fixtures, sign_payload

__all__ = ["FIXTURES_PATH", "StripeSandbox", "decode_form", "load_fixtures", "sign_payload"]
