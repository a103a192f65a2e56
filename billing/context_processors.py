"""The payment banner of the admin: shown on every page while a payment is owed."""

from functools import partial

from .selectors import banner_for


def _banner(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return banner_for(user.account_id)


def billing_banner(request) -> dict:
    """`billing_banner` is evaluated only by templates that show it (the admin's base), and
    reads the cache only: admin pages get no extra query."""
    return {"billing_banner": partial(_banner, request)}
