"""Admin for Shopify connections (token and signing secret write-only) and what Shopify says about each product."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from .client import describe_user_errors
from .models import ShopifyConnection, ShopifyProductDetail


class ShopifyConnectionForm(ConnectionAdminForm):
    class Meta(ConnectionAdminForm.Meta):
        model = ShopifyConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "shop_domain",
            "access_token",
            "webhook_secret",
            "api_version",
            "location_id",
            "api_url",
            "timeout_seconds",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "stock_buffer_percent",
        ]
        secret_fields = ("access_token", "webhook_secret")
        labels = {"access_token": "Admin API access token", "webhook_secret": "Webhook signing secret"}


@admin.register(ShopifyConnection)
class ShopifyConnectionAdmin(ConnectionAdmin):
    form = ShopifyConnectionForm
    list_display = ["name", "status", "shop_domain", "priority", "api_version", "pull_interval_seconds", "last_pull_at"]
    search_fields = ["name", "shop_domain"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        (
            "Shopify access",
            {
                "fields": [
                    "shop_domain",
                    "access_token",
                    "webhook_secret",
                    "secret_status",
                    "api_version",
                    "api_url",
                    "timeout_seconds",
                ]
            },
        ),
        ("Stock", {"fields": ["location_id", "stock_buffer_percent"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "webhook_setup",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]


@admin.register(ShopifyProductDetail)
class ShopifyProductDetailAdmin(AccountScopedAdmin):
    """What Shopify last said about each product, read-only (written by the sync), with a link to Shopify's admin."""

    list_display = ["product_id", "sku", "status", "quantity", "connection", "problems", "last_seen_at", "shopify_link"]
    list_filter = ["status", "connection"]
    search_fields = ["product_id", "sku", "title", "handle"]
    list_select_related = ["connection"]
    readonly_fields = ["shopify_link", "problems"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, *(f.name for f in self.model._meta.fields)]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="What Shopify said")
    def problems(self, obj: ShopifyProductDetail) -> str:
        lines = []
        if obj.user_errors:
            lines.append("Refused: " + describe_user_errors(obj.user_errors))
        lines.extend(obj.notes or [])
        if not lines:
            return "-"
        return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines))

    @admin.display(description="In Shopify")
    def shopify_link(self, obj: ShopifyProductDetail) -> str:
        if not obj.product_id:
            return "-"
        links = [format_html('<a href="{}" target="_blank" rel="noopener">edit in Shopify admin</a>', obj.admin_url)]
        if obj.storefront_url:
            links.append(format_html('<a href="{}" target="_blank" rel="noopener">storefront</a>', obj.storefront_url))
        return format_html_join(" · ", "{}", ((link,) for link in links))
