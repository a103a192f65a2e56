"""The callback WooCommerce's grant flow posts the new key to (JSON), for one connection."""

import json
import logging

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .services import GrantRefused, grant_receive

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def grant_callback(request, connection_id: int):
    try:
        payload = json.loads(request.body or b"")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "The body is not JSON."}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"detail": "The body is not a JSON object."}, status=400)
    try:
        grant_receive(connection_id, payload)
    except GrantRefused as refusal:
        log.warning("refused a WooCommerce key grant for connection %s: %s", connection_id, refusal)
        return JsonResponse({"detail": str(refusal)}, status=403)
    return JsonResponse({"detail": "Keys stored."}, status=200)
