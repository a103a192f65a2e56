import json

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotAllowed
from django.utils import timezone

from floor_stack.models import WebhookEvent
from floor_stack.tasks import sale


def hook(request):
    """A marketplace's sale webhook: store it, queue its processing once stored, answer 200."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = json.loads(request.body)
    with transaction.atomic():
        event = WebhookEvent.objects.create(body=body, received_at=timezone.now())
        transaction.on_commit(lambda: sale.apply_async(args=[event.pk, body["listing"]], queue=settings.WEBHOOK_QUEUE))
    return HttpResponse(b"ok", content_type="text/plain")
