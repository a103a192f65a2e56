"""The webhook endpoint every channel posts to: /hooks/<channel>/<secret token>/.

It only identifies and stores the delivery (the inbox) and answers at once; a worker
processes it. An unknown token is a 404 and nothing is stored. A channel that signs its
deliveries rejects a bad or missing signature (WebhookRejected: its status, usually 401)
before anything is stored. A GET is a channel's endpoint challenge (eBay), answered by the
channel module when it has one.

Anyone holding a connection's URL can post to it (Reverb signs nothing), so a delivery is
bounded before it is parsed or stored: at most settings.WEBHOOK_MAX_BODY_BYTES (413), a
content type the channel sends (WEBHOOK_CONTENT_TYPES, JSON by default: 415), at most
settings.WEBHOOK_RATE_PER_MINUTE deliveries per connection per minute (429 with Retry-After;
the channels retry later), only the topics the channel declares (WEBHOOK_ACCEPTED_TOPICS: 400), and a
body nested too deeply to parse is a 400, never a 500.
"""

import logging
import time

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts.rls import account_scope
from config.cache import incr_with_ttl

from .channels import ChannelError, WebhookRejected, WebhookReply, channel
from .models import ChannelConnection
from .services.sync import connection_by_webhook_token, webhook_receive

log = logging.getLogger(__name__)

DEFAULT_CONTENT_TYPES = frozenset({"application/json"})
RATE_WINDOW_SECONDS = 60


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
        connection = connection_by_webhook_token(channel, token)
    except LookupError as error:
        raise Http404("No such channel.") from error
    if connection is None:
        raise Http404("No connection has this webhook address.")
    if request.method == "GET":
        return _challenge(request, connection)
    refused = _bounds_refusal(request, connection)
    if refused is not None:
        log.warning("refused webhook for %s: %s", connection, refused.content.decode()[:200])
        return refused
    try:
        with account_scope(connection.account_id):
            outcome, created = webhook_receive(connection=connection, headers=request.headers, body=request.body)
    except RecursionError:
        log.warning("rejected webhook for %s: JSON nested too deeply", connection)
        return JsonResponse({"detail": "The body's JSON is nested too deeply to read."}, status=400)
    except WebhookRejected as error:
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=error.http_status)
    except ChannelError as error:
        log.warning("rejected webhook for %s: %s", connection, error)
        return JsonResponse({"detail": str(error)}, status=400)
    if isinstance(outcome, WebhookReply):
        return _reply(outcome)
    return HttpResponse(b"stored" if created else b"duplicate", status=200)


def _bounds_refusal(request, connection: ChannelConnection) -> JsonResponse | None:
    """Why this delivery is refused before it is read, or None."""
    length = request.META.get("CONTENT_LENGTH") or ""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if (length.isdigit() and int(length) > limit) or len(request.body) > limit:
        return JsonResponse(
            {"detail": f"The body is larger than {limit} bytes, more than any delivery of this channel."}, status=413
        )
    allowed = getattr(channel(connection.channel), "WEBHOOK_CONTENT_TYPES", DEFAULT_CONTENT_TYPES)
    content_type = (request.content_type or "").lower()
    if content_type not in allowed:
        return JsonResponse(
            {
                "detail": f"Content-Type {content_type or '(none)'} is not accepted; send {' or '.join(sorted(allowed))}."
            },
            status=415,
        )
    rate = settings.WEBHOOK_RATE_PER_MINUTE
    if rate:
        now = time.time()
        key = f"webhooks:rpm:{connection.pk}:{int(now // RATE_WINDOW_SECONDS)}"
        if incr_with_ttl(key, RATE_WINDOW_SECONDS * 2) > rate:
            retry_after = max(1, int(RATE_WINDOW_SECONDS - now % RATE_WINDOW_SECONDS) + 1)
            response = JsonResponse(
                {"detail": f"More than {rate} deliveries this minute for this connection; retry in {retry_after} s."},
                status=429,
            )
            response["Retry-After"] = str(retry_after)
            return response
    return None


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
