"""Stripe over HTTP: the calls billing makes, with timeouts, retries and typed errors. No ORM.

Everything goes through one `StripeClient` built from settings (STRIPE_SECRET_KEY,
STRIPE_API_BASE, STRIPE_TIMEOUT_SECONDS, STRIPE_MAX_NETWORK_RETRIES), so tests and the
demo point it at the loopback sandbox (billing/sandbox.py). Calls that create something
take an explicit idempotency key: a retry, a double click or two workers doing the same
thing get Stripe's first answer back instead of a second object. Answers are plain dicts.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

from .errors import InvalidWebhook, StripeNotConfigured, StripeUnavailable


@lru_cache(maxsize=4)
def _client_for(api_key: str, api_base: str, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured(
            "Stripe is not configured: set STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET in the environment "
            "(see README, Billing)."
        )
    return _client_for(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        float(settings.STRIPE_TIMEOUT_SECONDS),
        int(settings.STRIPE_MAX_NETWORK_RETRIES),
    )


def _call(doing: str, request, *args, **kwargs) -> dict:
    """Make the call; answer Stripe's object as a plain dict (what the services and tests read)."""
    try:
        return request(*args, **kwargs).to_dict()
    except stripe.StripeError as error:
        raise StripeUnavailable(
            f"Stripe could not {doing}: {error.user_message or error}. Nothing was changed; try again in a minute.",
            stripe_error=type(error).__name__,
            stripe_code=getattr(error, "code", None),
            http_status=getattr(error, "http_status", None),
        ) from error


def _options(idempotency_key: str | None) -> dict[str, Any]:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


def customer_create(*, name: str, email: str, metadata: dict[str, str], idempotency_key: str):
    client = stripe_client()
    params = {"name": name, "metadata": metadata}
    if email:
        params["email"] = email
    return _call("create the customer", client.v1.customers.create, params, _options(idempotency_key))


def checkout_session_create(
    *,
    customer: str,
    line_items: list[dict],
    success_url: str,
    cancel_url: str,
    client_reference_id: str,
    metadata: dict[str, str],
    idempotency_key: str,
):
    client = stripe_client()
    params = {
        "mode": "subscription",
        "customer": customer,
        "line_items": line_items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    return _call("start the checkout", client.v1.checkout.sessions.create, params, _options(idempotency_key))


def portal_session_create(*, customer: str, return_url: str, idempotency_key: str):
    client = stripe_client()
    params = {"customer": customer, "return_url": return_url}
    return _call("open the billing portal", client.v1.billing_portal.sessions.create, params, _options(idempotency_key))


def checkout_session_retrieve(session_id: str):
    return _call("read the checkout session", stripe_client().v1.checkout.sessions.retrieve, session_id)


def subscription_retrieve(subscription_id: str):
    return _call("read the subscription", stripe_client().v1.subscriptions.retrieve, subscription_id)


def subscription_update(subscription_id: str, *, params: dict, idempotency_key: str):
    client = stripe_client()
    return _call(
        "change the subscription", client.v1.subscriptions.update, subscription_id, params, _options(idempotency_key)
    )


def invoice_list(*, customer: str, limit: int = 12):
    client = stripe_client()
    return _call("list the invoices", client.v1.invoices.list, {"customer": customer, "limit": limit})


def meter_event_create(
    *, event_name: str, customer: str, value: int, identifier: str, timestamp: int, idempotency_key: str
):
    client = stripe_client()
    params = {
        "event_name": event_name,
        "identifier": identifier,
        "timestamp": timestamp,
        "payload": {"stripe_customer_id": customer, "value": str(value)},
    }
    return _call("record the usage", client.v1.billing.meter_events.create, params, _options(idempotency_key))


def webhook_event_construct(payload: bytes, signature: str):
    """The verified event, or InvalidWebhook (bad or missing signature, too old, not JSON)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured("STRIPE_WEBHOOK_SECRET is not set: the webhook cannot verify Stripe's signature.")
    _refuse_future_timestamp(signature, settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS)
    try:
        return stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(f"Stripe signature check failed: {error.user_message or error}.") from error
    except ValueError as error:
        raise InvalidWebhook(f"The webhook body is not a Stripe event: {error}.") from error


def _refuse_future_timestamp(signature: str, tolerance: int) -> None:
    """Stripe's library refuses signatures older than the tolerance only; one signed further
    ahead than that is refused too (a clock that far off, or a replay prepared in advance)."""
    import time

    stamps = [part[2:] for part in (signature or "").split(",") if part.strip().startswith("t=")]
    try:
        signed_at = int(stamps[0].strip()) if stamps else None
    except ValueError:
        return  # malformed: construct_event says so
    if signed_at is not None and signed_at > time.time() + tolerance:
        raise InvalidWebhook(
            f"Stripe signature check failed: the event is signed {signed_at - int(time.time())} s in the future, "
            f"beyond the {tolerance} s tolerance; check this server's clock."
        )
