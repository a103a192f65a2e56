"""The channel side of the admin: listings on the item page, list/delist/relist actions,
connections, sync runs, the webhook inbox, double sales and alerts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import AccountScopedAdmin

from .admin import ItemAdmin, ReadOnlyAdmin, admin_actor
from .admin_connections import ConnectionActionsMixin
from .channels import ChannelError
from .models import (
    Alert,
    ChannelConnection,
    ChannelListing,
    Conflict,
    ListingState,
    SyncRun,
    WebhookEvent,
)
from .services.alerts import alerts_acknowledge, alerts_resolve, conflicts_resolve
from .services.listings import listings_end, listings_publish, listings_relist, listings_retry
from .services.sync import webhook_replay

CONFLICT_TABLE_HEAD = mark_safe(
    "<tr><th></th><th>Channel</th><th>Order</th><th>Placed (channel clock)</th><th>Buyer</th><th>Total</th>"
    "<th>Status</th></tr>"
)
STATE_COLOURS = {"live": "#2a7", "pending": "#c90", "ending": "#c90", "ended": "#777", "sold": "#c60", "error": "#c33"}


class ChannelListingInline(admin.TabularInline):
    model = ChannelListing
    extra = 0
    can_delete = False
    verbose_name_plural = "channels"
    fields = [
        "connection",
        "state",
        "external_link",
        "price_override",
        "title_override",
        "last_synced_at",
        "last_error",
    ]
    readonly_fields = ["connection", "state", "external_link", "last_synced_at", "last_error"]

    def has_add_permission(self, request, obj=None):
        return False  # listings are made by "List everywhere" / "List on ..." actions

    @admin.display(description="state")
    def state(self, listing):
        wanted = "" if listing.converged else f" → {listing.desired_state}"
        return format_html(
            '<span style="color:{}">{}</span>{}',
            STATE_COLOURS.get(listing.actual_state, "#777"),
            listing.get_actual_state_display(),
            wanted,
        )

    @admin.display(description="on the channel")
    def external_link(self, listing):
        if listing.external_url:
            return format_html(
                '<a href="{}" target="_blank" rel="noopener">{}</a>', listing.external_url, listing.external_id
            )
        return listing.external_id or "-"


def _report(modeladmin, request, result, verb: str) -> None:
    modeladmin.message_user(
        request, result.summary(verb) + ".", messages.SUCCESS if not result.not_done else messages.WARNING
    )
    if result.not_done:
        shown = "; ".join(f"{row.get('sku') or row['id']}: {row['reason']}" for row in result.not_done[:20])
        modeladmin.message_user(request, f"Not {verb}: {shown}.", messages.WARNING)


@admin.action(description="List everywhere", permissions=["change"])
def list_everywhere(modeladmin, request, queryset):
    try:
        result = listings_publish(
            account=modeladmin.account_for(request),
            item_ids=list(queryset.values_list("pk", flat=True)),
            actor=admin_actor(request),
        )
    except ChannelError as error:
        modeladmin.message_user(request, str(error), messages.ERROR)
        return
    _report(modeladmin, request, result, "listed")


@admin.action(description="Delist everywhere", permissions=["change"])
def delist_everywhere(modeladmin, request, queryset):
    with transaction.atomic():
        result = listings_end(
            account=modeladmin.account_for(request),
            item_ids=list(queryset.values_list("pk", flat=True)),
            actor=admin_actor(request),
        )
    _report(modeladmin, request, result, "delisted")


@admin.action(description="Relist everywhere (end, then list again)", permissions=["change"])
def relist_everywhere(modeladmin, request, queryset):
    result = listings_relist(
        account=modeladmin.account_for(request),
        item_ids=list(queryset.values_list("pk", flat=True)),
        actor=admin_actor(request),
    )
    _report(modeladmin, request, result, "relisted")


ItemAdmin.extend(actions=[list_everywhere, delist_everywhere, relist_everywhere])
ItemAdmin.inlines = [ChannelListingInline, *ItemAdmin.inlines]


@admin.register(ChannelListing)
class ChannelListingAdmin(AccountScopedAdmin):
    list_display = [
        "item",
        "connection",
        "state",
        "desired_state",
        "external_id",
        "last_synced_at",
        "attempts",
        "short_error",
    ]
    list_filter = ["actual_state", "desired_state", "connection", "imported"]
    search_fields = ["item__sku", "item__title", "external_id"]
    list_select_related = ["item", "connection"]
    readonly_fields = [
        "item",
        "connection",
        "external_id",
        "external_url",
        "desired_state",
        "actual_state",
        "end_reason",
        "needs_push",
        "relist_requested",
        "pushed_content",
        "pushed_fingerprint",
        "last_synced_at",
        "last_error",
        "attempts",
        "ended_at",
        "imported",
        "lease_until",
        "desired_changed_at",
    ]
    fields = [*readonly_fields[:2], "price_override", "title_override", *readonly_fields[2:]]
    actions = ["retry_now"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="state", ordering="actual_state")
    def state(self, listing):
        return format_html(
            '<span style="color:{}">{}</span>',
            STATE_COLOURS.get(listing.actual_state, "#777"),
            listing.get_actual_state_display(),
        )

    @admin.display(description="last error")
    def short_error(self, listing):
        return (listing.last_error[:80] + "…") if len(listing.last_error) > 80 else listing.last_error

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if {"price_override", "title_override"} & set(form.changed_data):
            from .services.listings import listings_mark_changed

            with transaction.atomic():
                listings_mark_changed([obj.item_id])

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        n = listings_retry(listing_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{n} listing(s) queued.", messages.SUCCESS)


@admin.register(ChannelConnection)
class ChannelConnectionAdmin(ConnectionActionsMixin, ReadOnlyAdmin):
    """Every connection, whatever its channel; each channel app edits its own."""

    list_display = ["name", "channel", "status", "priority", "last_pull_at", "live"]
    list_filter = ["channel", "enabled", "paused"]

    def get_queryset(self, request):
        live = (
            ChannelListing.objects.filter(connection=OuterRef("pk"), actual_state=ListingState.LIVE)
            .order_by()
            .values("connection")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                live_count=Coalesce(Subquery(live.annotate(n=Count("*")).values("n"), output_field=IntegerField()), 0)
            )
        )

    @admin.display(description="Status")
    def status(self, connection):
        return connection.status

    @admin.display(description="live listings", ordering="live_count")
    def live(self, connection):
        return connection.live_count


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "connection",
        "kind",
        "status",
        "duration_ms",
        "created",
        "updated",
        "ended",
        "skipped",
        "errors",
        "api_calls",
    ]
    list_filter = ["kind", "status", "connection"]
    list_select_related = ["connection"]
    date_hierarchy = "started_at"
    show_full_result_count = False


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "connection",
        "topic",
        "dedupe_key",
        "deliveries",
        "status",
        "processed_at",
        "attempts",
    ]
    list_filter = ["status", "topic", "connection"]
    search_fields = ["dedupe_key"]
    list_select_related = ["connection"]
    actions = ["replay"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.action(description="Replay (process again)")
    def replay(self, request, queryset):
        with transaction.atomic():
            n = webhook_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{n} event(s) queued to be processed again.", messages.SUCCESS)


@admin.register(Conflict)
class ConflictAdmin(AccountScopedAdmin):
    list_display = ["created_at", "item", "winner", "loser", "status"]
    list_filter = ["status"]
    search_fields = ["item__sku", "winning_order__external_id", "losing_order__external_id"]
    list_select_related = ["item", "winning_order__connection", "losing_order__connection"]
    readonly_fields = ["item", "side_by_side", "status", "created_at", "resolved_at", "resolved_by"]
    fields = ["item", "side_by_side", "status", "note", "created_at", "resolved_at", "resolved_by"]
    actions = ["mark_resolved"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="winner (keeps the item)")
    def winner(self, conflict):
        order = conflict.winning_order
        return f"{order.connection or order.channel} #{order.external_id} at {order.placed_at:%H:%M:%S}"

    @admin.display(description="loser (cancel and refund)")
    def loser(self, conflict):
        order = conflict.losing_order
        return f"{order.connection or order.channel} #{order.external_id} at {order.placed_at:%H:%M:%S}"

    @admin.display(description="both orders")
    def side_by_side(self, conflict):
        rows = format_html_join(
            "",
            "<tr><th>{}</th><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>",
            (
                (
                    label,
                    order.connection or order.channel,
                    order.external_id,
                    order.placed_at.strftime("%Y-%m-%d %H:%M:%S.%f UTC"),
                    order.buyer_name,
                    order.total,
                    order.currency,
                    order.get_status_display(),
                )
                for label, order in (("Winner", conflict.winning_order), ("Loser", conflict.losing_order))
            ),
        )
        return format_html("<table>{}{}</table>", CONFLICT_TABLE_HEAD, rows)

    @admin.action(description="Mark resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        n = conflicts_resolve(conflict_ids=list(queryset.values_list("pk", flat=True)), user=request.user)
        self.message_user(request, f"{n} conflict(s) resolved.", messages.SUCCESS)


class AlertOpenFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("new", "Open, not seen yet"), ("resolved", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "new":
            return queryset.filter(resolved_at__isnull=True, acknowledged_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["last_seen", "severity", "title", "count", "status"]
    list_filter = [AlertOpenFilter, "severity", "kind"]
    search_fields = ["title", "message", "item__sku"]
    list_select_related = ["item", "connection"]
    actions = ["acknowledge", "resolve"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, alert):
        return alert.last_seen_at or alert.created_at

    @admin.display(description="status", ordering="resolved_at")
    def status(self, alert):
        if alert.resolved_at:
            return "resolved"
        return "open, seen" if alert.acknowledged_at else "open"

    @admin.action(description="Acknowledge (seen; stays open until resolved)")
    def acknowledge(self, request, queryset):
        n = alerts_acknowledge(alert_ids=list(queryset.values_list("pk", flat=True)), user=request.user)
        self.message_user(request, f"{n} alert{'' if n == 1 else 's'} acknowledged.", messages.SUCCESS)

    @admin.action(description="Resolve (the cause is dealt with)")
    def resolve(self, request, queryset):
        n = alerts_resolve(
            alert_ids=list(queryset.values_list("pk", flat=True)),
            user=request.user,
            note="Resolved by staff in the admin.",
        )
        self.message_user(request, f"{n} alert{'' if n == 1 else 's'} resolved.", messages.SUCCESS)
