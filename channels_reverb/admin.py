"""Admin for Reverb connections (token write-only) and what Reverb says about each listing."""

from django.contrib import admin
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from .models import ReverbConnection, ReverbListingDetail


class ReverbConnectionForm(ConnectionAdminForm):
    class Meta(ConnectionAdminForm.Meta):
        model = ReverbConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "api_token",
            "base_url",
            "timeout_seconds",
            "shipping_profile_id",
            "category_uuids",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "listing_scan_interval_seconds",
            "stock_buffer_percent",
        ]
        secret_fields = ("api_token",)
        labels = {"api_token": "API token"}


@admin.register(ReverbConnection)
class ReverbConnectionAdmin(ConnectionAdmin):
    form = ReverbConnectionForm
    list_display = ["name", "status", "priority", "base_url", "pull_interval_seconds", "last_pull_at"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        ("Reverb access", {"fields": ["api_token", "secret_status", "base_url", "timeout_seconds"]}),
        ("Listing defaults", {"fields": ["shipping_profile_id", "category_uuids"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "listing_scan_interval_seconds",
                    "listing_scan",
                    "stock_buffer_percent",
                    "webhook_setup",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    readonly_fields = ["listing_scan"]

    @admin.display(description="Listing scan")
    def listing_scan(self, obj: ReverbConnection) -> str:
        return obj.listing_scan_summary if obj.pk else "Shown once the connection is saved."


@admin.register(ReverbListingDetail)
class ReverbListingDetailAdmin(AccountScopedAdmin):
    """What Reverb last said about each listing, read-only (written by the sync)."""

    list_display = ["listing_id", "sku", "state", "connection", "has_warnings", "last_seen_at", "reverb_link"]
    list_filter = ["state", "connection"]
    search_fields = ["listing_id", "sku", "slug"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="Warnings")
    def has_warnings(self, obj: ReverbListingDetail) -> bool:
        return bool(obj.warnings)

    @admin.display(description="On Reverb")
    def reverb_link(self, obj: ReverbListingDetail) -> str:
        if not obj.web_url:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">view</a>', obj.web_url)
