"""Billing endpoints, scoped to the signed-in user's account. They work on every plan (see
your usage, upgrade) and never take an account id, so no account can reach another's."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import Capability

from ..selectors import billing_overview, billing_state_forget, invoice_list, plans_for_sale
from ..services import checkout_start, plan_change, portal_start, subscription_cancel
from . import serializers as s

REFUSED = OpenApiResponse(description="Not possible in the subscription's state (the body says what to do).")
STRIPE_DOWN = OpenApiResponse(description="Stripe could not be reached; nothing changed.")


class BillingView(APIView):
    write_capability = Capability.BILLING  # accounts.roles: what changing through it takes
    billing_always_allowed = True  # see billing.api.permissions.PlanIncludesApi

    def account(self):
        account = self.request.user.account
        if account is None:
            raise ValidationError(
                {"account": ["Platform superusers have no account; sign in as a user of the seller account."]}
            )
        return account

    def managed_account(self):
        account = self.account()
        if not self.request.user.has_perm("billing.manage_billing"):
            raise PermissionDenied("You may not change this account's billing; ask the account owner.")
        return account

    def default_return_url(self) -> str:
        return self.request.build_absolute_uri(reverse("admin:billing_account_billing"))


class BillingOverviewView(BillingView):
    @extend_schema(responses=s.BillingOverviewSerializer, operation_id="billing_overview")
    def get(self, request):
        """The current plan, status, and usage against the limits that apply now."""
        return Response(s.BillingOverviewSerializer(billing_overview(self.account())).data)


class PlanListView(BillingView):
    @extend_schema(responses=s.PlanSerializer(many=True), operation_id="billing_plans")
    def get(self, request):
        """The plans on sale, cheapest first."""
        return Response(s.PlanSerializer(plans_for_sale(), many=True).data)


class CheckoutView(BillingView):
    @extend_schema(
        request=s.CheckoutInputSerializer,
        responses={200: s.RedirectSerializer, 409: REFUSED, 502: STRIPE_DOWN},
        operation_id="billing_checkout",
    )
    def post(self, request):
        """Start Stripe Checkout for a paid plan; answers the URL of the payment page."""
        account = self.managed_account()
        data = s.CheckoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        page = self.default_return_url()
        url = checkout_start(
            account=account,
            plan=data.validated_data["plan"],
            user=request.user,
            success_url=data.validated_data.get("success_url") or f"{page}?checkout=done",
            cancel_url=data.validated_data.get("cancel_url") or f"{page}?checkout=cancelled",
        )
        return Response({"url": url})


class PortalView(BillingView):
    @extend_schema(
        request=s.PortalInputSerializer,
        responses={200: s.RedirectSerializer, 409: REFUSED, 502: STRIPE_DOWN},
        operation_id="billing_portal",
    )
    def post(self, request):
        """A Stripe Billing Portal session (payment method, invoices, cancel); answers its URL."""
        account = self.managed_account()
        data = s.PortalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        url = portal_start(
            account=account, return_url=data.validated_data.get("return_url") or self.default_return_url()
        )
        return Response({"url": url})


class ChangePlanView(BillingView):
    @extend_schema(
        request=s.PlanChoiceSerializer,
        responses={200: s.BillingOverviewSerializer, 409: REFUSED, 502: STRIPE_DOWN},
        operation_id="billing_change_plan",
    )
    def post(self, request):
        """Switch a paid subscription to another paid plan now, prorated. Warns if usage is above the new limits."""
        account = self.managed_account()
        data = s.PlanChoiceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = plan_change(account=account, plan=data.validated_data["plan"], user=request.user, source="api")
        billing_state_forget(account.pk)
        overview = {**billing_overview(account), "warnings": result.warnings}
        return Response(s.BillingOverviewSerializer(overview).data)


class CancelView(BillingView):
    @extend_schema(
        request=None,
        responses={200: s.BillingOverviewSerializer, 409: REFUSED, 502: STRIPE_DOWN},
        operation_id="billing_cancel",
    )
    def post(self, request):
        """Cancel at the end of the paid period. Nothing is delisted afterwards."""
        account = self.managed_account()
        subscription_cancel(account=account, user=request.user, source="api")
        return Response(s.BillingOverviewSerializer(billing_overview(account)).data)


class InvoiceListView(BillingView):
    @extend_schema(responses={200: s.InvoiceSerializer(many=True), 502: STRIPE_DOWN}, operation_id="billing_invoices")
    def get(self, request):
        """The account's latest invoices, read from Stripe."""
        return Response(s.InvoiceSerializer(invoice_list(self.account()), many=True).data)
