"""Admin for Amazon connections (secrets write-only), items' Amazon attributes, and what Amazon says of each listing."""

from django.contrib import admin
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from . import mappers
from .models import AmazonConnection, AmazonItemAttributes, AmazonListingDetail


class AmazonConnectionForm(ConnectionAdminForm):
    class Meta(ConnectionAdminForm.Meta):
        model = AmazonConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "seller_id",
            "region",
            "marketplace_ids",
            "lwa_client_id",
            "lwa_client_secret",
            "refresh_token",
            "api_base_url",
            "token_url",
            "timeout_seconds",
            "fulfillment_channel_code",
            "condition_types",
            "default_product_type",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "listing_scan_interval_seconds",
            "stock_buffer_percent",
            "sqs_queue_url",
            "sqs_region",
            "sqs_endpoint_url",
            "aws_access_key_id",
            "aws_secret_access_key",
        ]
        secret_fields = ("lwa_client_secret", "refresh_token", "aws_secret_access_key")


@admin.register(AmazonConnection)
class AmazonConnectionAdmin(ConnectionAdmin):
    form = AmazonConnectionForm
    list_display = ["name", "status", "priority", "seller_id", "region", "sales_mode", "last_pull_at"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        (
            "Amazon access",
            {
                "fields": [
                    "seller_id",
                    "region",
                    "marketplace_ids",
                    "lwa_client_id",
                    "lwa_client_secret",
                    "refresh_token",
                    "secret_status",
                    "api_base_url",
                    "token_url",
                    "timeout_seconds",
                ]
            },
        ),
        ("Offers", {"fields": ["fulfillment_channel_code", "condition_types", "default_product_type"]}),
        (
            "Notifications (SQS)",
            {
                "fields": [
                    "sales_mode",
                    "sqs_queue_url",
                    "sqs_region",
                    "sqs_endpoint_url",
                    "aws_access_key_id",
                    "aws_secret_access_key",
                ]
            },
        ),
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

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "sales_mode"]

    @admin.display(description="How sales reach us")
    def sales_mode(self, obj: AmazonConnection) -> str:
        return obj.notification_mode if obj and obj.pk else "-"


@admin.register(AmazonItemAttributes)
class AmazonItemAttributesAdmin(AccountScopedAdmin):
    """Per item: the ASIN its offer goes on, and its product type (Amazon refuses an item without them)."""

    list_display = ["item", "asin", "product_type"]
    search_fields = ["item__sku", "item__title", "asin"]
    raw_id_fields = ["item"]
    list_select_related = ["item"]


@admin.register(AmazonListingDetail)
class AmazonListingDetailAdmin(AccountScopedAdmin):
    """What Amazon last said about each listing, read-only (written by the sync)."""

    list_display = [
        "sku",
        "asin",
        "status_text",
        "submission_status",
        "issue_text",
        "connection",
        "last_seen_at",
        "link",
    ]
    list_filter = ["submission_status", "connection"]
    search_fields = ["sku", "asin"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Status")
    def status_text(self, obj: AmazonListingDetail) -> str:
        return ", ".join(obj.status) or "not buyable"

    @admin.display(description="Amazon's issues")
    def issue_text(self, obj: AmazonListingDetail) -> str:
        return mappers.issues_text(obj.issues) or "-"

    @admin.display(description="On Amazon")
    def link(self, obj: AmazonListingDetail) -> str:
        url = mappers.listing_url(obj.asin, obj.connection.marketplace_id)
        return format_html('<a href="{}" target="_blank" rel="noopener">view</a>', url) if url else "-"
