"""Item and order endpoints: input serializer -> service -> output serializer."""

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from accounts.api.base import AccountScopedModelViewSet, AccountScopedViewSetMixin
from accounts.roles import Capability
from billing.gates import Feature, require
from inventory.filters import ItemFilter, OrderFilter
from inventory.models import Item, Order
from inventory.resources import item_csv_lines
from inventory.selectors import inventory_summary, item_history
from inventory.services import (
    LineSpec,
    item_bulk_transition,
    item_create,
    item_transition,
    item_update,
    order_cancel,
    order_complete,
    order_create,
    stock_adjust,
)
from inventory.services.photos import items_mark_reviewed, photo_add, photo_remove, photos_reorder
from inventory.states import ItemState

from . import serializers as s
from .actor import api_actor
from .channel_views import ItemListingActionsMixin
from .seo_views import ItemSeoActionsMixin

ERROR_409 = OpenApiResponse(description="Not allowed now: the body says why and what is allowed.")


class ItemViewSet(ItemSeoActionsMixin, ItemListingActionsMixin, AccountScopedModelViewSet):
    """The catalogue. Writes go through the inventory services."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes

    queryset = Item.objects.prefetch_related("photos")
    serializer_class = s.ItemSerializer
    filterset_class = ItemFilter
    search_fields = ["sku", "title", "brand", "model", "serial_number"]
    ordering_fields = ["id", "sku", "title", "brand", "price", "state", "created_at", "updated_at"]
    ordering = ["-id"]

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        quantity = data.pop("quantity_on_hand", 1)
        state = data.pop("initial_state", "draft")
        photo_urls = data.pop("photo_urls", [])
        item = item_create(
            account=self.get_account(),
            actor=api_actor(request),
            fields=data,
            quantity=quantity,
            state=state,
            photo_urls=photo_urls,
        )
        return Response(self.get_serializer(item).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        item = self.get_object()
        serializer = self.get_serializer(item, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        changes = {k: v for k, v in serializer.validated_data.items() if k not in ("photo_urls", "initial_state")}
        item_update(item_id=item.pk, actor=api_actor(request), changes=changes)
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=s.TransitionInputSerializer, responses={200: s.ItemSerializer, 409: ERROR_409})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Move the item to another state (draft, active, sold, shipped, archived)."""
        item = self.get_object()
        data = s.TransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item_transition(item_id=item.pk, actor=api_actor(request), **data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)

    @extend_schema(request=s.BulkTransitionInputSerializer, responses=s.BulkTransitionOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-transition")
    def bulk_transition(self, request):
        """Move many items; the answer lists per item what moved and what did not, and why."""
        data = s.BulkTransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = None if request.user.is_superuser else request.user.account
        if account is not None and data.validated_data["to_state"] == ItemState.ACTIVE:
            require(account, Feature.BULK_OPERATIONS)  # bulk listing is a plan feature: 402 without it
        result = item_bulk_transition(
            account=account,
            item_ids=data.validated_data["ids"],
            to_state=data.validated_data["to_state"],
            reason=data.validated_data["reason"],
            actor=api_actor(request),
        )
        return Response(s.BulkTransitionOutputSerializer(result).data)

    @extend_schema(request=s.StockAdjustInputSerializer, responses={200: s.ItemSerializer, 409: ERROR_409})
    @action(detail=True, methods=["post"], url_path="adjust-stock")
    def adjust_stock(self, request, pk=None):
        """Receive or write off units, with a reason recorded in the stock ledger."""
        item = self.get_object()
        data = s.StockAdjustInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stock_adjust(item_id=item.pk, actor=api_actor(request), **data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=item.pk)).data)

    # A plain array, not a page: the action is not paginated or filtered (and its schema says so).
    @extend_schema(responses=s.ItemStateChangeSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def history(self, request, pk=None):
        """Every state change of the item, newest first."""
        return Response(s.ItemStateChangeSerializer(item_history(item=self.get_object()), many=True).data)

    @extend_schema(responses=s.StockMovementSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def ledger(self, request, pk=None):
        """The item's stock ledger, newest first."""
        return Response(s.StockMovementSerializer(self.get_object().stock_movements.order_by("-id"), many=True).data)

    @extend_schema(request=None, responses=s.ReviewOutputSerializer)
    @action(detail=True, methods=["post"], url_path="mark-reviewed")
    def mark_reviewed(self, request, pk=None):
        """Staff checked an imported item: clear needs_review (and its review alert)."""
        n = items_mark_reviewed(item_ids=[self.get_object().pk], actor=api_actor(request))
        return Response({"reviewed": n})

    @extend_schema(request=s.ReviewInputSerializer, responses=s.ReviewOutputSerializer)
    @action(detail=False, methods=["post"], url_path="bulk-mark-reviewed")
    def bulk_mark_reviewed(self, request):
        data = s.ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = list(self.get_queryset().filter(pk__in=data.validated_data["ids"]).values_list("pk", flat=True))
        return Response({"reviewed": items_mark_reviewed(item_ids=ids, actor=api_actor(request))})

    @extend_schema(request=s.PhotoInputSerializer, responses={201: s.ItemPhotoSerializer})
    @action(detail=True, methods=["post"], url_path="photos", parser_classes=[JSONParser, MultiPartParser, FormParser])
    def add_photo(self, request, pk=None):
        """Add a photo (multipart `image`, or a `url`); live listings are revised with it."""
        item = self.get_object()  # another account's item is a 404 whatever the body says
        data = s.PhotoInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photo = photo_add(item_id=item.pk, actor=api_actor(request), **data.validated_data)
        return Response(s.ItemPhotoSerializer(photo).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PhotoOrderSerializer, responses=s.ItemPhotoSerializer(many=True))
    @action(detail=True, methods=["post"], url_path="photos/reorder")
    def reorder_photos(self, request, pk=None):
        """Put the photos in this order (every photo id once); the first is the main photo everywhere."""
        item = self.get_object()  # another account's item is a 404 whatever the body says
        data = s.PhotoOrderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        photos = photos_reorder(item_id=item.pk, actor=api_actor(request), photo_ids=data.validated_data["photo_ids"])
        return Response(s.ItemPhotoSerializer(photos, many=True).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"photos/(?P<photo_id>\d+)")
    def remove_photo(self, request, pk=None, photo_id=None):
        """Remove a photo; live listings are revised without it."""
        photo_remove(item_id=self.get_object().pk, actor=api_actor(request), photo_id=int(photo_id))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.InventorySummarySerializer)
    @action(detail=False, methods=["get"])
    def summary(self, request):
        """Counts, units and value per state, for the filtered items."""
        return Response(
            s.InventorySummarySerializer(inventory_summary(items=self.filter_queryset(self.get_queryset()))).data
        )

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The filtered items as CSV, streamed (the same columns the admin import reads)."""
        items = self.filter_queryset(self.get_queryset())
        response = StreamingHttpResponse(item_csv_lines(items), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="items-{timezone.now():%Y%m%d-%H%M}.csv"'
        return response


class OrderViewSet(AccountScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, GenericViewSet):
    """Orders, with the stock they reserve. Creating the same channel order twice returns the first."""

    write_capability = Capability.CATALOGUE  # accounts.roles: what changing through it takes

    queryset = Order.objects.select_related("connection").prefetch_related("lines")
    serializer_class = s.OrderSerializer
    filterset_class = OrderFilter
    search_fields = ["external_id", "buyer_name", "buyer_email"]
    ordering_fields = ["placed_at", "id", "total"]
    ordering = ["-placed_at", "-id"]

    @extend_schema(
        request=s.OrderCreateInputSerializer, responses={201: s.OrderSerializer, 200: s.OrderSerializer, 409: ERROR_409}
    )
    def create(self, request):
        data = s.OrderCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        lines = [
            LineSpec(item_id=line["item"], quantity=line["quantity"], unit_price=line.get("unit_price"))
            for line in fields.pop("lines")
        ]
        order, created = order_create(
            account=self.get_account(),
            actor=api_actor(request),
            channel=fields.pop("channel", "manual"),
            external_id=fields.pop("external_id"),
            placed_at=fields.pop("placed_at"),
            lines=lines,
            details=fields,
        )
        order = self.get_queryset().get(pk=order.pk)
        return Response(
            s.OrderSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )

    @extend_schema(request=None, responses={200: s.OrderSerializer, 409: ERROR_409})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """The sale went through: commit the reserved stock."""
        order = order_complete(order_id=self.get_object().pk, actor=api_actor(request))
        return Response(s.OrderSerializer(self.get_queryset().get(pk=order.pk)).data)

    @extend_schema(request=s.OrderCancelInputSerializer, responses={200: s.OrderSerializer, 409: ERROR_409})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: release reserved stock, or return sold units to stock."""
        data = s.OrderCancelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = order_cancel(order_id=self.get_object().pk, actor=api_actor(request), **data.validated_data)
        return Response(s.OrderSerializer(self.get_queryset().get(pk=order.pk)).data)
