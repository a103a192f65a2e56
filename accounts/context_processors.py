from django.conf import settings


def signup(request) -> dict:
    """Whether the public "Open a shop" sign-up is offered (ACCOUNTS_SIGNUP_OPEN)."""
    return {"signup_open": settings.ACCOUNTS_SIGNUP_OPEN}
