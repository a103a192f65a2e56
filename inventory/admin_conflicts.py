"""Double sales, edits made on a channel, and alerts in the admin: what staff settle and acknowledge."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from accounts.admin import AccountScopedAdmin

from .admin import ReadOnlyAdmin, admin_actor, plural
from .admin_channels import CONFLICT_TABLE_HEAD, money, order_shop, when
from .admin_orders import order_progress
from .errors import InventoryError
from .models import Alert, Conflict, ConflictKind, ConflictStatus
from .selectors import alert_shops
from .services.alerts import alerts_acknowledge, alerts_resolve, conflict_settle, conflicts_resolve
from .services.edits import field_edit_settle


def _order_line(order) -> str:
    if order is None:
        return "-"
    return format_html('{} <span class="order-number">#{}</span>', order_shop(order), order.external_id)


@admin.register(Conflict)
class ConflictAdmin(AccountScopedAdmin):
    list_display = ["created", "item_sku", "item_title", "winner", "loser", "status"]
    list_display_links = ["created", "item_sku"]
    list_filter = ["status", "kind"]
    search_fields = ["item__sku", "item__title", "winning_order__external_id", "losing_order__external_id"]
    search_help_text = "Search by SKU, title or either order number."
    list_select_related = ["item", "winning_order__connection", "losing_order__connection", "listing__connection"]
    readonly_fields = ["item_link", "side_by_side", "status", "created", "resolved_at", "resolved_by"]
    fields = ["item_link", "side_by_side", "status", "note", "created", "resolved_at", "resolved_by"]
    actions = ["mark_resolved"]
    change_form_template = "admin/inventory/conflict/change_form.html"
    empty_hint = (
        "No double sales. When one item sells on two shops before it could be ended on the second, "
        "both orders are kept and shown here side by side, so you can cancel one. Nothing here is good news."
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a double sale is settled, never deleted: it is the record of what happened

    @admin.display(description="when", ordering="created_at")
    def created(self, conflict):
        return when(conflict.created_at)

    @admin.display(description="SKU", ordering="item__sku")
    def item_sku(self, conflict):
        return conflict.item.sku

    @admin.display(description="item")
    def item_title(self, conflict):
        return format_html('<span title="{}">{}</span>', conflict.item.title, Truncator(conflict.item.title).chars(28))

    @admin.display(description="item")
    def item_link(self, conflict):
        return format_html(
            '<a href="{}">{} {}</a>',
            reverse("admin:inventory_item_change", args=[conflict.item_id]),
            conflict.item.sku,
            conflict.item.title,
        )

    @admin.display(description="winner (keeps it)")
    def winner(self, conflict):
        if conflict.kind == ConflictKind.FIELD_EDIT:
            return format_html("{}: {}", conflict.field, Truncator(conflict.ours).chars(40))
        return _order_line(conflict.winning_order)

    @admin.display(description="loser (cancel)")
    def loser(self, conflict):
        if conflict.kind == ConflictKind.FIELD_EDIT:
            return format_html("{}: {}", conflict.listing.connection.name, Truncator(conflict.theirs).chars(40))
        return _order_line(conflict.losing_order)

    @admin.display(description="both sides")
    def side_by_side(self, conflict):
        if conflict.kind == ConflictKind.FIELD_EDIT:
            return format_html(
                '<table class="conflict-values"><tr><th></th><th>{}</th></tr>'
                '<tr><th>Ours</th><td id="value-ours">{}</td></tr>'
                '<tr><th>{}</th><td id="value-theirs">{}</td></tr></table>',
                conflict.field,
                conflict.ours or "-",
                conflict.listing.connection.name,
                conflict.theirs,
            )
        rows = format_html_join(
            "",
            '<tr><th>{}</th><td>{}</td><td><a href="{}">#{}</a></td><td>{}</td><td>{}</td>'
            '<td class="money">{}</td><td>{}</td></tr>',
            (
                (
                    label,
                    order_shop(order),
                    reverse("admin:inventory_order_change", args=[order.pk]),
                    order.external_id,
                    when(order.placed_at),
                    order.buyer_name or "-",
                    money(order.total, order.currency),
                    order_progress(order)[0],
                )
                for label, order in (("Winner", conflict.winning_order), ("Loser", conflict.losing_order))
            ),
        )
        return format_html('<table class="conflict-orders">{}{}</table>', CONFLICT_TABLE_HEAD, rows)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        conflict = self.get_object(request, object_id)
        extra = {}
        if conflict is not None and conflict.kind == ConflictKind.FIELD_EDIT:
            extra = {
                "title": f"{conflict.field.capitalize()} edited on {conflict.listing.connection.name}: "
                f"{conflict.item.sku} {conflict.item.title}",
                "conflict": conflict,
                "edit_shop": conflict.listing.connection.name,
                "can_settle": conflict.status == ConflictStatus.OPEN and self.has_change_permission(request, conflict),
            }
        elif conflict is not None:
            extra = {
                "title": f"Double sale: {conflict.item.sku} {conflict.item.title}",
                "conflict": conflict,
                "winner_shop": order_shop(conflict.winning_order),
                "loser_shop": order_shop(conflict.losing_order),
                "can_settle": conflict.status == ConflictStatus.OPEN and self.has_change_permission(request, conflict),
            }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self):
        return [
            path(
                "<int:conflict_id>/settle/",
                self.admin_site.admin_view(self.settle_view),
                name="inventory_conflict_settle",
            ),
            *super().get_urls(),
        ]

    def settle_view(self, request, conflict_id: int):
        conflict = get_object_or_404(self.get_queryset(request), pk=conflict_id)
        if request.method != "POST" or not self.has_change_permission(request, conflict):
            raise PermissionDenied
        if conflict.kind == ConflictKind.FIELD_EDIT:
            keep = request.POST.get("keep", "")
            if keep not in ("ours", "theirs"):
                raise PermissionDenied
            settled = field_edit_settle(
                conflict_id=conflict.pk, keep=keep, actor=admin_actor(request), note=request.POST.get("note", "")
            )
            self.message_user(request, f"Settled. {settled.note}", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:inventory_conflict_change", args=[conflict.pk]))
        cancel = request.POST.get("cancel", "")
        if cancel not in ("loser", "winner"):
            raise PermissionDenied
        try:
            settled = conflict_settle(
                conflict_id=conflict.pk, cancel=cancel, actor=admin_actor(request), note=request.POST.get("note", "")
            )
        except InventoryError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, f"Double sale settled. {settled.note}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:inventory_conflict_change", args=[conflict.pk]))

    @admin.action(description="Mark resolved (settled on the channels)", permissions=["change"])
    def mark_resolved(self, request, queryset):
        # An edit made on a channel is settled one way or the other on its page, never just closed.
        queryset = queryset.filter(kind=ConflictKind.DOUBLE_SALE)
        n = conflicts_resolve(conflict_ids=list(queryset.values_list("pk", flat=True)), user=request.user)
        self.message_user(request, f"{plural(n, 'double sale')} marked resolved.", messages.SUCCESS)


class AlertStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("open", "Open"),
            ("new", "Open, not seen yet"),
            ("acknowledged", "Seen, still open"),
            ("resolved", "Resolved"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "new":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        if self.value() == "acknowledged":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=False)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


class AlertChangeList(ChangeList):
    """Names the shop of each alert on the page (a few queries for the page, not one per row)."""

    def get_results(self, request):
        super().get_results(request)
        rows = list(self.result_list)
        shops = alert_shops(rows)
        for alert in rows:
            alert.shop_name = shops.get(alert.pk, "")
        self.result_list = rows


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["raised", "severity", "title_short", "shop", "item_sku", "state"]
    list_filter = [AlertStateFilter, "severity", "kind"]
    search_fields = ["title", "message", "item__sku"]
    list_select_related = [
        "item",
        "connection",
        "listing__connection",
        "conflict__winning_order__connection",
        "conflict__losing_order__connection",
    ]
    actions = ["acknowledge", "resolve"]
    empty_hint = (
        "No alerts. Double sales, listings a shop refused, connections that stopped working and "
        "imported items to check would be raised here."
    )

    def has_change_permission(self, request, obj=None):
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.display(description="raised", ordering="created_at")
    def raised(self, alert):
        return when(alert.created_at)

    @admin.display(description="alert", ordering="title")
    def title_short(self, alert):
        return format_html('<span title="{}">{}</span>', alert.message or alert.title, Truncator(alert.title).chars(60))

    def get_changelist(self, request, **kwargs):
        return AlertChangeList

    @admin.display(description="shop")
    def shop(self, alert):
        names = getattr(alert, "shop_name", None)
        if names is None:
            names = alert_shops([alert]).get(alert.pk, "")
        return names or "-"

    @admin.display(description="SKU", ordering="item__sku")
    def item_sku(self, alert):
        if not alert.item_id:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:inventory_item_change", args=[alert.item_id]), alert.item.sku
        )

    @admin.display(description="state", ordering="resolved_at")
    def state(self, alert):
        seen = f" ({alert.count}x)" if alert.count > 1 else ""
        if alert.resolved_at is not None:
            return "resolved"
        if alert.acknowledged_at is None:
            return format_html('<span style="color:#c33">open{}</span>', seen)
        return f"seen, open{seen}"

    @admin.action(description="Acknowledge (seen; stays open until resolved)")
    def acknowledge(self, request, queryset):
        n = alerts_acknowledge(alert_ids=list(queryset.values_list("pk", flat=True)), user=request.user)
        self.message_user(request, f"{plural(n, 'alert')} acknowledged.", messages.SUCCESS)

    @admin.action(description="Resolve (the cause is dealt with)")
    def resolve(self, request, queryset):
        n = alerts_resolve(
            alert_ids=list(queryset.values_list("pk", flat=True)),
            user=request.user,
            note="Resolved by staff in the admin.",
        )
        self.message_user(request, f"{plural(n, 'alert')} resolved.", messages.SUCCESS)
