"""POST /api/v1/auth/token/: DRF's token login, throttled.

DRF's ObtainAuthToken has no throttle and its callers are anonymous, which the plan's rate
limit does not count; here each address gets `auth_token` attempts per minute (settings
REST_FRAMEWORK DEFAULT_THROTTLE_RATES). django-axes locks a username after repeated wrong
passwords on top of that (accounts/lockout.py says what to do).
"""

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.throttling import ScopedRateThrottle


class ThrottledObtainAuthToken(ObtainAuthToken):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth_token"

    def post(self, request, *args, **kwargs):
        try:
            return super().post(request, *args, **kwargs)
        finally:
            # The serializer authenticates with DRF's Request, so axes marks the lockout there;
            # its middleware looks at the Django request it was given.
            for name in ("axes_locked_out", "axes_credentials"):
                if name in request.__dict__:
                    setattr(request._request, name, request.__dict__[name])


obtain_auth_token = ThrottledObtainAuthToken.as_view()
