"""POST /api/v1/auth/token/: a new hashed API token for a username and password."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import ApiTokenScope
from accounts.services import api_token_create


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    name = serializers.CharField(max_length=100, required=False, help_text="What the token is for.")
    scope = serializers.ChoiceField(choices=ApiTokenScope.choices, default=ApiTokenScope.READ_WRITE)


class ApiTokenObtainView(ObtainAuthToken):
    """DRF's token endpoint (same request, same `{"token": ...}` answer), but each call makes a new
    per-person token, stored hashed and listed (and revocable) in the admin under API tokens.
    Tokens are shown only here, once: the old endpoint handed back the same stored key every time.

    Throttled: DRF's ObtainAuthToken has none and its callers are anonymous, which the plan's rate
    limit does not count; each address gets `auth_token` attempts a minute (REST_FRAMEWORK
    DEFAULT_THROTTLE_RATES), and django-axes locks a username after repeated wrong passwords
    (accounts/lockout.py says what to do).
    """

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth_token"

    @extend_schema(
        request=TokenRequestSerializer,
        responses=inline_serializer(
            "ApiTokenIssued", {"token": serializers.CharField(), "scope": serializers.CharField()}
        ),
        summary="Make an API token for a username and password (shown once; send it as `Authorization: Token <key>`).",
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        try:
            return self._issue(request)
        finally:
            # The serializer authenticates with DRF's Request, so axes marks the lockout there;
            # its middleware looks at the Django request it was given.
            for name in ("axes_locked_out", "axes_credentials"):
                if name in request.__dict__:
                    setattr(request._request, name, request.__dict__[name])

    def _issue(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        options = TokenRequestSerializer(data=request.data)
        options.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        name = options.validated_data.get("name") or f"API login {timezone.now():%Y-%m-%d %H:%M}"
        _, key = api_token_create(user=user, name=name, scope=options.validated_data["scope"])
        return Response({"token": key, "scope": options.validated_data["scope"]})


api_token_obtain = ApiTokenObtainView.as_view()
