"""Self-service sign-up of a new shop through django-allauth: its form and adapter.

allauth does the flows (sign-up, e-mail confirmation, login, password reset); this module only
adds the shop's name and makes the new person the owner of a new account on the FREE plan.
Sign-up is switched off with ACCOUNTS_SIGNUP_OPEN=false (a single-shop install); invitations
(accounts.services.user_invite) work either way.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.forms import SignupForm
from django import forms
from django.conf import settings
from django.db import transaction

from .services import account_sign_up, staff_group_sync


class ShopSignupForm(SignupForm):
    """allauth's sign-up form (e-mail, password twice) with the shop's name first."""

    shop_name = forms.CharField(
        max_length=200,
        label="Shop name",
        widget=forms.TextInput(attrs={"placeholder": "e.g. Blue Note Guitars", "autocomplete": "organization"}),
    )
    field_order = ["shop_name", "email", "password1", "password2"]


class ShopAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return settings.ACCOUNTS_SIGNUP_OPEN

    @transaction.atomic
    def save_user(self, request, user, form, commit=True):
        # The account is made before the user is saved: every user but a superuser has one (a
        # database constraint).
        user = super().save_user(request, user, form, commit=False)
        account_sign_up(user=user, shop_name=form.cleaned_data["shop_name"])
        if commit:
            user.save()
            user.groups.add(staff_group_sync())
            self._start_on_free_plan(user)
        return user

    @staticmethod
    def _start_on_free_plan(user) -> None:
        from billing.models import PlanCode  # billing builds on accounts: imported late
        from billing.services.plans import plan_assign, plan_get

        # Explicitly FREE, whatever BILLING_DEFAULT_PLAN a single-shop install uses for its own account.
        plan_assign(account=user.account, plan=plan_get(PlanCode.FREE), user=user, source="sign-up")
