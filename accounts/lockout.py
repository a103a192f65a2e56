"""What a person locked out by django-axes (too many wrong passwords) is told: what to do next."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape


def lockout_message() -> str:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return (
        f"Too many wrong passwords for this user from your address: signing in is blocked for {minutes} minutes. "
        f"Wait and try again, or reset your password; an administrator can unlock you now "
        f"(Access attempts in the admin, or `manage.py axes_reset_username <username>`)."
    )


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; JSON for the API, a plain page for the admin."""
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "login_locked", "detail": lockout_message()}, status=429)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Sign-in blocked</title><h1>Sign-in blocked</h1><p>{escape(lockout_message())}</p>",
            status=429,
        )
    response["Retry-After"] = retry_after
    return response
