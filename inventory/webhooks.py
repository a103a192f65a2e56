"""The webhook endpoint every channel posts to: /hooks/<channel>/<secret token>/.

It only identifies and stores the delivery (the inbox) and answers at once; a worker
processes it. Reverb signs nothing, so the secret is the URL itself: an unknown token is
a 404 and nothing is stored.
"""

import logging

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .channels import ChannelError, WebhookRejected, WebhookReply
from .models import ChannelConnection
from .services.sync import webhook_receive

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def channel_webhook(request, channel: str, token: str):
    connection = get_object_or_404(ChannelConnection, channel=channel, webhook_token=token, enabled=True)
    try:
        event, created = webhook_receive(connection=connection, headers=request.headers, body=request.body)
    except WebhookRejected as error:  # a bad or missing signature: the channel says which status
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=error.http_status)
    except ChannelError as error:
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=400)
    if isinstance(event, WebhookReply):  # answered, nothing stored (e.g. WooCommerce's ping)
        if isinstance(event.body, bytes):
            return HttpResponse(event.body, status=event.status)
        return JsonResponse(dict(event.body), status=event.status)
    return HttpResponse(b"stored" if created else b"duplicate", status=200)
