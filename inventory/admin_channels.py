"""The channel side of the admin: listings on the item page, list/delist/relist actions and
buttons, connections, sync runs, the webhook inbox, double sales and alerts.

Every shop is named by its connection's name (the seller's word for it), never by an id,
and nothing here knows a channel by name: channels come from settings.CHANNELS.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.text import Truncator

from accounts.admin import AccountScopedAdmin

from .admin import ItemAdmin, ReadOnlyAdmin, admin_actor, plural
from .admin_connections import ConnectionActionsMixin
from .admin_orders import ShopFilter
from .channels import ChannelError, channel_choices
from .models import (
    ChannelConnection,
    ChannelListing,
    ListingState,
    SyncRun,
    WebhookEvent,
)
from .selectors import ListingStatus, item_listing_states
from .services.listing_staff import listing_end_on
from .services.listings import listings_end, listings_publish, listings_relist, listings_retry
from .services.sync import webhook_replay

CONFLICT_TABLE_HEAD = mark_safe(
    "<tr><th></th><th>Shop</th><th>Order</th><th>Placed (channel clock)</th><th>Buyer</th><th>Total</th>"
    "<th>Status</th></tr>"
)
STATE_COLOURS = {
    "live": "#2a7",
    "pending": "#a66f00",
    "ending": "#a66f00",
    "ended": "#777",
    "sold": "#c60",
    "missing": "#c33",
    "error": "#c33",
}


TIME_FORMAT = "j M Y, H:i"  # "4 Dec 2026, 18:19": one short form for every list and page


def when(moment) -> str:
    """A time as the rest of the admin writes it (local time zone, no microseconds)."""
    if moment is None:
        return "-"
    return formats.date_format(timezone.localtime(moment), TIME_FORMAT)


def money(amount, currency: str) -> str:
    return f"{intcomma(amount)}\N{NO-BREAK SPACE}{currency}"


def channel_label(name: str) -> str:
    return dict(channel_choices()).get(name, name)


def order_shop(order) -> str:
    return order.connection.name if order.connection_id else channel_label(order.channel)


def listing_badge(status: ListingStatus) -> str:
    """One shop's listing: its name and state word, the error (or what is wanted) on hover."""
    word = status.state_label
    if status.wanted and status.state not in ("error", "missing"):
        word = "pending" if status.wanted == "live" else "ending"
        colour = "#a66f00"
    else:
        colour = STATE_COLOURS.get(status.state, "#777")
    hover = status.error or (f"{status.state_label}, wanted {status.wanted}" if status.wanted else status.state_label)
    return format_html(
        '<span class="listing-badge state-{}" data-shop="{}" title="{}: {}" style="color:{}">{}&nbsp;<b>{}</b></span>',
        status.state if not status.wanted or status.state in ("error", "missing") else word,
        status.shop,
        status.shop,
        hover,
        colour,
        status.shop,
        word,
    )


class ChannelListingInline(admin.TabularInline):
    """Per-shop price and title overrides; states and buttons are in the item page's channel panel."""

    model = ChannelListing
    extra = 0
    can_delete = False
    classes = ["readonly-log", "listing-overrides"]
    verbose_name = "price or title on one shop"
    verbose_name_plural = "price and title per shop (blank: the item's own)"
    fields = ["shop", "price_override", "title_override"]
    readonly_fields = ["shop"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("connection")

    def has_add_permission(self, request, obj=None):
        return False  # listings are made by the List buttons and actions

    @admin.display(description="shop")
    def shop(self, listing):
        return listing.connection.name


def _report(modeladmin, request, result, verb: str) -> None:
    """One message in words ("1 item listed on Reverb main shop"), then what was refused."""
    done = result.done
    shops = sorted({name for row in done for name in row.get("connections", [])})
    text = f"{plural(len(done), 'item')} {verb}"
    if shops:
        text += " on " + ", ".join(shops)
    if result.not_done:
        text += f"; {len(result.not_done)} not"
    modeladmin.message_user(request, text + ".", messages.SUCCESS if not result.not_done else messages.WARNING)
    if result.not_done:
        shown = "; ".join(f"{row.get('sku') or row['id']}: {row['reason']}" for row in result.not_done[:20])
        modeladmin.message_user(request, f"Not {verb}: {shown}.", messages.WARNING)


def _publish(modeladmin, request, item_ids, connection_ids=None) -> None:
    try:
        result = listings_publish(
            account=modeladmin.account_for(request),
            item_ids=item_ids,
            actor=admin_actor(request),
            connection_ids=connection_ids,
        )
    except ChannelError as error:
        modeladmin.message_user(request, str(error), messages.ERROR)
        return
    _report(modeladmin, request, result, "listed")


def _delist(modeladmin, request, item_ids) -> None:
    with transaction.atomic():
        result = listings_end(account=modeladmin.account_for(request), item_ids=item_ids, actor=admin_actor(request))
    _report(modeladmin, request, result, "delisted")


def _relist(modeladmin, request, item_ids) -> None:
    result = listings_relist(account=modeladmin.account_for(request), item_ids=item_ids, actor=admin_actor(request))
    _report(modeladmin, request, result, "relisted")


def _open_shops(request, account=None):
    """The shops new listings may go to (the same rule listings_publish applies)."""
    qs = ChannelConnection.objects.for_user(request.user).filter(
        enabled=True, paused=False, disconnect_requested_at__isnull=True
    )
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs.order_by("priority", "pk"))


@admin.action(description="List everywhere", permissions=["change"])
def list_everywhere(modeladmin, request, queryset):
    _publish(modeladmin, request, list(queryset.values_list("pk", flat=True)))


@admin.action(description="List on chosen shops…", permissions=["change"])
def list_on_chosen(modeladmin, request, queryset):
    """An intermediate page: tick the shops, then list the selected items there."""
    shops = _open_shops(request, modeladmin.account_for(request))
    if request.POST.get("apply") == "yes":
        chosen = [int(pk) for pk in request.POST.getlist("connection") if pk.isdigit()]
        if not chosen:
            modeladmin.message_user(request, "Tick at least one shop to list on.", messages.WARNING)
        else:
            _publish(modeladmin, request, list(queryset.values_list("pk", flat=True)), chosen)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "List on chosen shops",
        "items": list(queryset[:200]),
        "count": queryset.count(),
        "shops": [(shop, channel_label(shop.channel)) for shop in shops],
        "opts": modeladmin.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        "selected": list(queryset.values_list("pk", flat=True)),
    }
    return TemplateResponse(request, "admin/inventory/item/list_on_chosen.html", context)


@admin.action(description="Delist everywhere", permissions=["change"])
def delist_everywhere(modeladmin, request, queryset):
    _delist(modeladmin, request, list(queryset.values_list("pk", flat=True)))


@admin.action(description="Relist everywhere (end, then list again)", permissions=["change"])
def relist_everywhere(modeladmin, request, queryset):
    _relist(modeladmin, request, list(queryset.values_list("pk", flat=True)))


def item_listing_view(modeladmin, request, item_id: int, verb: str):
    """The item page's List / Delist / Relist buttons (everywhere, or List on one shop)."""
    item = get_object_or_404(modeladmin.get_queryset(request), pk=item_id)
    if request.method != "POST" or not modeladmin.has_change_permission(request, item):
        raise PermissionDenied
    connection = request.POST.get("connection", "")
    if verb == "list":
        _publish(modeladmin, request, [item.pk], [int(connection)] if connection.isdigit() else None)
    elif verb == "delist" and connection.isdigit():
        shop = get_object_or_404(ChannelConnection.objects.for_user(request.user), pk=int(connection))
        ended = listing_end_on(account=item.account, item_id=item.pk, connection_id=shop.pk, actor=admin_actor(request))
        if ended:
            modeladmin.message_user(request, f"Delisted from {shop.name}.", messages.SUCCESS)
        else:
            modeladmin.message_user(request, f"{item.sku} is not for sale on {shop.name}.", messages.WARNING)
    elif verb == "delist":
        _delist(modeladmin, request, [item.pk])
    elif verb == "relist":
        _relist(modeladmin, request, [item.pk])
    elif verb == "retry" and connection.isdigit():
        ids = list(ChannelListing.objects.filter(item=item, connection_id=int(connection)).values_list("pk", flat=True))
        n = listings_retry(listing_ids=ids)
        modeladmin.message_user(request, f"{plural(n, 'listing')} queued to try again.", messages.SUCCESS)
    else:
        raise PermissionDenied
    return HttpResponseRedirect(reverse("admin:inventory_item_change", args=[item.pk]))


def item_listing_urls(modeladmin):
    return [
        path(
            "<int:item_id>/listings/<str:verb>/",
            modeladmin.admin_site.admin_view(
                lambda request, item_id, verb: item_listing_view(modeladmin, request, item_id, verb)
            ),
            name="inventory_item_listings",
        )
    ]


def item_channel_panel(request, item) -> dict:
    """The item page's channel panel: every shop of the account, its state, and what can be done there."""
    states = {status.connection_id: status for status in item_listing_states([item])[item.pk]}
    shops = ChannelConnection.objects.filter(account_id=item.account_id).filter(
        pk__in=list(states)
    ) | ChannelConnection.objects.filter(account_id=item.account_id, enabled=True)
    listings = {listing.connection_id: listing for listing in ChannelListing.objects.filter(item=item)}
    rows = []
    for shop in shops.distinct().order_by("priority", "pk"):
        status = states.get(shop.pk)
        listing = listings.get(shop.pk)
        listed = status is not None and (status.wanted == "live" or (not status.wanted and status.state == "live"))
        rows.append(
            {
                "shop": shop,
                "channel": channel_label(shop.channel),
                "badge": listing_badge(status)
                if status
                else mark_safe('<span class="listing-badge">not listed</span>'),
                "error": status.error if status else "",
                "link": listing.external_url if listing else "",
                "external_id": listing.external_id if listing else "",
                "can_list": item.state == "active" and shop.accepts_new_listings and not listed,
                "can_retry": status is not None and status.state == "error",
                "can_delist": listed or (status is not None and status.state == "error" and status.wanted == "live"),
                "note": "" if shop.accepts_new_listings else f"{shop.status}: takes no new listings",
            }
        )
    return {"channel_rows": rows, "item_is_active": item.state == "active"}


ItemAdmin.extend(
    actions=[list_everywhere, list_on_chosen, delist_everywhere, relist_everywhere],
    urls=[item_listing_urls],
    context=[item_channel_panel],
)
ItemAdmin.inlines = [*ItemAdmin.inlines[:1], ChannelListingInline, *ItemAdmin.inlines[1:]]


class ListingStateFilter(admin.SimpleListFilter):
    """In words: what staff look for (in error, pending, live...), not two raw state columns."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("error", "In error"),
            ("pending", "Waiting to go live"),
            ("live", "Live"),
            ("ending", "Being ended"),
            ("ended", "Ended or sold"),
            ("missing", "Missing on the channel"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "error":
            return queryset.filter(actual_state=ListingState.ERROR)
        if value == "pending":
            return queryset.filter(desired_state="live").exclude(
                actual_state__in=[ListingState.LIVE, ListingState.ERROR]
            )
        if value == "live":
            return queryset.filter(actual_state=ListingState.LIVE)
        if value == "ending":
            return queryset.filter(desired_state="ended").exclude(
                actual_state__in=[ListingState.ENDED, ListingState.SOLD, ListingState.ERROR]
            )
        if value == "ended":
            return queryset.filter(actual_state__in=[ListingState.ENDED, ListingState.SOLD])
        if value == "missing":
            return queryset.filter(actual_state=ListingState.MISSING)
        return queryset


class ListingChannelFilter(admin.SimpleListFilter):
    """Listings of one marketplace, whichever of the account's shops on it (e.g. every eBay store)."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        names = set(ChannelConnection.objects.for_user(request.user).values_list("channel", flat=True).distinct())
        return [(name, label) for name, label in channel_choices() if name in names]

    def queryset(self, request, queryset):
        return queryset.filter(connection__channel=self.value()) if self.value() else queryset


@admin.register(ChannelListing)
class ChannelListingAdmin(AccountScopedAdmin):
    # The last sync time is on the listing's page: at 1280 px the error needs the room.
    list_display = ["item_sku", "item_title", "shop", "state", "tries", "short_error"]
    list_display_links = ["item_sku"]
    list_filter = [ListingStateFilter, ShopFilter, ListingChannelFilter, "imported"]
    search_fields = ["item__sku", "item__title", "external_id"]
    search_help_text = "Search by SKU, title or the channel's listing id."
    list_select_related = ["item", "connection"]
    empty_hint = (
        "Listings appear here once items are listed on a shop (the List buttons on an item, or the "
        "List actions on the item list). Filter by 'In error' to see what needs a hand."
    )
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

    @admin.display(description="SKU", ordering="item__sku")
    def item_sku(self, listing):
        return listing.item.sku

    @admin.display(description="item", ordering="item__title")
    def item_title(self, listing):
        return format_html(
            '<a href="{}" title="{}">{}</a>',
            reverse("admin:inventory_item_change", args=[listing.item_id]),
            listing.item.title,
            Truncator(listing.item.title).chars(30),
        )

    @admin.display(description="shop", ordering="connection__name")
    def shop(self, listing):
        return listing.connection.name

    @admin.display(description="state", ordering="actual_state")
    def state(self, listing):
        status = ListingStatus(
            connection_id=listing.connection_id,
            shop=listing.connection.name,
            channel=listing.connection.channel,
            state=listing.actual_state,
            state_label=listing.get_actual_state_display(),
            wanted="" if listing.converged else listing.desired_state,
            error=listing.last_error,
        )
        wanted = "" if listing.converged else f" → {listing.desired_state}"
        return format_html(
            '<span style="color:{}" title="{}">{}</span>{}',
            STATE_COLOURS.get(listing.actual_state, "#777"),
            status.error or f"wanted: {listing.desired_state}",
            listing.get_actual_state_display(),
            wanted,
        )

    @admin.display(description="last error")
    def short_error(self, listing):
        if not listing.last_error:
            return "-"
        return format_html('<span title="{}">{}</span>', listing.last_error, Truncator(listing.last_error).chars(60))

    @admin.display(description="tries", ordering="attempts")
    def tries(self, listing):
        return listing.attempts

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if {"price_override", "title_override"} & set(form.changed_data):
            from .services.listings import listings_mark_changed

            with transaction.atomic():
                listings_mark_changed([obj.item_id])

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset):
        n = listings_retry(listing_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{plural(n, 'listing')} queued.", messages.SUCCESS)


@admin.register(ChannelConnection)
class ChannelConnectionAdmin(ConnectionActionsMixin, ReadOnlyAdmin):
    """Every connection, whatever its channel; each channel app edits its own."""

    list_display = ["name", "channel_name", "status", "priority", "last_pull", "live"]
    list_filter = ["channel", "enabled", "paused"]
    empty_hint = "Your shops on each marketplace appear here once connected (under the channel's own menu entry)."

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

    @admin.display(description="channel", ordering="channel")
    def channel_name(self, connection):
        return channel_label(connection.channel)

    @admin.display(description="Status")
    def status(self, connection):
        return connection.status

    @admin.display(description="last pull", ordering="last_pull_at")
    def last_pull(self, connection):
        return when(connection.last_pull_at)

    @admin.display(description="live listings", ordering="live_count")
    def live(self, connection):
        return connection.live_count


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started",
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
    list_filter = ["kind", "status", ShopFilter]
    list_select_related = ["connection"]
    date_hierarchy = "started_at"
    show_full_result_count = False
    empty_hint = "Each pull, audit and import of a shop leaves a row here with what it read and changed."

    @admin.display(description="started", ordering="started_at")
    def started(self, run):
        return when(run.started_at)


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["received", "shop", "topic", "status", "tries", "sent", "short_error"]
    list_filter = ["status", "topic", ShopFilter]
    search_fields = ["dedupe_key"]
    search_help_text = "Search by the channel's delivery id."
    list_select_related = ["connection"]
    actions = ["replay"]
    empty_hint = "Deliveries from the marketplaces (new orders, listing changes) are kept here as they arrive."

    def has_change_permission(self, request, obj=None):
        return obj is None and super(ReadOnlyAdmin, self).has_change_permission(request, obj)

    @admin.display(description="received", ordering="received_at")
    def received(self, event):
        return when(event.received_at)

    @admin.display(description="shop", ordering="connection__name")
    def shop(self, event):
        return event.connection.name

    @admin.display(description="tries", ordering="attempts")
    def tries(self, event):
        return event.attempts

    @admin.display(description="sent", ordering="deliveries")
    def sent(self, event):
        """How many times the channel delivered it (replays are harmless)."""
        return event.deliveries

    @admin.display(description="last error")
    def short_error(self, event):
        if not event.last_error:
            return "-"
        return format_html('<span title="{}">{}</span>', event.last_error, Truncator(event.last_error).chars(50))

    @admin.action(description="Replay (process again)")
    def replay(self, request, queryset):
        with transaction.atomic():
            n = webhook_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{plural(n, 'event')} queued to be processed again.", messages.SUCCESS)


# Double sales and alerts: admin_conflicts.py (this module would pass 500 lines).
from . import admin_conflicts  # noqa: E402, F401
