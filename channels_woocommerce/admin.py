"""Admin for WooCommerce connections (secrets write-only) and what the shop says about each product."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from billing.errors import PlanLimitReached
from billing.gates import check_channel_connect
from inventory.models import ChannelConnection

from .models import WooCommerceConnection, WooCommerceListingDetail
from .services import connection_check, grant_start, webhooks_register

SECRET_FIELDS = ("consumer_key", "consumer_secret", "webhook_secret")


def _secret_input(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=help_text + " Leave blank to keep the current one.",
    )


class WooCommerceConnectionForm(forms.ModelForm):
    """Keys and the webhook secret are typed in, never shown back: blank on edit keeps what is stored."""

    consumer_key = _secret_input("Consumer key", "ck_... from WooCommerce > Settings > Advanced > REST API.")
    consumer_secret = _secret_input("Consumer secret", "cs_..., shown once by WooCommerce when the key is made.")
    webhook_secret = _secret_input(
        "Webhook secret",
        "Signs the shop's deliveries; a new connection gets a random one. Register webhooks after changing it.",
    )

    class Meta:
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

    def _keep(self, name: str, required: bool) -> str:
        value = self.cleaned_data.get(name, "")
        if value:
            return value
        stored = getattr(self.instance, name, "") if self.instance.pk else ""
        if stored:
            return stored
        if name == "webhook_secret" and not self.instance.pk:
            return WooCommerceConnection._meta.get_field("webhook_secret").get_default()
        if required:
            raise forms.ValidationError("Paste it, or save without keys and use “Connect through the shop”.")
        return ""

    def clean_consumer_key(self) -> str:
        key = self._keep("consumer_key", required=False)
        if key and not key.startswith("ck_"):
            raise forms.ValidationError("WooCommerce consumer keys start with ck_.")
        return key

    def clean_consumer_secret(self) -> str:
        secret = self._keep("consumer_secret", required=False)
        if secret and not secret.startswith("cs_"):
            raise forms.ValidationError("WooCommerce consumer secrets start with cs_.")
        return secret

    def clean_webhook_secret(self) -> str:
        return self._keep("webhook_secret", required=True)

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

    def validate_unique(self) -> None:
        """Names are unique per account and channel (the parent table's constraint is not checked here)."""
        super().validate_unique()
        name = self.cleaned_data.get("name")
        account_id = self.instance.account_id
        if not name or not account_id:
            return
        clash = (
            ChannelConnection.objects.filter(account_id=account_id, channel="woocommerce", name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        )
        if clash:
            self.add_error("name", "This account already has a WooCommerce connection with this name.")
        if self.cleaned_data.get("enabled"):
            try:
                check_channel_connect(account_id, "woocommerce")
            except PlanLimitReached as refusal:
                self.add_error(None, refusal.message)


@admin.register(WooCommerceConnection)
class WooCommerceConnectionAdmin(AccountScopedAdmin):
    form = WooCommerceConnectionForm
    list_display = ["name", "enabled", "priority", "store_url", "store_currency", "key_status", "last_pull_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "store_url"]
    readonly_fields = [
        "key_status",
        "key_permissions",
        "store_currency",
        "webhook_url_path",
        "watermark",
        "last_pull_at",
        "created_at",
    ]
    actions = ["check_connection", "register_webhooks", "connect_through_shop"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "priority"]}),
        (
            "Shop and keys",
            {
                "fields": [
                    "store_url",
                    "auth_method",
                    "consumer_key",
                    "consumer_secret",
                    "key_status",
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
                    "webhook_url_path",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description="Keys")
    def key_status(self, obj: WooCommerceConnection) -> str:
        if not obj.pk:
            return "not set"
        return f"key {obj.key_hint}; secret {obj.secret_hint}; webhook secret {obj.webhook_secret_hint}"

    @admin.display(description="Webhook URL path")
    def webhook_url_path(self, obj: WooCommerceConnection) -> str:
        if not obj.pk:
            return "Shown once the connection is saved."
        return format_html(
            "<code>{}</code><br>Use the action “Register webhooks” (order.created, order.updated, product.updated, "
            "product.deleted) behind this site's https address; deliveries are checked with the webhook secret.",
            obj.webhook_path,
        )

    @admin.action(description="Check the connection (shop, keys, currency, webhooks)")
    def check_connection(self, request, queryset) -> None:
        for connection in queryset:
            result = connection_check(connection)
            self.message_user(
                request, f"{connection.name}: {result.summary}", messages.SUCCESS if result.ok else messages.ERROR
            )

    @admin.action(description="Register webhooks on the shop (to this site)")
    def register_webhooks(self, request, queryset) -> None:
        base = settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")
        for connection in queryset:
            lines = webhooks_register(connection, base)
            level = messages.ERROR if any(line.startswith("Not registered") for line in lines) else messages.SUCCESS
            self.message_user(request, f"{connection.name}: " + "; ".join(lines), level)

    @admin.action(description="Connect through the shop (WooCommerce asks the shop owner to approve a key)")
    def connect_through_shop(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose one connection to connect.", messages.WARNING)
            return None
        connection = queryset.get()
        base = settings.SITE_URL or request.build_absolute_uri("/").rstrip("/")
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
