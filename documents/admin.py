"""Printing from the admin: actions on the item and order lists, buttons on their pages,
and the shop's document settings.

The actions and buttons are added to the inventory admin through its extension point
(`ExtensibleAdmin.extend` in inventory/admin.py), so inventory does not import documents.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse

from accounts.admin import AccountScopedAdmin
from billing.errors import BillingError
from inventory.admin import ItemAdmin, OrderAdmin
from inventory.models import Item, Order

from .errors import DocumentError
from .models import DocumentSettings
from .responses import pdf_response
from .services import document_settings_for, labels_pdf, packing_slips_pdf, pick_list_pdf


def _site_url(request) -> str:
    return request.build_absolute_uri("/")


def _printed(modeladmin, request, make_pdf):
    """The PDF as a download, or the reason it cannot be printed as an error message on the list."""
    try:
        return pdf_response(make_pdf())
    except DocumentError as error:
        modeladmin.message_user(request, error.message, messages.ERROR)
        return None
    except BillingError as error:
        modeladmin.message_user(request, error.admin_html(), messages.ERROR)
        return None


@admin.action(description="Print storage labels", permissions=["view"])
def print_labels(modeladmin, request, queryset):
    return _printed(modeladmin, request, lambda: labels_pdf(queryset, fallback_site_url=_site_url(request)))


@admin.action(description="Print pick list", permissions=["view"])
def print_pick_list_for_items(modeladmin, request, queryset):
    return _printed(modeladmin, request, lambda: pick_list_pdf(items=queryset))


@admin.action(description="Print packing slips", permissions=["view"])
def print_packing_slips(modeladmin, request, queryset):
    return _printed(modeladmin, request, lambda: packing_slips_pdf(queryset))


@admin.action(description="Print pick list", permissions=["view"])
def print_pick_list_for_orders(modeladmin, request, queryset):
    return _printed(modeladmin, request, lambda: pick_list_pdf(orders=queryset))


ItemAdmin.extend(
    actions=[print_labels, print_pick_list_for_items],
    object_tools=[("Print label", "admin:documents_item_label")],
)
OrderAdmin.extend(
    actions=[print_packing_slips, print_pick_list_for_orders],
    object_tools=[
        ("Print packing slip", "admin:documents_order_packing_slip"),
        ("Print pick list", "admin:documents_order_pick_list"),
    ],
)


@admin.register(DocumentSettings)
class DocumentSettingsAdmin(AccountScopedAdmin):
    """The shop's letterhead and paper choices; one row per account, made on first use.

    Also serves the print buttons of the item and order pages (see `get_urls`).
    """

    list_display = ["account", "printed_shop_name", "paper_size", "label_format", "updated_at"]
    readonly_fields = ["account", "updated_at"]
    fieldsets = [
        (None, {"fields": ["account"]}),
        ("Letterhead on packing slips", {"fields": ["shop_name", "address", "contact", "logo"]}),
        ("Paper", {"fields": ["paper_size", "label_format"]}),
        ("Packing slips", {"fields": ["packing_slip_message"]}),
        ("Links", {"fields": ["site_url", "updated_at"]}),
    ]

    @admin.display(description="shop name")
    def printed_shop_name(self, obj):
        return obj.printed_shop_name

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        """Staff have exactly one row, their shop's: open it straight away."""
        if request.user.is_superuser or request.user.account_id is None:
            return super().changelist_view(request, extra_context)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        row = document_settings_for(request.user.account)
        return redirect("admin:documents_documentsettings_change", row.pk)

    def get_urls(self):
        own = [
            path(
                "print/item/<int:item_id>/label/",
                self.admin_site.admin_view(self.item_label_view),
                name="documents_item_label",
            ),
            path(
                "print/order/<int:order_id>/packing-slip/",
                self.admin_site.admin_view(self.order_packing_slip_view),
                name="documents_order_packing_slip",
            ),
            path(
                "print/order/<int:order_id>/pick-list/",
                self.admin_site.admin_view(self.order_pick_list_view),
                name="documents_order_pick_list",
            ),
        ]
        return own + super().get_urls()

    def _print_one(self, request, model, pk, make_pdf):
        """A print button: the object must be in the user's account (404 otherwise, as for any other id)."""
        if not request.user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}"):
            raise PermissionDenied
        scoped = model.objects.for_user(request.user).filter(pk=pk)
        get_object_or_404(scoped)
        try:
            return pdf_response(make_pdf(scoped), inline=True)
        except (DocumentError, BillingError) as error:
            text = error.admin_html() if isinstance(error, BillingError) else error.message
            self.message_user(request, text, messages.ERROR)
            return HttpResponseRedirect(
                reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
            )

    def item_label_view(self, request, item_id: int):
        return self._print_one(
            request, Item, item_id, lambda items: labels_pdf(items, fallback_site_url=_site_url(request))
        )

    def order_packing_slip_view(self, request, order_id: int):
        return self._print_one(request, Order, order_id, packing_slips_pdf)

    def order_pick_list_view(self, request, order_id: int):
        return self._print_one(request, Order, order_id, lambda orders: pick_list_pdf(orders=orders))
