"""Orders in the admin: where each one is (in words), its SKUs and shop, and marking it shipped."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import AccountScopedAdmin

from .admin import ExtensibleAdmin, ReadOnlyInline, admin_actor, plural
from .errors import InventoryError
from .models import ChannelConnection, Order, OrderLine, OrderStatus
from .pagination import LargeTablePaginator
from .selectors import orders_to_ship
from .services import order_cancel, order_complete, order_ship
from .services.orders import shipment_push_supported


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = readonly_fields = ["item", "sku", "title", "quantity", "unit_price"]

    def has_view_permission(self, request, obj=None):
        return True


class ShopFilter(admin.SimpleListFilter):
    """The account's shops by name (a connection's name says which shop it is)."""

    title = "shop"
    parameter_name = "shop"
    lookup = "connection_id"

    def lookups(self, request, model_admin):
        return list(
            ChannelConnection.objects.for_user(request.user).order_by("priority", "pk").values_list("pk", "name")
        )

    def queryset(self, request, queryset):
        if self.value() and str(self.value()).isdigit():
            return queryset.filter(**{self.lookup: int(self.value())})
        return queryset


class OrderProgressFilter(admin.SimpleListFilter):
    """Where an order is, in the words of the packing table."""

    title = "progress"
    parameter_name = "progress"

    def lookups(self, request, model_admin):
        return [
            ("sales", "Sales (not cancelled, not a lost double sale)"),
            ("to_ship", "Paid, to ship"),
            ("awaiting_payment", "Reserved, awaiting payment"),
            ("shipped", "Shipped"),
            ("cancelled", "Cancelled"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "sales":  # what the analytics count as sales
            return queryset.exclude(status=OrderStatus.CANCELLED).exclude(conflict__status="open")
        if value == "to_ship":
            return orders_to_ship(queryset)
        if value == "awaiting_payment":
            return queryset.filter(status=OrderStatus.OPEN)
        if value == "shipped":
            return queryset.filter(shipped_at__isnull=False).exclude(status=OrderStatus.CANCELLED)
        if value == "cancelled":
            return queryset.filter(status=OrderStatus.CANCELLED)
        return queryset


def order_progress(order) -> tuple[str, str]:
    """(word, colour): "Completed" means paid and stock committed, which is not yet shipped."""
    if order.status == OrderStatus.CANCELLED:
        return "Cancelled", "#777"
    conflict = getattr(order, "conflict", None)  # the losing side of a double sale
    if conflict is not None and conflict.status == "open":
        return "Double sale: cancel", "#c33"
    if order.status == OrderStatus.OPEN:
        return "Awaiting payment", "#c90"
    if order.shipped_at is None:
        return "Paid, to ship", "#c60"
    return "Shipped", "#2a7"


class OrderShipForm(forms.Form):
    carrier = forms.CharField(max_length=60, help_text="e.g. UPS, DHL, USPS, Royal Mail.")
    tracking_number = forms.CharField(max_length=100, required=False)


@admin.register(Order)
class OrderAdmin(ExtensibleAdmin, AccountScopedAdmin):
    list_display = ["order_ref", "placed", "progress", "skus", "buyer", "total_display"]
    list_display_links = ["order_ref"]
    list_filter = [OrderProgressFilter, ShopFilter]
    search_fields = ["external_id", "buyer_name", "buyer_email", "lines__sku", "tracking_number"]
    search_help_text = "Search by order number, buyer, SKU or tracking number."
    date_hierarchy = "placed_at"
    readonly_fields = [
        "shop",
        "external_id",
        "progress",
        "placed_at",
        "shipment",
        "created_at",
        "updated_at",
    ]
    inlines = [OrderLineInline]
    list_per_page = 50
    show_full_result_count = False
    paginator = LargeTablePaginator
    actions = ["complete_orders", "cancel_orders"]
    change_form_template = "admin/inventory/order/change_form.html"
    empty_hint = "Orders from every shop, and those recorded through the API, appear here as they are placed."

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("connection", "conflict").prefetch_related("lines")

    fieldsets = [
        (None, {"fields": [("shop", "external_id"), ("progress", "placed_at"), "shipment"]}),
        (
            "Buyer and shipping address",
            {
                "fields": [
                    ("buyer_name", "buyer_email"),
                    "ship_name",
                    "ship_line1",
                    "ship_line2",
                    ("ship_city", "ship_region"),
                    ("ship_postal_code", "ship_country"),
                ]
            },
        ),
        ("Money", {"fields": [("subtotal", "shipping", "tax", "total"), "currency"]}),
        ("Note", {"fields": ["note"]}),
        ("Dates", {"classes": ["collapse"], "fields": ["channel_updated_at", "created_at", "updated_at"]}),
    ]

    def has_delete_permission(self, request, obj=None):
        # An order is the record of a sale: it is cancelled (stock back), never deleted.
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra = {}
        if order is not None:
            shop = order.connection.name if order.connection_id else order.channel
            extra["title"] = f"Order #{order.external_id} on {shop}"
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def has_add_permission(self, request):
        # Orders come from channels and the API, which reserve stock as they are recorded.
        return False

    @admin.display(description="order", ordering="external_id")
    def order_ref(self, order):
        shop = order.connection.name if order.connection_id else order.channel
        return format_html('{} <span class="order-number">#{}</span>', shop, order.external_id)

    @admin.display(description="shop")
    def shop(self, order):
        return order.connection.name if order.connection_id else order.channel

    @admin.display(description="buyer", ordering="buyer_name")
    def buyer(self, order):
        country = f" ({order.ship_country})" if order.ship_country else ""
        return f"{order.buyer_name or '-'}{country}"

    @admin.display(description="placed", ordering="placed_at")
    def placed(self, order):
        return formats.date_format(timezone.localtime(order.placed_at), "j M Y, H:i")

    @admin.display(description="progress", ordering="status")
    def progress(self, order):
        word, colour = order_progress(order)
        return format_html('<span style="color:{}">{}</span>', colour, word)

    @admin.display(description="SKUs")
    def skus(self, order):
        skus = [line.sku for line in order.lines.all()]
        shown = format_html_join(mark_safe("<br>"), "{}", ((sku,) for sku in skus[:2]))
        more = f" +{len(skus) - 2}" if len(skus) > 2 else ""
        return format_html('<span title="{}">{}{}</span>', ", ".join(skus), shown, more)

    @admin.display(description="total", ordering="total")
    def total_display(self, order):
        return f"{intcomma(order.total)}\N{NO-BREAK SPACE}{order.currency}"

    @admin.display(description="shipment")
    def shipment(self, order):
        if order.shipped_at is None:
            return "not shipped"
        when = formats.date_format(timezone.localtime(order.shipped_at), "j M Y, H:i")
        tracking = f", tracking {order.tracking_number}" if order.tracking_number else ""
        return f"{when} with {order.carrier}{tracking}"

    def get_urls(self):
        own = [
            path("<int:order_id>/ship/", self.admin_site.admin_view(self.ship_view), name="inventory_order_ship"),
        ]
        return own + super().get_urls()

    def ship_view(self, request, order_id: int):
        """Mark one order shipped: carrier and tracking (order_ship)."""
        order = get_object_or_404(self.get_queryset(request), pk=order_id)
        if not self.has_change_permission(request, order):
            raise PermissionDenied
        form = OrderShipForm(
            request.POST or None, initial={"carrier": order.carrier, "tracking_number": order.tracking_number}
        )
        if request.method == "POST" and form.is_valid():
            try:
                shipped = order_ship(
                    order_id=order.pk,
                    actor=admin_actor(request),
                    carrier=form.cleaned_data["carrier"],
                    tracking_number=form.cleaned_data["tracking_number"],
                )
            except InventoryError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                pushed = (
                    "the tracking is being sent to the shop"
                    if shipment_push_supported(shipped)
                    else "enter the tracking on the shop too (it cannot be sent from here yet)"
                    if shipped.connection_id
                    else "recorded here"
                )
                self.message_user(
                    request,
                    f"Order #{shipped.external_id} marked shipped with {shipped.carrier}; {pushed}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:inventory_order_change", args=[order.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Mark order #{order.external_id} shipped",
            "order": order,
            "form": form,
            "opts": self.model._meta,
            "progress": order_progress(order)[0],
        }
        return TemplateResponse(request, "admin/inventory/order/ship.html", context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_ship"] = obj.status == OrderStatus.COMPLETED
            context["ship_url"] = reverse("admin:inventory_order_ship", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _run(self, request, queryset, operation, verb):
        done, failed = 0, []
        for order in queryset.order_by("pk"):
            try:
                operation(order_id=order.pk, actor=admin_actor(request))
                done += 1
            except InventoryError as error:
                failed.append(f"{order}: {error.message}")
        self.message_user(request, f"{plural(done, 'order')} {verb}.", messages.SUCCESS)
        if failed:
            self.message_user(request, "Not " + verb + ": " + "; ".join(failed), messages.WARNING)

    @admin.action(description="Mark paid (commit stock)", permissions=["change"])
    def complete_orders(self, request, queryset):
        self._run(request, queryset, order_complete, "marked paid")

    @admin.action(description="Cancel (release or return stock)", permissions=["change"])
    def cancel_orders(self, request, queryset):
        self._run(request, queryset, order_cancel, "cancelled")
