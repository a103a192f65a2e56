"""The Stripe webhook endpoint: verify, store once, act. Thin: the services do the work."""

import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .errors import InvalidWebhook, StripeNotConfigured
from .services import stripe_event_process, stripe_event_receive

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """200 once the event is stored (new or duplicate); 400 with nothing stored if the
    signature is wrong or too old. Processing errors stay on the stored event and are
    retried, so they never make Stripe resend what is already stored."""
    try:
        event, created = stripe_event_receive(
            payload=request.body, signature=request.headers.get("Stripe-Signature", "")
        )
    except InvalidWebhook as error:
        return JsonResponse({"code": error.code, "detail": error.message}, status=400)
    except StripeNotConfigured as error:
        log.error("billing: webhook received but %s", error.message)
        return JsonResponse({"code": error.code, "detail": error.message}, status=503)
    # A duplicate is acted on only if an earlier attempt failed (Stripe's resend is our retry).
    if created or (event.processed_at is None and event.attempts):
        event = stripe_event_process(event.pk) or event
    return JsonResponse({"received": event.stripe_id, "duplicate": not created, "processed": bool(event.processed_at)})
