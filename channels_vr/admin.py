"""Admin for V&R connections (password write-only), their mapping tables, the items V&R shows and failed steps."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin import AccountScopedAdmin
from billing.errors import PlanLimitReached
from billing.gates import check_channel_connect
from inventory.models import ChannelConnection

from .models import (
    DEFAULT_PRIORITY,
    DEFAULT_PULL_INTERVAL,
    VRBrandMapping,
    VRCategoryMapping,
    VRConnection,
    VRListingDetail,
    VRStepFailure,
)


def media_link(path: str) -> str:
    base = settings.MEDIA_URL if settings.MEDIA_URL.startswith(("/", "http")) else "/" + settings.MEDIA_URL
    return base + path


class VRConnectionForm(forms.ModelForm):
    """The password is typed in, never shown back: blank on edit keeps the one stored."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="The dealer's V&R password. Leave blank to keep the current one.",
    )

    class Meta:
        model = VRConnection
        fields = [
            "account",
            "name",
            "enabled",
            "priority",
            "username",
            "password",
            "base_url",
            "step_timeout_seconds",
            "currency",
            "processing_time",
            "processing_unit",
            "available_for_shipment",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "stock_buffer_percent",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.initial.setdefault("priority", DEFAULT_PRIORITY)
            self.initial.setdefault("pull_interval_seconds", DEFAULT_PULL_INTERVAL)

    def clean_password(self) -> str:
        password = self.cleaned_data.get("password", "")
        if password:
            return password
        if self.instance.pk and self.instance.password:
            return self.instance.password
        raise forms.ValidationError("Type the dealer's V&R password.")

    def validate_unique(self) -> None:
        super().validate_unique()
        name = self.cleaned_data.get("name")
        account_id = self.instance.account_id
        if not name or not account_id:
            return
        clash = (
            ChannelConnection.objects.filter(account_id=account_id, channel="vr", name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        )
        if clash:
            self.add_error("name", "This account already has a Vintage & Rare connection with this name.")
        if self.cleaned_data.get("enabled"):
            try:
                check_channel_connect(account_id, "vr")
            except PlanLimitReached as refusal:
                self.add_error(None, refusal.message)


class VRCategoryMappingInline(admin.TabularInline):
    model = VRCategoryMapping
    extra = 1
    fields = ["category", "level_0", "level_1", "level_2", "level_3"]


class VRBrandMappingInline(admin.TabularInline):
    model = VRBrandMapping
    extra = 1
    fields = ["brand", "vr_brand"]


@admin.register(VRConnection)
class VRConnectionAdmin(AccountScopedAdmin):
    form = VRConnectionForm
    inlines = [VRCategoryMappingInline, VRBrandMappingInline]
    list_display = ["name", "enabled", "priority", "username", "base_url", "pull_interval_seconds", "last_pull_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "username"]
    readonly_fields = ["password_status", "watermark", "last_pull_at", "created_at"]
    actions = ["check_connection"]
    fieldsets = [
        (None, {"fields": ["account", "name", "enabled", "priority"]}),
        ("Dealer login", {"fields": ["username", "password", "password_status", "base_url", "step_timeout_seconds"]}),
        ("New items", {"fields": ["currency", "processing_time", "processing_unit", "available_for_shipment"]}),
        (
            "Sync",
            {
                "fields": [
                    "pull_interval_seconds",
                    "pull_offset_seconds",
                    "stock_buffer_percent",
                    "watermark",
                    "last_pull_at",
                    "created_at",
                ]
            },
        ),
    ]

    def save_formset(self, request, form, formset, change):
        for obj in formset.save(commit=False):
            obj.account_id = form.instance.account_id  # mapping rows belong to the connection's account
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()

    @admin.display(description="Password")
    def password_status(self, obj: VRConnection) -> str:
        return obj.password_hint if obj.pk else "not set"

    @admin.action(description="Log in to V&R and read the export (reads only)")
    def check_connection(self, request, queryset) -> None:
        from .sync import check

        for connection in queryset:
            result = check(connection)
            self.message_user(
                request, f"{connection.name}: {result.summary}", messages.SUCCESS if result.ok else messages.ERROR
            )


@admin.register(VRListingDetail)
class VRListingDetailAdmin(AccountScopedAdmin):
    """What the V&R export last said of each item, read-only (written by the sync)."""

    list_display = ["product_id", "sku", "state", "price", "sold_seen_at", "ended_here", "connection", "last_seen_at"]
    list_filter = ["state", "ended_here", "connection"]
    search_fields = ["product_id", "sku"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(VRStepFailure)
class VRStepFailureAdmin(AccountScopedAdmin):
    """Failed browser steps with what V&R showed: the screenshot inline and the page's HTML as a link."""

    list_display = [
        "created_at",
        "listing_link",
        "sku",
        "product_id",
        "step",
        "short_message",
        "screenshot_thumb",
        "html_link",
    ]
    list_filter = ["connection", "step"]
    search_fields = ["sku", "product_id", "message"]
    list_select_related = ["connection"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["listing_link", "screenshot_image", "html_link"]

    @admin.display(description="Listing")
    def listing_link(self, obj: VRStepFailure) -> str:
        if obj.listing_id is None:
            return "-"
        url = reverse("admin:inventory_channellisting_change", args=[obj.listing_id])
        return format_html('<a href="{}">listing {}</a>', url, obj.listing_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="What failed")
    def short_message(self, obj: VRStepFailure) -> str:
        return obj.message[:120]

    @admin.display(description="Screenshot")
    def screenshot_thumb(self, obj: VRStepFailure) -> str:
        if not obj.screenshot:
            return "-"
        url = media_link(obj.screenshot)
        return format_html(
            '<a href="{}" target="_blank"><img src="{}" alt="screenshot" style="max-width:160px"></a>', url, url
        )

    @admin.display(description="Screenshot")
    def screenshot_image(self, obj: VRStepFailure) -> str:
        if not obj.screenshot:
            return "-"
        url = media_link(obj.screenshot)
        return format_html(
            '<a href="{}" target="_blank"><img src="{}" alt="screenshot" style="max-width:900px"></a>', url, url
        )

    @admin.display(description="Page HTML")
    def html_link(self, obj: VRStepFailure) -> str:
        if not obj.page_html:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">page as V&amp;R sent it</a>', media_link(obj.page_html)
        )
