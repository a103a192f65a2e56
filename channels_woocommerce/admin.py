"""Admin for WooCommerce connections (secrets write-only) and what the shop says about each product."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from inventory.admin_connections import ConnectionAdmin, ConnectionAdminForm

from .models import WooCommerceConnection, WooCommerceListingDetail, new_webhook_secret
from .services import connection_check, grant_start


class WooCommerceConnectionForm(ConnectionAdminForm):
    """Keys and the webhook secret are typed in, never shown back: blank on edit keeps what is stored.

    The keys may stay empty on a new connection: "Connect through the shop" fetches them."""

    class Meta(ConnectionAdminForm.Meta):
        model = WooCommerceConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "store_url",
            "auth_method",
            "consumer_key",
            "consumer_secret",
            "webhook_secret",
            "timeout_seconds",
            "category_ids",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "listing_scan_interval_seconds",
            "stock_buffer_percent",
        ]
        secret_fields = ("consumer_key", "consumer_secret", "webhook_secret")

    def clean_consumer_key(self) -> str:
        key = self.cleaned_data.get("consumer_key", "")
        if key and not key.startswith("ck_"):
            raise forms.ValidationError("WooCommerce consumer keys start with ck_.")
        return key

    def clean_consumer_secret(self) -> str:
        secret = self.cleaned_data.get("consumer_secret", "")
        if secret and not secret.startswith("cs_"):
            raise forms.ValidationError("WooCommerce consumer secrets start with cs_.")
        return secret

    def clean_webhook_secret(self) -> str:
        secret = self.cleaned_data.get("webhook_secret", "")
        if not secret and not self.instance.pk:
            return new_webhook_secret()  # a new connection gets a random one
        return secret

    def clean_category_ids(self):
        mapping = self.cleaned_data.get("category_ids") or {}
        if not isinstance(mapping, dict):
            raise forms.ValidationError('A mapping of our category to WooCommerce ids, e.g. {"Amplifiers": [18]}.')
        for category, ids in mapping.items():
            values = ids if isinstance(ids, list) else [ids]
            if not all(isinstance(v, int) or str(v).isdigit() for v in values):
                raise forms.ValidationError(f"{category}: WooCommerce category ids are whole numbers.")
        return mapping

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("consumer_key")) != bool(cleaned.get("consumer_secret")):
            self.add_error("consumer_secret", "The consumer key and secret go together: paste both.")
        return cleaned


@admin.register(WooCommerceConnection)
class WooCommerceConnectionAdmin(ConnectionAdmin):
    form = WooCommerceConnectionForm
    list_display = ["name", "status", "priority", "store_url", "store_currency", "last_pull_at"]
    search_fields = ["name", "store_url"]
    readonly_fields = ["key_permissions", "store_currency"]
    actions = [*ConnectionAdmin.actions, "connect_through_shop"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "status", "priority"]}),
        (
            "Shop and keys",
            {
                "fields": [
                    "store_url",
                    "auth_method",
                    "consumer_key",
                    "consumer_secret",
                    "secret_status",
                    "key_permissions",
                    "store_currency",
                    "timeout_seconds",
                ]
            },
        ),
        ("Listing defaults", {"fields": ["category_ids"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "listing_scan_interval_seconds",
                    "stock_buffer_percent",
                    "webhook_secret",
                    "webhook_setup",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.action(description="Test the connection (and re-enable webhooks the shop disabled)")
    def check_connection(self, request, queryset):
        def verb(connection):
            result = connection_check(connection)  # the channel's own: alerts when it re-enabled a webhook
            return result.summary, messages.SUCCESS if result.ok else messages.ERROR

        self._each(request, queryset, verb)

    @admin.action(description="Connect through the shop (WooCommerce asks the shop owner to approve a key)")
    def connect_through_shop(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose one connection to connect.", messages.WARNING)
            return None
        connection = queryset.get()
        base = (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")
        change = reverse("admin:channels_woocommerce_woocommerceconnection_change", args=[connection.pk])
        callback = base + reverse("channels_woocommerce:grant-callback", args=[connection.pk])
        return HttpResponseRedirect(grant_start(connection, return_url=base + change, callback_url=callback))


@admin.register(WooCommerceListingDetail)
class WooCommerceListingDetailAdmin(AccountScopedAdmin):
    """What the shop last said about each product, read-only (written by the sync)."""

    list_display = ["sku", "product_id", "status", "stock_quantity", "connection", "refused", "last_seen_at", "link"]
    list_filter = ["status", "connection"]
    search_fields = ["sku", "product_id"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(boolean=True, description="Refused")
    def refused(self, obj: WooCommerceListingDetail) -> bool:
        return bool(obj.last_error)

    @admin.display(description="On the shop")
    def link(self, obj: WooCommerceListingDetail) -> str:
        if not obj.permalink:
            return "-"
        return format_html('<a href="{}" target="_blank" rel="noopener">view</a>', obj.permalink)
