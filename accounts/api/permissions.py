from rest_framework.permissions import BasePermission


class IsAccountMember(BasePermission):
    """Signed in and either a platform superuser or a member of a seller account."""

    message = "Sign in as a user that belongs to a seller account."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or user.account_id))
