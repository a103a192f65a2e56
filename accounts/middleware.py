"""The audit log's actor for a web request."""

from auditlog.middleware import AuditlogMiddleware
from django.contrib.auth import get_user_model
from django.utils.functional import SimpleLazyObject


class AuditActorMiddleware(AuditlogMiddleware):
    """django-auditlog's middleware, resolving the person when an entry is written, not when the
    request comes in: the API authenticates by token inside the view (DRF sets `request.user`
    then), so reading the user up front would record API changes as made by nobody."""

    @staticmethod
    def _get_actor(request):
        def person():
            user = getattr(request, "user", None)
            return user if isinstance(user, get_user_model()) and user.is_authenticated else None

        return SimpleLazyObject(person)
