"""API authentication by a person's hashed token (accounts.ApiToken)."""

from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import ApiToken, api_token_digest

# Writing last_used_at on every request would make each GET a write; once a minute is enough to
# tell a token in use from a forgotten one.
LAST_USED_RESOLUTION_SECONDS = 60


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, the header DRF's token authentication reads, so clients keep
    working; the key is looked up by its SHA-256 digest and `request.auth` is the ApiToken."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        token = ApiToken.objects.select_related("user", "user__account").filter(digest=api_token_digest(key)).first()
        if token is None or token.revoked_at is not None:
            raise AuthenticationFailed("Invalid or revoked token: make a new one in the admin under API tokens.")
        if not token.user.is_active:
            raise AuthenticationFailed("This token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_RESOLUTION_SECONDS:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return token.user, token
