from rest_framework.permissions import SAFE_METHODS, BasePermission

from accounts.models import ApiToken, ApiTokenScope
from accounts.rls import request_scope
from accounts.roles import Capability, has_capability, refusal_message


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


def capability_for_request(request, view) -> str | None:
    """What this request takes: VIEW to read; to write, the view's `action_capabilities[action]` or
    its `write_capability`. None for a write the view declares nothing for (refused: fail closed)."""
    if request.method in SAFE_METHODS:
        return Capability.VIEW
    action = getattr(view, "action", None)
    per_action = getattr(view, "action_capabilities", {}) or {}
    if action in per_action:
        return per_action[action]
    return getattr(view, "write_capability", None)


class RoleAllowsAction(BasePermission):
    """The API's side of accounts.roles: the person's role must allow the request, and a read-only
    token may only read. A default permission class, so every API view is covered."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return True  # IsAccountMember answers for anonymous requests
        if (
            isinstance(request.auth, ApiToken)
            and request.auth.scope == ApiTokenScope.READ
            and request.method not in SAFE_METHODS
        ):
            self.message = "This API token is read only: make a read/write token in the admin under API tokens."
            return False
        capability = capability_for_request(request, view)
        if capability is None:
            self.message = "This endpoint declares no capability for changes, so nobody may change through it."
            return False
        if has_capability(user, capability):
            return True
        self.message = refusal_message(user, capability)
        return False
