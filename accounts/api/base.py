"""The base every account-owned API view uses, so scoping is written once."""

from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from accounts.models import Account


class AccountScopedViewSetMixin:
    """Limits every queryset (list, detail, actions, filters, exports) to the user's account."""

    def get_queryset(self):
        return super().get_queryset().for_user(self.request.user)

    def get_account(self) -> Account:
        """The account a write acts for. Platform superusers must use an account's login."""
        account = self.request.user.account
        if account is None:
            raise ValidationError(
                {"account": ["Platform superusers have no account; sign in as a user of the seller account."]}
            )
        return account


class AccountScopedModelViewSet(AccountScopedViewSetMixin, viewsets.ModelViewSet):
    pass


class AccountScopedReadOnlyViewSet(AccountScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass
