"""Admin for Etsy connections (secrets write-only, a Connect Etsy button) and what Etsy says of each listing."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from .models import EtsyConnection, EtsyListingDetail
from .sync import FEE_NOTICE


class EtsyConnectionForm(ConnectionAdminForm):
    class Meta(ConnectionAdminForm.Meta):
        model = EtsyConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "keystring",
            "shared_secret",
            "webhook_secret",
            "scopes",
            "shop_id",
            "shipping_profile_id",
            "return_policy_id",
            "readiness_state_id",
            "taxonomy_ids",
            "default_taxonomy_id",
            "auto_renew",
            "api_base_url",
            "authorize_url",
            "token_url",
            "redirect_uri",
            "timeout_seconds",
            "daily_reserve",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "listing_scan_interval_seconds",
            "stock_buffer_percent",
        ]
        secret_fields = ("shared_secret", "webhook_secret")
        labels = {"keystring": "Keystring", "webhook_secret": "Webhook signing secret"}


@admin.register(EtsyConnection)
class EtsyConnectionAdmin(ConnectionAdmin):
    form = EtsyConnectionForm
    list_display = ["name", "status", "priority", "shop_id", "is_connected", "token_expires_at", "last_pull_at"]
    common_readonly = [*ConnectionAdmin.common_readonly, "connect_button", "token_expires_at", "fee_notice"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        (
            "Etsy app and access",
            {
                "fields": [
                    "keystring",
                    "shared_secret",
                    "webhook_secret",
                    "secret_status",
                    "connect_button",
                    "token_expires_at",
                    "scopes",
                ]
            },
        ),
        (
            "Shop and listing defaults",
            {
                "fields": [
                    "shop_id",
                    "shipping_profile_id",
                    "return_policy_id",
                    "readiness_state_id",
                    "taxonomy_ids",
                    "default_taxonomy_id",
                    "auto_renew",
                    "fee_notice",
                ]
            },
        ),
        ("Addresses", {"fields": ["api_base_url", "authorize_url", "token_url", "redirect_uri", "timeout_seconds"]}),
        (
            "Sync",
            {
                "fields": [
                    "daily_reserve",
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "listing_scan_interval_seconds",
                    "stock_buffer_percent",
                    "webhook_setup",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(boolean=True, description="Connected")
    def is_connected(self, obj: EtsyConnection) -> bool:
        return obj.connected

    @admin.display(description="Access tokens")
    def connect_button(self, obj: EtsyConnection) -> str:
        if not obj.pk:
            return "Save the connection with the app's keystring and shared secret, then connect it to Etsy."
        state = "Connected (tokens set, never shown)." if obj.connected else "Not connected yet."
        label = "Reconnect Etsy" if obj.connected else "Connect Etsy"
        return format_html(
            '{} <a class="button" href="{}">{}</a>', state, reverse("etsy-connect", args=[obj.pk]), label
        )

    @admin.display(description="Fees")
    def fee_notice(self, obj) -> str:
        return FEE_NOTICE


@admin.register(EtsyListingDetail)
class EtsyListingDetailAdmin(AccountScopedAdmin):
    """What Etsy last said about each listing, read-only (written by the sync)."""

    list_display = ["listing_id", "sku", "state", "connection", "last_seen_at", "etsy_link"]
    list_filter = ["state", "connection"]
    search_fields = ["=listing_id", "sku"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="On Etsy")
    def etsy_link(self, obj: EtsyListingDetail) -> str:
        if not obj.url:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">view</a>', obj.url)
