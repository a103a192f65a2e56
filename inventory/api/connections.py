"""Channel connections over the API: connect, edit, test, pause, disconnect, webhooks, syncs on demand.

Each channel supplies its own fields through the contract: its sync module names a
serializer (CONNECTION_SERIALIZER), a subclass of `ConnectionSerializer` below. Secrets
are write-only: they are never shown back, only a hint ("set, ends …1a2b"); leaving one
out (or blank) on an update keeps the stored value. Writes go through
inventory.services.connections, so billing's connect gate and the schedules apply.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.api.base import AccountScopedViewSetMixin
from accounts.roles import Capability
from inventory.channels import channel, channel_names, specific_connection
from inventory.models import ChannelConnection
from inventory.models.channels import secret_hint
from inventory.services.connections import (
    connection_check,
    connection_create,
    connection_delete,
    connection_disconnect,
    connection_pause,
    connection_sync_request,
    connection_update,
    connection_webhooks,
    webhook_url,
)

from .channel_views import SyncRunSerializer


def site_base_url(request) -> str:
    return (settings.SITE_URL or request.build_absolute_uri("/")).rstrip("/")


COMMON_CONNECTION_FIELDS = [
    "id",
    "channel",
    "name",
    "status",
    "enabled",
    "paused",
    "priority",
    "pull_interval_seconds",
    "pull_offset_seconds",
    "stock_buffer_percent",
    "edit_price",
    "edit_quantity",
    "edit_title",
    "edit_description",
    "price_drift_percent",
    "price_drift_amount",
    "webhook_url",
    "secrets",
    "watermark",
    "last_pull_at",
    "disconnect_requested_at",
    "created_at",
]


class ConnectionSerializer(serializers.ModelSerializer):
    """The fields every channel connection has. Channels subclass it with their own model and fields."""

    COMMON_FIELDS = COMMON_CONNECTION_FIELDS

    channel = serializers.CharField(
        required=False, help_text="On create: which channel (a name in settings.CHANNELS, e.g. reverb). Never changes."
    )
    status = serializers.CharField(read_only=True, help_text="active, paused, disconnecting or disconnected")
    paused = serializers.BooleanField(read_only=True, help_text="Use the pause and resume actions.")
    priority = serializers.IntegerField(
        required=False, min_value=0, max_value=32767, help_text="Lower wins ties; default by channel."
    )
    webhook_url = serializers.SerializerMethodField(help_text="Where the channel delivers webhooks (a secret).")
    secrets = serializers.SerializerMethodField(help_text="Which secrets are set, as hints; never the values.")

    class Meta:
        model = ChannelConnection
        fields = COMMON_CONNECTION_FIELDS
        read_only_fields = ["watermark", "last_pull_at", "disconnect_requested_at", "created_at"]
        secret_fields: tuple[str, ...] = ()

    def get_fields(self):
        fields = super().get_fields()
        for name in getattr(self.Meta, "secret_fields", ()):
            fields[name].write_only = True
            if self.instance is not None:
                fields[name].required = False
                fields[name].allow_blank = True
        return fields

    def get_webhook_url(self, obj) -> str:
        request = self.context.get("request")
        return webhook_url(obj, site_base_url(request)) if request else obj.webhook_path

    def get_secrets(self, obj) -> dict[str, str]:
        return {name: secret_hint(getattr(obj, name, "") or "") for name in getattr(self.Meta, "secret_fields", ())}

    def validate(self, attrs):
        attrs.pop("channel", None)  # chosen by the view on create; a connection never changes channel
        if self.instance is not None:
            for name in getattr(self.Meta, "secret_fields", ()):
                if name in attrs and not attrs[name]:
                    attrs.pop(name)  # blank keeps the stored secret
        return attrs


def connection_serializer_class(channel_name: str) -> type[ConnectionSerializer]:
    path = getattr(channel(channel_name), "CONNECTION_SERIALIZER", "")
    if not path:
        raise ValidationError({"channel": [f"The {channel_name} channel cannot be set up over the API yet."]})
    return import_string(path)


def _all_connection_serializers() -> dict[str, type]:
    found = {}
    for name in channel_names():
        path = getattr(channel(name), "CONNECTION_SERIALIZER", "")
        if path:
            found[name] = import_string(path)
    return found


def _connection_schema(component_name: str = "ChannelConnection") -> PolymorphicProxySerializer:
    """The schema of a connection: one shape per configured channel (read when the schema is built)."""
    return PolymorphicProxySerializer(
        component_name=component_name, serializers=_all_connection_serializers, resource_type_field_name=None
    )


class CheckStepSerializer(serializers.Serializer):
    label = serializers.CharField()
    ok = serializers.BooleanField()
    message = serializers.CharField()


class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    summary = serializers.CharField()
    steps = CheckStepSerializer(many=True)


class DisconnectInputSerializer(serializers.Serializer):
    apply = serializers.BooleanField(
        default=False, help_text="False (the default) only says what would be ended; true ends it."
    )


class DisconnectReportSerializer(serializers.Serializer):
    connection = serializers.CharField()
    live = serializers.IntegerField()
    pending = serializers.IntegerField()
    errors = serializers.IntegerField()
    skus = serializers.ListField(child=serializers.CharField())
    applied = serializers.BooleanField()
    disabled = serializers.BooleanField()
    text = serializers.CharField()


class WebhookSetupSerializer(serializers.Serializer):
    url = serializers.CharField()
    by_api = serializers.BooleanField(help_text="Whether the channel registers webhooks by API (else paste the URL).")
    instructions = serializers.CharField()
    registered = serializers.ListField(child=serializers.CharField())


class SyncInputSerializer(serializers.Serializer):
    apply = serializers.BooleanField(
        default=False, help_text="audit and import: fix what is found (without it they only report)."
    )


class ChannelConnectionViewSet(AccountScopedViewSetMixin, viewsets.ModelViewSet):
    """The shop's marketplace connections, for every channel in settings.CHANNELS.

    Create with `{"channel": "reverb", "name": ..., <the channel's fields>}`. Secrets are
    write-only. Adding or enabling one asks the plan (402 with the upgrade hint).
    """

    write_capability = Capability.CONNECTIONS  # accounts.roles: what changing through it takes

    queryset = ChannelConnection.objects.all()
    serializer_class = ConnectionSerializer
    filterset_fields = ["channel", "enabled", "paused"]
    ordering = ["priority", "id"]

    def get_object(self):
        return specific_connection(super().get_object())

    def get_serializer_class(self):
        if self.action == "create":
            return connection_serializer_class(self._requested_channel())
        if self.action in ("retrieve", "update", "partial_update") and "pk" in self.kwargs:
            return connection_serializer_class(self.get_object().channel)
        return ConnectionSerializer

    def _requested_channel(self) -> str:
        data = self.request.data
        if not hasattr(data, "get"):
            raise ValidationError({"non_field_errors": ["Send an object with the connection's fields."]})
        name = str(data.get("channel") or "")
        if name not in settings.CHANNELS:
            raise ValidationError({"channel": [f"Choose one of: {', '.join(settings.CHANNELS)}."]})
        return name

    @extend_schema(request=_connection_schema("ChannelConnectionInput"), responses=_connection_schema())
    def create(self, request, *args, **kwargs):
        name = self._requested_channel()
        serializer = connection_serializer_class(name)(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        connection = connection_create(account=self.get_account(), channel_name=name, fields=serializer.validated_data)
        out = connection_serializer_class(name)(connection, context=self.get_serializer_context())
        return Response(out.data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=_connection_schema())
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(request=_connection_schema("ChannelConnectionInput"), responses=_connection_schema())
    def update(self, request, *args, **kwargs):
        connection = self.get_object()
        serializer = self.get_serializer(connection, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        connection = connection_update(connection=connection, fields=serializer.validated_data)
        return Response(self.get_serializer(connection).data)

    @extend_schema(request=_connection_schema("ChannelConnectionInput"), responses=_connection_schema())
    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, partial=True, **kwargs)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="It has listings or orders: disconnect.")})
    def destroy(self, request, *args, **kwargs):
        connection_delete(connection=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=ConnectionCheckSerializer)
    @action(detail=True, methods=["post"])
    def check(self, request, pk=None):
        """Test the connection against the channel (reads only): what works and what to fix."""
        result = connection_check(connection=self.get_object())
        return Response(
            ConnectionCheckSerializer(
                {"ok": result.ok, "summary": result.summary, "steps": [step.__dict__ for step in result.steps]}
            ).data
        )

    @extend_schema(request=None, responses=ConnectionSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Nothing new is listed here; sales are still recorded and its listings still ended when sold elsewhere."""
        connection = connection_pause(connection=self.get_object(), paused=True)
        return Response(ConnectionSerializer(connection, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=ConnectionSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """List here again; listings that waited while paused are published."""
        connection = connection_pause(connection=self.get_object(), paused=False)
        return Response(ConnectionSerializer(connection, context=self.get_serializer_context()).data)

    @extend_schema(request=DisconnectInputSerializer, responses=DisconnectReportSerializer)
    @action(detail=True, methods=["post"])
    def disconnect(self, request, pk=None):
        """Dry run by default: how many listings would be ended. With apply: end them all, then disable."""
        data = DisconnectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = connection_disconnect(connection=self.get_object(), dry_run=not data.validated_data["apply"])
        return Response(DisconnectReportSerializer({**report.__dict__, "text": report.text}).data)

    @extend_schema(methods=["GET"], request=None, responses=WebhookSetupSerializer)
    @extend_schema(methods=["POST"], request=None, responses=WebhookSetupSerializer)
    @action(detail=True, methods=["get", "post"])
    def webhooks(self, request, pk=None):
        """GET: the webhook URL and how to set it up. POST: register the subscriptions by API, where the channel can."""
        setup = connection_webhooks(
            connection=self.get_object(), base_url=site_base_url(request), register=request.method == "POST"
        )
        return Response(WebhookSetupSerializer(setup.__dict__).data)

    def _sync(self, request, kind: str) -> Response:
        data = SyncInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            run = connection_sync_request(
                connection=self.get_object(), kind=kind, user=request.user, apply=data.validated_data["apply"]
            )
        return Response(SyncRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def pull(self, request, pk=None):
        """Read orders, listing states and every listing now (a task). Follow the SyncRun returned."""
        return self._sync(request, "pull")

    @extend_schema(request=None, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk=None):
        """Converge every listing that lags what the shop wants, now (a task)."""
        return self._sync(request, "reconcile")

    @extend_schema(request=SyncInputSerializer, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"])
    def audit(self, request, pk=None):
        """Read every listing on the channel back and report drift, missing, unknown and duplicate listings."""
        return self._sync(request, "audit")

    @extend_schema(request=SyncInputSerializer, responses={202: SyncRunSerializer})
    @action(detail=True, methods=["post"], url_path="import")
    def import_external(self, request, pk=None):
        """Import listings made directly on the channel (dry run unless apply)."""
        return self._sync(request, "import")
