"""Admin for eBay connections (secrets write-only), what eBay says about each offer, and the one-way
migration of listings made on eBay's site (an explicit action, never automatic)."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from .models import EbayConnection, EbayLegacyListing, EbayListingDetail
from .services import legacy_listings_migrate


class EbayConnectionForm(ConnectionAdminForm):
    class Meta(ConnectionAdminForm.Meta):
        model = EbayConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "client_id",
            "client_secret",
            "refresh_token",
            "api_base_url",
            "token_url",
            "timeout_seconds",
            "marketplace_id",
            "merchant_location_key",
            "fulfillment_policy_id",
            "payment_policy_id",
            "return_policy_id",
            "category_ids",
            "condition_ids",
            "verification_token",
            "endpoint_url",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "listing_scan_interval_seconds",
            "stock_buffer_percent",
        ]
        secret_fields = ("client_secret", "refresh_token", "verification_token")
        labels = {"client_id": "Client ID (App ID)", "client_secret": "Client secret (Cert ID)"}


class MigrateListingsForm(forms.Form):
    listing_ids = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="eBay item numbers of listings made on eBay's site, one per line or comma-separated.",
    )
    confirm = forms.BooleanField(
        help_text="Migration is one way: the listings can then be revised through this back office only."
    )


@admin.register(EbayConnection)
class EbayConnectionAdmin(ConnectionAdmin):
    form = EbayConnectionForm
    list_display = ["name", "status", "priority", "marketplace_id", "api_base_url", "last_pull_at"]
    actions = [*ConnectionAdmin.actions, "migrate_listings"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        (
            "eBay access",
            {
                "fields": [
                    "client_id",
                    "client_secret",
                    "refresh_token",
                    "secret_status",
                    "api_base_url",
                    "token_url",
                    "timeout_seconds",
                ]
            },
        ),
        (
            "Listing defaults",
            {
                "fields": [
                    "marketplace_id",
                    "merchant_location_key",
                    "fulfillment_policy_id",
                    "payment_policy_id",
                    "return_policy_id",
                    "category_ids",
                    "condition_ids",
                ]
            },
        ),
        ("Notifications", {"fields": ["verification_token", "endpoint_url", "webhook_setup"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "listing_scan_interval_seconds",
                    "stock_buffer_percent",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.action(description="Migrate listings made on eBay's site (bulk_migrate_listing, one way)")
    def migrate_listings(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick one eBay connection to migrate listings into.", messages.ERROR)
            return None
        connection = queryset.get()
        form = MigrateListingsForm(request.POST if "listing_ids" in request.POST else None)
        if form.is_valid():
            ids = [part.strip() for part in form.cleaned_data["listing_ids"].replace(",", "\n").split() if part.strip()]
            for line in legacy_listings_migrate(connection, ids):
                level = messages.SUCCESS if ": migrated" in line else messages.ERROR
                self.message_user(request, f"{connection.name}: {line}", level)
            return None
        return render(
            request,
            "admin/channels_ebay/migrate_listings.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Migrate eBay listings into {connection.name}",
                "form": form,
                "connection": connection,
                "action": "migrate_listings",
                "opts": self.model._meta,
            },
        )


@admin.register(EbayListingDetail)
class EbayListingDetailAdmin(AccountScopedAdmin):
    """What eBay last said about each offer and the revisions spent today, read-only (written by the sync)."""

    list_display = ["sku", "offer_id", "listing_id", "status", "revisions_today", "has_error", "last_seen_at"]
    list_filter = ["status", "connection"]
    search_fields = ["sku", "offer_id", "listing_id"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="Refused")
    def has_error(self, obj: EbayListingDetail) -> bool:
        return bool(obj.last_error)


@admin.register(EbayLegacyListing)
class EbayLegacyListingAdmin(AccountScopedAdmin):
    """Listings made on eBay's website that sold (so we know of them): the Inventory API cannot end them
    until they are migrated. Migration is one way and runs only when staff confirm it."""

    list_display = [
        "listing_id",
        "sku",
        "title",
        "connection",
        "first_order_id",
        "seen_at",
        "migrated_at",
        "what_to_do",
    ]
    list_filter = ["connection", ("migrated_at", admin.EmptyFieldListFilter)]
    search_fields = ["listing_id", "sku", "title"]
    list_select_related = ["connection"]
    actions = ["migrate_selected"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="What to do")
    def what_to_do(self, obj: EbayLegacyListing) -> str:
        return obj.what_to_do

    @admin.action(description="Migrate the selected listings to the Inventory API (one way)")
    def migrate_selected(self, request, queryset):
        pending = list(queryset.filter(migrated_at__isnull=True).select_related("connection"))
        if request.POST.get("confirm") != "yes":
            return render(
                request,
                "admin/channels_ebay/migrate_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Migrate these eBay listings?",
                    "listings": pending,
                    "action": "migrate_selected",
                    "opts": self.model._meta,
                },
            )
        by_connection: dict[int, list[EbayLegacyListing]] = {}
        for listing in pending:
            by_connection.setdefault(listing.connection_id, []).append(listing)
        for listings in by_connection.values():
            connection = listings[0].connection
            for line in legacy_listings_migrate(connection, [x.listing_id for x in listings]):
                level = messages.SUCCESS if ": migrated" in line else messages.ERROR
                self.message_user(request, f"{connection.name}: {line}", level)
        return None
