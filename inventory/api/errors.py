"""Turns service refusals into structured API errors that say what to do."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from billing.errors import BillingError
from inventory.errors import InventoryError


def exception_handler(exc, context):
    if isinstance(exc, InventoryError):
        return Response({"code": exc.code, "detail": exc.message, **exc.details}, status=exc.status)
    if isinstance(exc, BillingError):
        # 402 when the plan does not allow it (the body names the limit, the usage and the plan that lifts it).
        response = Response({"code": exc.code, "detail": exc.message, **exc.details}, status=exc.status)
        if exc.details.get("retry_after"):
            response["Retry-After"] = str(exc.details["retry_after"])
        return response
    if isinstance(exc, DjangoValidationError):
        return Response(as_serializer_error(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ProtectedError):
        return Response(
            {
                "code": "protected",
                "detail": "This row is referenced by orders or the stock ledger and cannot be deleted; archive it instead.",
            },
            status=status.HTTP_409_CONFLICT,
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        # DRF's {"detail": ...} (not found, not signed in, malformed JSON, throttled...) gets its
        # code too, so every refusal has the documented Error shape (config/openapi.py).
        response.data.setdefault("code", getattr(response.data["detail"], "code", None) or "error")
    return response
