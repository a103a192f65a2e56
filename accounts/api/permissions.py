from rest_framework.permissions import BasePermission

from accounts.rls import request_scope


class IsAccountMember(BasePermission):
    """Signed in and either a platform superuser or a member of a seller account."""

    message = "Sign in as a user that belongs to a seller account."

    def has_permission(self, request, view) -> bool:
        user = request.user
        allowed = bool(user and user.is_authenticated and (user.is_superuser or user.account_id))
        if allowed:
            # The first point where DRF knows who a token belongs to: PostgreSQL's row-level security
            # shows only this account's rows from here on (accounts/rls.py).
            request_scope(request, user)
        return allowed
