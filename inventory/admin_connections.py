"""What every channel's connection admin shares: secrets, the plan's gate, and the staff actions.

A channel app registers its connection model with a `ConnectionAdmin` subclass and a form
subclassing `ConnectionAdminForm` (with `Meta.secret_fields`). The actions (test, pause,
resume, disconnect, pull / audit now, register webhooks) call inventory.services.connections,
the same services the API uses.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from accounts.admin import AccountScopedAdmin
from billing.errors import BillingError
from billing.gates import check_channel_connect

from .channels import channel
from .errors import InventoryError
from .models import ChannelConnection, ChannelListing
from .models.channels import secret_hint
from .services.connections import (
    connection_check,
    connection_create,
    connection_disconnect,
    connection_pause,
    connection_sync_request,
    connection_update,
    connection_webhooks,
    default_priority,
)
from .services.listings import ENDED_STATES

# Settings every channel's form shows at its end (ConnectionAdmin.edit_fields): a post that
# leaves them out (a script, an older form) keeps what the connection has.
KEPT_WHEN_LEFT_OUT = (
    "edit_price",
    "edit_quantity",
    "edit_title",
    "edit_description",
    "price_drift_percent",
    "price_drift_amount",
)


class ConnectionAdminForm(forms.ModelForm):
    """Secrets are typed in, never shown back: blank on edit keeps the stored one."""

    class Meta:
        secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in getattr(self.Meta, "secret_fields", ()):
            if name not in self.fields:
                continue
            old = self.fields[name]
            self.fields[name] = forms.CharField(
                label=old.label,
                required=False,
                strip=True,
                max_length=getattr(old, "max_length", None),
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=f"{old.help_text} Leave blank to keep the current one.".strip(),
            )
        if not self.instance.pk and "priority" in self.fields:
            self.initial.setdefault("priority", default_priority(self.channel_name))
        for name in KEPT_WHEN_LEFT_OUT:
            if name in self.fields:
                self.fields[name].required = False

    @property
    def channel_name(self) -> str:
        return self._meta.model().channel or _channel_of(self._meta.model)

    def clean(self):
        cleaned = super().clean()
        for name in KEPT_WHEN_LEFT_OUT:
            if name in self.fields and cleaned.get(name) in (None, "") and name not in self.errors:
                cleaned[name] = getattr(self.instance, name)  # left out of the post: keep it (or the default)
        for name in getattr(self.Meta, "secret_fields", ()):
            if name not in self.fields:
                continue
            if cleaned.get(name):
                continue
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            if stored:
                cleaned[name] = stored
            elif not self._meta.model._meta.get_field(name).blank:
                self.add_error(name, f"Paste the {self.fields[name].label}.")
        return cleaned

    def validate_unique(self) -> None:
        """Names are unique per account and channel (the parent table's constraint is not checked by Django)."""
        super().validate_unique()
        name = self.cleaned_data.get("name")
        account_id = self.instance.account_id
        if not name or not account_id:
            return
        clash = (
            ChannelConnection.objects.filter(account_id=account_id, channel=self.channel_name, name=name)
            .exclude(pk=self.instance.pk)
            .exists()
        )
        if clash:
            label = getattr(channel(self.channel_name), "LABEL", self.channel_name)
            self.add_error("name", f"This account already has a {label} connection with this name.")
        was_enabled = (
            bool(self.instance.pk) and ChannelConnection.objects.filter(pk=self.instance.pk, enabled=True).exists()
        )
        if self.cleaned_data.get("enabled") and not was_enabled:
            try:
                check_channel_connect(account_id, self.channel_name)  # the plan's channels
            except BillingError as refusal:
                self.add_error(None, refusal.message)
        if was_enabled and self.cleaned_data.get("enabled") is False:
            live = (
                ChannelListing.objects.filter(connection_id=self.instance.pk)
                .exclude(actual_state__in=ENDED_STATES)
                .count()
            )
            if live:
                self.add_error(
                    "enabled",
                    f"{live} listing{'' if live == 1 else 's'} may still be for sale here. Use the Pause action to stop new listings, or "
                    "Disconnect to end them all first.",
                )


def _channel_of(model) -> str:
    for name in settings.CHANNELS:
        if channel(name).CONNECTION_MODEL.lower() == f"{model._meta.app_label}.{model.__name__}".lower():
            return name
    return ""


class ConnectionActionsMixin:
    """Staff actions on connections of any channel (they call the connection services)."""

    actions = ["check_connection", "pull_now", "audit_now", "pause", "resume", "disconnect", "register_webhooks"]

    def _each(self, request, queryset, verb):
        for connection in queryset:
            try:
                text, level = verb(connection)
            except (InventoryError, BillingError) as refusal:
                text, level = refusal.message, messages.ERROR
            self.message_user(request, f"{connection.name}: {text}", level)

    @admin.action(description="Test the connection (reads only)")
    def check_connection(self, request, queryset):
        def verb(connection):
            result = connection_check(connection=connection)
            return result.summary, messages.SUCCESS if result.ok else messages.ERROR

        self._each(request, queryset, verb)

    @admin.action(description="Pull now (orders and every listing)")
    def pull_now(self, request, queryset):
        def verb(connection):
            with transaction.atomic():
                run = connection_sync_request(connection=connection, kind="pull", user=request.user)
            return f"pull queued (sync run #{run.pk}).", messages.SUCCESS

        self._each(request, queryset, verb)

    @admin.action(description="Audit now: read every listing back and fix what is wrong")
    def audit_now(self, request, queryset):
        def verb(connection):
            with transaction.atomic():
                run = connection_sync_request(connection=connection, kind="audit", user=request.user, apply=True)
            return f"audit queued (sync run #{run.pk}); its report shows what was found.", messages.SUCCESS

        self._each(request, queryset, verb)

    @admin.action(description="Pause (no new listings; sales and ends go on)")
    def pause(self, request, queryset):
        def verb(connection):
            connection_pause(connection=connection, paused=True)
            return "paused: nothing new is listed; sales are recorded and ended elsewhere as usual.", messages.SUCCESS

        self._each(request, queryset, verb)

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        def verb(connection):
            connection_pause(connection=connection, paused=False)
            return "resumed.", messages.SUCCESS

        self._each(request, queryset, verb)

    @admin.action(description="Register webhooks (where the channel can)")
    def register_webhooks(self, request, queryset):
        def verb(connection):
            setup = connection_webhooks(connection=connection, base_url=_base_url(request), register=True)
            return "registered: " + "; ".join(setup.registered), messages.SUCCESS

        self._each(request, queryset, verb)

    @admin.action(description="Disconnect: end every listing, then disable")
    def disconnect(self, request, queryset):
        connections = list(queryset)
        if request.POST.get("confirm") == "yes":
            for connection in connections:
                report = connection_disconnect(connection=connection, dry_run=False)
                self.message_user(request, report.text, messages.WARNING)
            return None
        reports = [connection_disconnect(connection=connection, dry_run=True) for connection in connections]
        context = {
            **self.admin_site.each_context(request),
            "title": "Disconnect: end every listing, then disable",
            "reports": reports,
            "queryset": connections,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/inventory/connection_disconnect.html", context)


def _base_url(request) -> str:
    return (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")


class ConnectionAdmin(ConnectionActionsMixin, AccountScopedAdmin):
    """Base admin of a channel's connection model: saves through the connection services."""

    list_display = ["name", "status", "priority", "pull_interval_seconds", "last_pull_at"]
    list_filter = ["enabled", "paused"]
    search_fields = ["name"]
    common_readonly = ["status", "secret_status", "webhook_setup", "watermark", "last_pull_at", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.common_readonly, *super().get_readonly_fields(request, obj)]

    edit_fields = list(KEPT_WHEN_LEFT_OUT)

    def get_fieldsets(self, request, obj=None):
        """Every channel's form ends with what happens when a listing is edited on the channel itself."""
        fieldsets = list(super().get_fieldsets(request, obj))
        shown = {name for _title, options in fieldsets for name in options.get("fields", ())}
        missing = [name for name in self.edit_fields if name not in shown]
        if self.fieldsets and missing:
            fieldsets.append(
                (
                    "Edits made on the channel",
                    {
                        "fields": missing,
                        "description": (
                            "When a pull finds a listing's price, quantity, title or description changed on the "
                            "channel itself. A tie between two channels goes to the lower priority number."
                        ),
                    },
                )
            )
        return fieldsets

    @admin.display(description="Status")
    def status(self, obj) -> str:
        return obj.status if obj.pk else "new"

    @admin.display(description="Secrets")
    def secret_status(self, obj) -> str:
        names = getattr(self.form.Meta, "secret_fields", ())
        return format_html_join(
            ", ",
            "{}: {}",
            ((capfirst(obj._meta.get_field(n).verbose_name), secret_hint(getattr(obj, n, ""))) for n in names),
        )

    @admin.display(description="Webhooks")
    def webhook_setup(self, obj) -> str:
        if not obj.pk:
            return "Shown once the connection is saved."
        setup = connection_webhooks(connection=obj, base_url=settings.SITE_URL or "")
        return format_html("<code>{}</code><br>{}", setup.url, setup.instructions)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data if name != "account"}
        if change:
            original = type(obj).objects.get(pk=obj.pk)
            saved = connection_update(connection=original, fields=fields)
        else:
            account = obj.account if request.user.is_superuser else request.user.account
            saved = connection_create(account=account, channel_name=form.channel_name, fields=fields)
        obj.pk = saved.pk
        obj.id = saved.pk
        obj.channelconnection_ptr_id = saved.pk
