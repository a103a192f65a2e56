"""The webhook endpoint every channel posts to: /hooks/<channel>/<secret token>/.

It only identifies and stores the delivery (the inbox) and answers at once; a worker
processes it. An unknown token is a 404 and nothing is stored. A channel that signs its
deliveries rejects a bad or missing signature (WebhookRejected: its status, usually 401)
before anything is stored. A GET is a channel's endpoint challenge (eBay), answered by the
channel module when it has one.
"""

import logging

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.rls import account_scope

from .channels import ChannelError, WebhookRejected, WebhookReply, channel, specific_connection_model
from .models import ChannelConnection
from .services.sync import webhook_receive, webhooks_stopped_open

log = logging.getLogger(__name__)


def _reply(reply: WebhookReply) -> HttpResponse:
    if isinstance(reply.body, bytes | str):
        return HttpResponse(reply.body, status=reply.status)
    return JsonResponse(dict(reply.body), status=reply.status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def channel_webhook(request, channel: str, token: str):
    # Disabled connections still receive: a sale on a shop being disconnected must not be lost.
    # The channel's own connection row (with its secrets) and its account, in one query.
    try:
        model = specific_connection_model(channel)
    except LookupError as error:
        raise Http404("No such channel.") from error
    connection = get_object_or_404(
        # Whether a "webhooks stopped" alert is open comes in the same query, so a delivery
        # closes it without a statement when there is none (webhook_receive).
        model.objects.select_related("account").annotate(webhooks_stopped_open=webhooks_stopped_open()),
        channel=channel,
        webhook_token_digest=ChannelConnection.digest_of(token),
    )
    if request.method == "GET":
        return _challenge(request, connection)
    try:
        with account_scope(connection.account_id):
            outcome, created = webhook_receive(connection=connection, headers=request.headers, body=request.body)
    except WebhookRejected as error:
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=error.http_status)
    except ChannelError as error:
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=400)
    if isinstance(outcome, WebhookReply):
        return _reply(outcome)
    return HttpResponse(b"stored" if created else b"duplicate", status=200)


def _challenge(request, connection: ChannelConnection) -> HttpResponse:
    from .channels import specific_connection

    answer = getattr(channel(connection.channel), "webhook_challenge", None)
    if answer is None:
        return JsonResponse({"detail": "This channel delivers webhooks by POST only."}, status=405)
    try:
        reply = answer(specific_connection(connection), request.GET, request.build_absolute_uri(request.path))
    except WebhookRejected as error:
        return JsonResponse({"detail": str(error)}, status=error.http_status)
    return _reply(reply)
