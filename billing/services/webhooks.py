"""Stripe webhooks: verify, store once by event id, then act by re-reading Stripe.

Events arrive late, out of order and more than once, so none is trusted for state: each
names a subscription, and that subscription is read back from Stripe and mirrored. The
stored row makes a replay harmless (unique event id) and keeps the attempts and outcome.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import client
from ..errors import BillingError
from ..models import StripeEvent
from .subscriptions import SyncOutcome, subscription_sync

log = logging.getLogger(__name__)

HANDLED_TYPES = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
MAX_ATTEMPTS = 10


def stripe_event_receive(*, payload: bytes, signature: str) -> tuple[StripeEvent, bool]:
    """Verify a delivery and store its event once. Returns (event row, created).

    Raises InvalidWebhook (bad or stale signature, not an event): nothing is stored.
    """
    event = client.webhook_event_construct(payload, signature)
    body = json.loads(payload)
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                stripe_id=event["id"],
                type=event["type"],
                livemode=bool(body.get("livemode")),
                stripe_created_at=datetime.fromtimestamp(int(body.get("created") or 0), tz=UTC),
                payload=body,
            )
        return row, True
    except IntegrityError:
        return StripeEvent.objects.get(stripe_id=event["id"]), False


def stripe_event_process(event_id: int) -> StripeEvent | None:
    """Act on a stored event once. Returns None when it is done already or being done.

    Errors (Stripe unreachable, unknown price) are kept on the row and the event stays
    unprocessed: Stripe's redelivery or the retry task tries again.
    """
    with transaction.atomic():
        event = (
            StripeEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, processed_at__isnull=True)
            .first()
        )
        if event is None:
            return None
        event.attempts += 1
        try:
            with transaction.atomic():
                outcome = _handle(event)
        except BillingError as error:
            event.last_error = error.message
            event.save(update_fields=["attempts", "last_error"])
            log.warning("billing: Stripe event %s not processed: %s", event.stripe_id, error.message)
            return event
        except Exception as error:
            event.last_error = f"{type(error).__name__}: {error}"
            event.save(update_fields=["attempts", "last_error"])
            log.exception("billing: Stripe event %s failed", event.stripe_id)
            return event
        event.processed_at = timezone.now()
        event.outcome = outcome.text[:300]
        event.account_id = outcome.account_id
        event.last_error = ""
        event.save(update_fields=["attempts", "processed_at", "outcome", "account", "last_error"])
    return event


def _handle(event: StripeEvent) -> SyncOutcome:
    if event.type not in HANDLED_TYPES:
        return SyncOutcome(f"ignored: {event.type} is not an event billing acts on")
    obj = event.payload.get("data", {}).get("object", {})
    source = f"stripe {event.stripe_id}"
    if event.type == "checkout.session.completed":
        if obj.get("mode") != "subscription" or not obj.get("subscription"):
            return SyncOutcome("ignored: not a subscription checkout")
        reference = obj.get("client_reference_id") or (obj.get("metadata") or {}).get("account_id")
        if not str(reference or "").isdigit():
            return SyncOutcome("ignored: the checkout names no account")
        return subscription_sync(
            stripe_subscription_id=_id(obj["subscription"]),
            customer_id=_id(obj.get("customer")),
            account_id=int(reference),
            source=source,
        )
    if event.type.startswith("customer.subscription."):
        return subscription_sync(stripe_subscription_id=obj["id"], customer_id=_id(obj.get("customer")), source=source)
    subscription_id = _invoice_subscription(obj)
    if not subscription_id:
        return SyncOutcome("ignored: the invoice is not for a subscription")
    return subscription_sync(
        stripe_subscription_id=subscription_id, customer_id=_id(obj.get("customer")), source=source
    )


def _id(value) -> str:
    """An expandable field: an id, or the expanded object."""
    if isinstance(value, dict):
        return value.get("id", "")
    return value or ""


def _invoice_subscription(invoice: dict) -> str:
    # API 2025-03-31 and later: parent.subscription_details.subscription; before: invoice.subscription.
    details = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return _id(details or invoice.get("subscription"))


def stripe_events_retry(*, older_than: timedelta = timedelta(minutes=1)) -> int:
    """Process stored events that are still unprocessed (a crash, Stripe unreachable). Returns how many."""
    cutoff = timezone.now() - older_than
    pending = StripeEvent.objects.filter(
        processed_at__isnull=True, received_at__lt=cutoff, attempts__lt=MAX_ATTEMPTS
    ).order_by("stripe_created_at", "pk")
    done = 0
    for event_id in list(pending.values_list("pk", flat=True)[:500]):
        event = stripe_event_process(event_id)
        if event is not None and event.processed_at:
            done += 1
    return done
