"""API access is a plan feature: accounts whose plan does not include it get 402 with the upgrade."""

from rest_framework.permissions import BasePermission

from ..gates import feature_refusal
from ..models import Feature
from ..selectors import billing_state_cached


class PlanIncludesApi(BasePermission):
    """Refuses (HTTP 402) API calls of accounts whose current plan has no API access.

    Views that must work on every plan (the billing endpoints: see your usage, upgrade)
    set `billing_always_allowed = True`. Platform superusers are not limited.
    """

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated) or user.is_superuser or not user.account_id:
            return True  # IsAccountMember decides about these
        if getattr(view, "billing_always_allowed", False):
            return True
        state = billing_state_cached(user.account_id)
        if state.plan.api_access:
            return True
        raise feature_refusal(state, Feature.API_ACCESS)
