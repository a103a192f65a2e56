"""The urgent-alert badge of the admin header: on every admin page for shop staff."""

from functools import partial

from django.urls import reverse

from .selectors import urgent_alert_count


def _badge(request) -> dict | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not getattr(user, "account_id", None):
        return None
    url = reverse("admin:inventory_alert_changelist") + "?state=open&severity__in=critical,high"
    return {"count": urgent_alert_count(user.account_id), "url": url}


def alert_badge(request) -> dict:
    """`alert_badge` is evaluated only by templates that show it (the admin's header): one COUNT on
    the open-alerts index at most every ALERT_BADGE_SECONDS per account, else the cache."""
    return {"alert_badge": partial(_badge, request)}
