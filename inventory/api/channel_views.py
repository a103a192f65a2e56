"""Channel endpoints: list / delist / relist items, and read listings, sync runs, conflicts, alerts."""

import django_filters
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import AccountScopedViewSetMixin
from accounts.roles import Capability
from inventory.channels import ChannelError
from inventory.models import (
    Alert,
    AlertKind,
    AlertSeverity,
    ChannelListing,
    Conflict,
    ConflictKind,
    ConflictStatus,
    SyncRun,
    WebhookEvent,
)
from inventory.services.alerts import alerts_acknowledge, alerts_resolve, conflict_settle
from inventory.services.edits import field_edit_settle
from inventory.services.listings import listings_end, listings_publish, listings_relist
from inventory.services.sync import webhook_replay

from .actor import api_actor


class ListInputSerializer(serializers.Serializer):
    connections = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text="Connection ids; all enabled ones when left out.",
    )


class BulkListingInputSerializer(ListInputSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=10_000)


class ListingActionRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField(required=False)
    reason = serializers.CharField(required=False)


class ListingActionOutputSerializer(serializers.Serializer):
    done = ListingActionRowSerializer(many=True)
    not_done = ListingActionRowSerializer(many=True)


class ChannelListingSerializer(serializers.ModelSerializer):
    connection_name = serializers.CharField(source="connection.name", read_only=True)
    channel = serializers.CharField(source="connection.channel", read_only=True)
    # Empty until the channel gives the listing a page: a string, not format "uri" (which "" breaks).
    external_url = serializers.CharField(read_only=True, help_text="The listing's page on the channel, or empty.")

    class Meta:
        model = ChannelListing
        fields = [
            "id",
            "item",
            "connection",
            "connection_name",
            "channel",
            "external_id",
            "external_url",
            "desired_state",
            "actual_state",
            "end_reason",
            "price_override",
            "title_override",
            "last_synced_at",
            "last_error",
            "attempts",
            "ended_at",
            "imported",
        ]
        read_only_fields = [f for f in fields if f not in ("price_override", "title_override")]


def _respond(result) -> Response:
    return Response(ListingActionOutputSerializer(result).data)


class ItemListingActionsMixin:
    """List / delist / relist for one item and in bulk (mixed into the item viewset)."""

    def _publish(self, request, item_ids):
        data = ListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            return listings_publish(
                account=self.get_account(),
                item_ids=item_ids,
                actor=api_actor(request),
                connection_ids=data.validated_data.get("connections"),
            )
        except ChannelError as error:
            raise serializers.ValidationError({"connections": [str(error)]}) from error

    @extend_schema(request=ListInputSerializer, responses=ListingActionOutputSerializer)
    @action(detail=True, methods=["post"], url_path="list")
    def list_on_channels(self, request, pk=None):
        """List the item on every enabled channel connection (or the given ones). Workers publish it."""
        return _respond(self._publish(request, [self.get_object().pk]))

    @extend_schema(request=None, responses=ListingActionOutputSerializer)
    @action(detail=True, methods=["post"])
    def delist(self, request, pk=None):
        """End the item's listings everywhere."""
        with transaction.atomic():
            return _respond(
                listings_end(account=self.get_account(), item_ids=[self.get_object().pk], actor=api_actor(request))
            )

    @extend_schema(request=None, responses=ListingActionOutputSerializer)
    @action(detail=True, methods=["post"])
    def relist(self, request, pk=None):
        """End each listing, then list it again."""
        return _respond(
            listings_relist(account=self.get_account(), item_ids=[self.get_object().pk], actor=api_actor(request))
        )

    # A plain array (one row per connection at most), not paginated or filtered; the schema says so.
    @extend_schema(responses=ChannelListingSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def listings(self, request, pk=None):
        """The item's listing on each channel connection."""
        listings = self.get_object().listings.select_related("connection").order_by("connection__priority", "pk")
        return Response(ChannelListingSerializer(listings, many=True).data)

    @extend_schema(request=BulkListingInputSerializer, responses=ListingActionOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-list")
    def bulk_list(self, request):
        data = BulkListingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True)
        return _respond(self._publish(request, list(ids)))

    @extend_schema(request=BulkListingInputSerializer, responses=ListingActionOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-delist")
    def bulk_delist(self, request):
        data = BulkListingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True))
        with transaction.atomic():
            return _respond(listings_end(account=self.get_account(), item_ids=ids, actor=api_actor(request)))

    @extend_schema(request=BulkListingInputSerializer, responses=ListingActionOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-relist")
    def bulk_relist(self, request):
        data = BulkListingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True))
        return _respond(listings_relist(account=self.get_account(), item_ids=ids, actor=api_actor(request)))


class ChannelListingViewSet(AccountScopedViewSetMixin, viewsets.mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Listings per channel; only the per-channel price and title overrides are editable."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes

    queryset = ChannelListing.objects.select_related("connection")
    serializer_class = ChannelListingSerializer
    filterset_fields = ["actual_state", "desired_state", "connection", "item", "imported"]
    ordering = ["-id"]
    http_method_names = ["get", "patch", "head", "options"]

    def perform_update(self, serializer):
        from inventory.services.listings import listings_mark_changed

        with transaction.atomic():
            listing = serializer.save()
            listings_mark_changed([listing.item_id])


class SyncRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncRun
        fields = [
            "id",
            "connection",
            "kind",
            "status",
            "started_at",
            "queued_at",
            "claimed_at",
            "finished_at",
            "duration_ms",
            "created",
            "updated",
            "ended",
            "skipped",
            "errors",
            "api_calls",
            "error_text",
            "options",
            "report",
        ]


class SyncRunViewSet(AccountScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Every pull, push, reconcile, audit and import, with what it did. A sync asked for over the
    connections API answers with one of these (status queued), to follow here."""

    write_capability = Capability.OPERATIONS  # accounts.roles: what changing through it takes

    queryset = SyncRun.objects.all()
    serializer_class = SyncRunSerializer
    filterset_fields = ["connection", "kind", "status"]
    ordering = ["-started_at", "-id"]


class ConflictSerializer(serializers.ModelSerializer):
    winning_order = serializers.SerializerMethodField()
    losing_order = serializers.SerializerMethodField()
    connection = serializers.IntegerField(source="listing.connection_id", read_only=True, default=None)

    class Meta:
        model = Conflict
        fields = [
            "id",
            "kind",
            "item",
            "winning_order",
            "losing_order",
            "listing",
            "connection",
            "field",
            "ours",
            "theirs",
            "status",
            "created_at",
            "resolved_at",
            "note",
        ]

    def _order(self, order) -> dict | None:
        if order is None:
            return None
        return {
            "id": order.pk,
            "channel": order.channel,
            "connection": order.connection_id,
            "external_id": order.external_id,
            "placed_at": order.placed_at,
            "status": order.status,
            "buyer_name": order.buyer_name,
            "total": str(order.total),
        }

    def get_winning_order(self, conflict) -> dict | None:
        return self._order(conflict.winning_order)

    def get_losing_order(self, conflict) -> dict | None:
        return self._order(conflict.losing_order)


class ConflictSettleInputSerializer(serializers.Serializer):
    keep = serializers.ChoiceField(
        choices=["ours", "theirs"],
        required=False,
        help_text="An edit made on a channel: keep ours (pushed back) or take the channel's (into the item).",
    )
    cancel = serializers.ChoiceField(
        choices=["loser", "winner"],
        required=False,
        help_text="A double sale: cancel the later order (loser) or the first one (winner, the sale fell through).",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ConflictViewSet(AccountScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Double sales and edits made on a channel that staff settle. Filter `?kind=field_edit&status=open`."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes
    queryset = Conflict.objects.select_related("winning_order", "losing_order", "listing")
    serializer_class = ConflictSerializer
    filterset_fields = ["status", "item", "kind"]
    ordering = ["-created_at", "-id"]

    @extend_schema(request=ConflictSettleInputSerializer, responses=ConflictSerializer)
    @action(detail=True, methods=["post"])
    def settle(self, request, pk=None):
        """Settle it in one call: `keep` for an edit made on a channel, `cancel` for a double sale."""
        conflict = self.get_object()
        data = ConflictSettleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        wanted = "keep" if conflict.kind == ConflictKind.FIELD_EDIT else "cancel"
        if wanted not in data.validated_data:
            options = "ours or theirs" if wanted == "keep" else "loser or winner"
            raise serializers.ValidationError(
                {wanted: [f"Required for a {conflict.get_kind_display().lower()}: {options}."]}
            )
        if conflict.status != ConflictStatus.OPEN:
            return Response(
                {"code": "already_settled", "detail": f"This conflict was settled already: {conflict.note}"},
                status=409,
            )
        note = data.validated_data.get("note", "")
        if wanted == "keep":
            settled = field_edit_settle(
                conflict_id=conflict.pk, keep=data.validated_data["keep"], actor=api_actor(request), note=note
            )
        else:
            settled = conflict_settle(
                conflict_id=conflict.pk, cancel=data.validated_data["cancel"], actor=api_actor(request), note=note
            )
        return Response(ConflictSerializer(settled).data)


class AlertSerializer(serializers.ModelSerializer):
    connection_name = serializers.CharField(source="connection.name", read_only=True, default="")
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = Alert
        fields = [
            "id",
            "kind",
            "severity",
            "title",
            "message",
            "item",
            "listing",
            "conflict",
            "connection",
            "connection_name",
            "count",
            "created_at",
            "last_seen_at",
            "is_open",
            "acknowledged_at",
            "resolved_at",
            "resolution",
        ]


class AlertFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull", label="Open (not resolved)")
    acknowledged = django_filters.BooleanFilter(
        field_name="acknowledged_at", lookup_expr="isnull", exclude=True, label="Seen by staff"
    )
    severity = django_filters.MultipleChoiceFilter(choices=AlertSeverity.choices, distinct=False)
    kind = django_filters.MultipleChoiceFilter(choices=AlertKind.choices, distinct=False)

    class Meta:
        model = Alert
        fields = ["kind", "severity", "open", "acknowledged", "item", "connection"]


class AlertResolveInputSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="What was done.")


class AlertBulkInputSerializer(AlertResolveInputSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=10_000)


class AlertCountSerializer(serializers.Serializer):
    changed = serializers.IntegerField()


class AlertViewSet(AccountScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Alerts: one open per cause, with a count; resolved automatically when the cause goes away,
    or by staff with a note. Filter `?open=true&severity=critical&severity=high`."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes

    queryset = Alert.objects.select_related("connection")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering = ["-created_at", "-id"]

    @extend_schema(request=None, responses=AlertCountSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Seen: it stays open until it is resolved."""
        return Response({"changed": alerts_acknowledge(alert_ids=[self.get_object().pk], user=request.user)})

    @extend_schema(request=AlertResolveInputSerializer, responses=AlertCountSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close it with a note of what was done."""
        data = AlertResolveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        n = alerts_resolve(
            alert_ids=[self.get_object().pk], user=request.user, note=data.validated_data.get("note", "")
        )
        return Response({"changed": n})

    @extend_schema(request=AlertBulkInputSerializer, responses=AlertCountSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-resolve")
    def bulk_resolve(self, request):
        data = AlertBulkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True)
        n = alerts_resolve(alert_ids=list(ids), user=request.user, note=data.validated_data.get("note", ""))
        return Response({"changed": n})


class WebhookEventSerializer(serializers.ModelSerializer):
    connection_name = serializers.CharField(source="connection.name", read_only=True)
    channel = serializers.CharField(source="connection.channel", read_only=True)

    class Meta:
        model = WebhookEvent
        fields = [
            "id",
            "connection",
            "connection_name",
            "channel",
            "topic",
            "dedupe_key",
            "status",
            "deliveries",
            "attempts",
            "last_error",
            "received_at",
            "processed_at",
            "payload",
        ]


class WebhookReplyInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000)


class WebhookReplayOutputSerializer(serializers.Serializer):
    replayed = serializers.IntegerField()


class WebhookEventViewSet(AccountScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """The webhook inbox: every delivery stored once, with its processing status; replay after a fix."""

    write_capability = Capability.OPERATIONS  # accounts.roles: what changing through it takes

    queryset = WebhookEvent.objects.select_related("connection")
    serializer_class = WebhookEventSerializer
    filterset_fields = ["connection", "status", "topic"]
    ordering = ["-received_at", "-id"]

    @extend_schema(request=None, responses=WebhookReplayOutputSerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Process this delivery again (idempotent: an order it carries is recorded once)."""
        with transaction.atomic():
            n = webhook_replay(event_ids=[self.get_object().pk])
        return Response({"replayed": n})

    @extend_schema(request=WebhookReplyInputSerializer, responses=WebhookReplayOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-replay")
    def bulk_replay(self, request):
        data = WebhookReplyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True))
        with transaction.atomic():
            n = webhook_replay(event_ids=ids)
        return Response({"replayed": n})
