"""Billing in the admin: each account's billing page, and the billing tables for platform staff.

Shop staff see one page: their plan, status, usage against limits, invoices, and the
buttons to upgrade, manage payment or cancel (with the `billing.manage_billing`
permission). Platform superusers browse and edit plans, and browse subscriptions,
usage, overage reports and Stripe events.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from accounts.models import Account

from .errors import BillingError
from .models import OverageReport, Plan, StripeEvent, Subscription, SubscriptionChange, UsagePeriod
from .selectors import billing_overview, billing_state_forget, invoice_list, plans_for_sale
from .services import (
    checkout_start,
    plan_change,
    portal_start,
    stripe_event_process,
    subscription_cancel,
    subscription_sync,
)


class PlatformOnlyAdmin(admin.ModelAdmin):
    """Visible to platform superusers only."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Plan)
class PlanAdmin(PlatformOnlyAdmin):
    list_display = [
        "name",
        "code",
        "is_public",
        "monthly_price",
        "currency",
        "max_active_listings",
        "max_channels",
        "max_staff_users",
        "api_access",
        "api_requests_per_minute",
        "bulk_operations",
        "stripe_price_id",
    ]
    ordering = ["position"]
    fieldsets = [
        (None, {"fields": ["code", "name", "description", "position", "is_public"]}),
        ("Price", {"fields": [("monthly_price", "currency"), "stripe_price_id"]}),
        ("Limits (empty: unlimited)", {"fields": ["max_active_listings", "max_channels", "max_staff_users"]}),
        ("Features", {"fields": ["bulk_operations", "listing_import", "pdf_documents", "analytics", "api_access"]}),
        ("API", {"fields": ["api_requests_per_minute"]}),
        (
            "Listings above the limit (metered)",
            {"fields": ["overage_meter_event_name", "stripe_overage_price_id", "overage_price_per_listing_day"]},
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        # The code is what the product refers to (free, admin): fixed once the plan exists.
        return ["code"] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.message_user(request, "Accounts' cached plans refresh within a minute.", messages.INFO)


class SubscriptionChangeInline(admin.TabularInline):
    model = SubscriptionChange
    fk_name = "subscription"
    extra = 0
    can_delete = False
    fields = readonly_fields = ["created_at", "from_plan", "to_plan", "from_status", "to_status", "source", "user"]
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Subscription)
class SubscriptionAdmin(PlatformOnlyAdmin):
    """Platform staff: every account's subscription. Shop staff: the link to their billing page."""

    list_display = [
        "account",
        "plan",
        "status",
        "current_period_end",
        "cancel_at_period_end",
        "past_due_since",
        "stripe_customer_id",
        "stripe_subscription_id",
        "synced_at",
        "billing_page",
    ]
    list_filter = ["status", "plan", "cancel_at_period_end"]
    search_fields = ["account__name", "account__slug", "stripe_customer_id", "stripe_subscription_id"]
    list_select_related = ["account", "plan"]
    readonly_fields = [f.name for f in Subscription._meta.fields]
    inlines = [SubscriptionChangeInline]
    actions = ["resync_from_stripe"]

    def has_module_permission(self, request):
        # The login page builds the app list for AnonymousUser too, which has no account_id.
        return request.user.is_superuser or bool(getattr(request.user, "account_id", None))

    def has_view_permission(self, request, obj=None):
        # Shop staff reach the list and rows only to be sent to their own billing page.
        if request.user.is_superuser:
            return True
        return bool(request.user.account_id) and (obj is None or obj.account_id == request.user.account_id)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(account_id=request.user.account_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:billing_account_billing"))
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="billing page")
    def billing_page(self, subscription):
        url = reverse("admin:billing_account_billing_for", args=[subscription.account_id])
        return format_html('<a href="{}">open</a>', url)

    @admin.action(description="Re-read from Stripe")
    def resync_from_stripe(self, request, queryset):
        for subscription in queryset.exclude(stripe_subscription_id=""):
            try:
                outcome = subscription_sync(
                    stripe_subscription_id=subscription.stripe_subscription_id,
                    customer_id=subscription.stripe_customer_id,
                    source=f"admin re-read by {request.user.username}",
                )
                self.message_user(request, outcome.text, messages.SUCCESS)
            except BillingError as error:
                self.message_user(request, f"{subscription.account}: {error.message}", messages.ERROR)

    def changelist_view(self, request, extra_context=None):
        if not request.user.is_superuser:
            return HttpResponseRedirect(reverse("admin:billing_account_billing"))
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        own = [
            path("account/", view(self.billing_view), name="billing_account_billing"),
            path("account/<int:account_id>/", view(self.billing_view), name="billing_account_billing_for"),
            path("account/checkout/", view(require_POST(self.checkout_view)), name="billing_account_checkout"),
            path("account/portal/", view(require_POST(self.portal_view)), name="billing_account_portal"),
            path("account/change-plan/", view(require_POST(self.change_plan_view)), name="billing_account_change"),
            path("account/cancel/", view(require_POST(self.cancel_view)), name="billing_account_cancel"),
        ]
        return own + super().get_urls()

    # --- The account's billing page --------------------------------------------------------

    def _page_account(self, request, account_id: int | None) -> Account:
        user = request.user
        if account_id is None:
            if user.account_id is None:
                raise Http404("Platform superusers open an account's billing page from Billing > Subscriptions.")
            return user.account
        if not user.is_superuser and account_id != user.account_id:
            raise Http404("No such account.")  # another account's page looks like a missing one
        return get_object_or_404(Account, pk=account_id)

    def billing_view(self, request, account_id: int | None = None):
        account = self._page_account(request, account_id)
        overview = billing_overview(account)
        invoices, invoices_error = [], ""
        try:
            invoices = invoice_list(account)
        except BillingError as error:
            invoices_error = error.message
        state = overview["state"]
        can_manage = account.pk == request.user.account_id and request.user.has_perm("billing.manage_billing")
        plans = []
        for plan in plans_for_sale():
            if plan.pk == state.subscribed_plan.pk and not state.restriction:
                action = "current"
            elif plan.code == "free":
                action = "cancel" if state.has_live_stripe_subscription else "none"
            elif state.has_live_stripe_subscription:
                action = "change"
            else:
                action = "checkout"
            # Moving to a smaller plan than the one in force is not an upgrade, whatever the way there.
            plans.append({"plan": plan, "action": action, "downgrade": plan.position < state.subscribed_plan.position})
        context = {
            **self.admin_site.each_context(request),
            "title": f"Billing: {account.name}",
            "opts": self.model._meta,
            "account": account,
            "overview": overview,
            "state": state,
            "plans": plans,
            "invoices": invoices,
            "invoices_error": invoices_error,
            "can_manage": can_manage,
            "changes": SubscriptionChange.objects.filter(account=account).select_related("from_plan", "to_plan")[:10],
        }
        return TemplateResponse(request, "admin/billing/account_billing.html", context)

    def _acting_account(self, request) -> Account:
        if request.user.account_id is None:
            raise PermissionDenied("Sign in as a user of the seller account to change its billing.")
        if not request.user.has_perm("billing.manage_billing"):
            raise PermissionDenied("You may not change this account's billing; ask the account owner.")
        return request.user.account

    def _back(self):
        return HttpResponseRedirect(reverse("admin:billing_account_billing"))

    def _plan_from(self, request) -> Plan | None:
        return Plan.objects.filter(code=request.POST.get("plan", ""), is_public=True).first()

    def checkout_view(self, request):
        account = self._acting_account(request)
        plan = self._plan_from(request)
        if plan is None:
            self.message_user(request, "Choose one of the plans on sale.", messages.ERROR)
            return self._back()
        page = request.build_absolute_uri(reverse("admin:billing_account_billing"))
        try:
            url = checkout_start(
                account=account,
                plan=plan,
                user=request.user,
                success_url=f"{page}?checkout=done",
                cancel_url=f"{page}?checkout=cancelled",
            )
        except BillingError as error:
            self.message_user(request, error.message, messages.ERROR)
            return self._back()
        return HttpResponseRedirect(url)

    def portal_view(self, request):
        account = self._acting_account(request)
        page = request.build_absolute_uri(reverse("admin:billing_account_billing"))
        try:
            url = portal_start(account=account, return_url=page)
        except BillingError as error:
            self.message_user(request, error.message, messages.ERROR)
            return self._back()
        return HttpResponseRedirect(url)

    def change_plan_view(self, request):
        account = self._acting_account(request)
        plan = self._plan_from(request)
        if plan is None:
            self.message_user(request, "Choose one of the plans on sale.", messages.ERROR)
            return self._back()
        try:
            result = plan_change(account=account, plan=plan, user=request.user, source="admin")
        except BillingError as error:
            self.message_user(request, error.message, messages.ERROR)
            return self._back()
        self.message_user(request, f"You are now on {result.subscription.plan.name}.", messages.SUCCESS)
        for warning in result.warnings:
            self.message_user(request, warning, messages.WARNING)
        return self._back()

    def cancel_view(self, request):
        account = self._acting_account(request)
        try:
            subscription = subscription_cancel(account=account, user=request.user, source="admin")
        except BillingError as error:
            self.message_user(request, error.message, messages.ERROR)
            return self._back()
        until = f" until {subscription.current_period_end:%Y-%m-%d}" if subscription.current_period_end else ""
        self.message_user(
            request,
            f"Cancelled: {subscription.plan.name} stays{until}, then the Free plan's limits apply. "
            "Nothing is delisted.",
            messages.SUCCESS,
        )
        billing_state_forget(account.pk)
        return self._back()


@admin.register(UsagePeriod)
class UsagePeriodAdmin(PlatformOnlyAdmin):
    list_display = [
        "account",
        "period_start",
        "period_end",
        "peak_active_listings",
        "peak_channels",
        "api_requests",
        "orders_imported",
        "sync_runs",
        "pdfs_generated",
        "updated_at",
    ]
    list_select_related = ["account"]
    search_fields = ["account__name", "account__slug"]
    date_hierarchy = "period_start"


@admin.register(OverageReport)
class OverageReportAdmin(PlatformOnlyAdmin):
    list_display = ["account", "day", "active_listings", "included_listings", "quantity", "sent_at", "last_error"]
    list_filter = [("sent_at", admin.EmptyFieldListFilter)]
    list_select_related = ["account"]
    search_fields = ["account__name", "identifier"]


@admin.register(StripeEvent)
class StripeEventAdmin(PlatformOnlyAdmin):
    list_display = ["stripe_id", "type", "account", "received_at", "processed_at", "attempts", "outcome", "last_error"]
    list_filter = ["type", ("processed_at", admin.EmptyFieldListFilter)]
    search_fields = ["stripe_id", "outcome"]
    list_select_related = ["account"]
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["process_again"]

    @admin.action(description="Process now (unprocessed events only)")
    def process_again(self, request, queryset):
        done = 0
        for event_id in queryset.filter(processed_at__isnull=True).values_list("pk", flat=True):
            event = stripe_event_process(event_id)
            done += bool(event and event.processed_at)
        self.message_user(request, f"{done} event{'' if done == 1 else 's'} processed.", messages.SUCCESS)


@admin.register(SubscriptionChange)
class SubscriptionChangeAdmin(PlatformOnlyAdmin):
    list_display = ["created_at", "account", "from_plan", "to_plan", "from_status", "to_status", "source", "user"]
    list_filter = ["to_status", "to_plan"]
    list_select_related = ["account", "from_plan", "to_plan", "user"]
    search_fields = ["account__name", "source"]
