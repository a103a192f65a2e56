"""Admin for Reverb connections (token write-only) and what Reverb says about each listing."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from billing.errors import PlanLimitReached
from billing.gates import check_channel_connect
from inventory.models import ChannelConnection

from .models import ReverbConnection, ReverbListingDetail
from .services import connection_check


class ReverbConnectionForm(forms.ModelForm):
    """The token is typed in, never shown back: blank on edit keeps the one stored."""

    api_token = forms.CharField(
        label="API token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Personal access token from reverb.com/my/api_settings. Leave blank to keep the current one.",
    )

    class Meta:
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

    def clean_api_token(self) -> str:
        token = self.cleaned_data.get("api_token", "")
        if token:
            return token
        if self.instance.pk and self.instance.api_token:
            return self.instance.api_token
        raise forms.ValidationError("Paste the shop's Reverb API token.")

    def validate_unique(self) -> None:
        """Connection names are unique per account and channel; the account is stamped by the scoped
        admin just before this runs, and the parent table's constraint is not checked by Django here."""
        super().validate_unique()
        name = self.cleaned_data.get("name")
        account_id = self.instance.account_id
        if not name or not account_id:
            return
        clash = (
            ChannelConnection.objects.filter(account_id=account_id, channel="reverb", name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        )
        if clash:
            self.add_error("name", "This account already has a Reverb connection with this name.")
        if self.cleaned_data.get("enabled"):
            try:
                check_channel_connect(account_id, "reverb")  # the plan's channels
            except PlanLimitReached as refusal:
                self.add_error(None, refusal.message)


@admin.register(ReverbConnection)
class ReverbConnectionAdmin(AccountScopedAdmin):
    form = ReverbConnectionForm
    list_display = ["name", "enabled", "priority", "base_url", "pull_interval_seconds", "watermark", "last_pull_at"]
    list_filter = ["enabled"]
    search_fields = ["name"]
    readonly_fields = ["token_status", "webhook_url_path", "watermark", "last_pull_at", "created_at"]
    actions = ["check_connection"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "priority"]}),
        ("Reverb access", {"fields": ["api_token", "token_status", "base_url", "timeout_seconds"]}),
        ("Listing defaults", {"fields": ["shipping_profile_id", "category_uuids"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "listing_scan_interval_seconds",
                    "stock_buffer_percent",
                    "webhook_url_path",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description="Token")
    def token_status(self, obj: ReverbConnection) -> str:
        return obj.token_hint if obj.pk else "not set"

    @admin.display(description="Webhook URL path")
    def webhook_url_path(self, obj: ReverbConnection) -> str:
        if not obj.pk:
            return "Shown once the connection is saved."
        return format_html(
            "<code>{}</code><br>Register it on Reverb for the orders/create and orders/update topics, "
            "behind this site's https address. It is the only secret a delivery carries: keep it private.",
            obj.webhook_path,
        )

    @admin.action(description="Check the token against Reverb (reads only)")
    def check_connection(self, request, queryset) -> None:
        for connection in queryset:
            works, message = connection_check(connection)
            self.message_user(request, f"{connection.name}: {message}", messages.SUCCESS if works else messages.ERROR)


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
