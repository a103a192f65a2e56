from rest_framework import serializers

from inventory.models import SKU_FORMAT, Item, ItemPhoto, ItemStateChange, Order, OrderLine, StockMovement
from inventory.services import EDITABLE_FIELDS
from inventory.states import ItemState


class ItemPhotoSerializer(serializers.ModelSerializer):
    src = serializers.CharField(read_only=True)

    class Meta:
        model = ItemPhoto
        fields = ["id", "position", "src", "alt_text"]


class PhotoInputSerializer(serializers.Serializer):
    """A photo: an uploaded file (multipart) or a URL, with alt text and an optional position."""

    url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    image = serializers.ImageField(required=False)
    alt_text = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    position = serializers.IntegerField(min_value=0, required=False)

    def validate(self, attrs):
        if bool(attrs.get("url")) == bool(attrs.get("image")):
            raise serializers.ValidationError("Send either an image file or a url, not both and not neither.")
        return attrs


class PhotoOrderSerializer(serializers.Serializer):
    photo_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=24)


class ReviewInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=10_000)


class ReviewOutputSerializer(serializers.Serializer):
    reviewed = serializers.IntegerField()


class ItemSerializer(serializers.ModelSerializer):
    """An item as the API shows it. State and locked stock change only through actions."""

    quantity_available = serializers.IntegerField(read_only=True)
    photos = ItemPhotoSerializer(many=True, read_only=True)
    photo_urls = serializers.ListField(
        child=serializers.URLField(max_length=500),
        write_only=True,
        required=False,
        max_length=24,
        help_text="Photo URLs in display order (on create).",
    )
    initial_state = serializers.ChoiceField(
        choices=[ItemState.DRAFT, ItemState.ACTIVE], write_only=True, required=False, default=ItemState.DRAFT
    )
    sku = serializers.CharField(
        max_length=50, required=False, allow_blank=True, validators=[SKU_FORMAT], help_text="Generated when blank."
    )

    class Meta:
        model = Item
        fields = [
            "id",
            *EDITABLE_FIELDS,
            "quantity_on_hand",
            "quantity_locked",
            "quantity_available",
            "state",
            "state_changed_at",
            "needs_review",
            "photos",
            "photo_urls",
            "initial_state",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "quantity_locked",
            "state",
            "state_changed_at",
            "needs_review",
            "created_at",
            "updated_at",
        ]


class ItemStateChangeSerializer(serializers.ModelSerializer):
    # null for changes no person made (channel syncs, the sweeper): the schema says so.
    user = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = ItemStateChange
        fields = ["id", "from_state", "to_state", "created_at", "user", "source", "reason"]


class StockMovementSerializer(serializers.ModelSerializer):
    class Meta:
        model = StockMovement
        fields = [
            "id",
            "kind",
            "on_hand_delta",
            "locked_delta",
            "on_hand_after",
            "locked_after",
            "source",
            "reason",
            "created_at",
        ]


class TransitionInputSerializer(serializers.Serializer):
    to_state = serializers.ChoiceField(choices=ItemState.choices)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class BulkTransitionInputSerializer(TransitionInputSerializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), min_length=1, max_length=10_000)


class BulkTransitionRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sku = serializers.CharField(allow_null=True)
    from_state = serializers.CharField(required=False)
    state = serializers.CharField(required=False, allow_null=True)
    reason = serializers.CharField(required=False)


class BulkTransitionOutputSerializer(serializers.Serializer):
    to_state = serializers.CharField()
    moved = BulkTransitionRowSerializer(many=True)
    not_moved = BulkTransitionRowSerializer(many=True)


STOCK_DELTA_LIMIT = 1_000_000  # far above any real delivery, far below the database's integer range


class StockAdjustInputSerializer(serializers.Serializer):
    delta = serializers.IntegerField(
        min_value=-STOCK_DELTA_LIMIT,
        max_value=STOCK_DELTA_LIMIT,
        help_text=f"Units to add (positive) or remove (negative), at most {STOCK_DELTA_LIMIT:,} either way.",
        error_messages={
            "max_value": f"At most {STOCK_DELTA_LIMIT:,} units can be added at once; split a larger delivery.",
            "min_value": f"At most {STOCK_DELTA_LIMIT:,} units can be removed at once.",
        },
    )
    reason = serializers.CharField(max_length=500)


class StateSummarySerializer(serializers.Serializer):
    count = serializers.IntegerField()
    units = serializers.IntegerField()
    value = serializers.DecimalField(max_digits=16, decimal_places=2)
    cost_value = serializers.DecimalField(max_digits=16, decimal_places=2)


class InventorySummarySerializer(serializers.Serializer):
    by_state = serializers.DictField(child=StateSummarySerializer())
    totals = StateSummarySerializer()


class OrderLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderLine
        fields = ["id", "item", "sku", "title", "quantity", "unit_price"]


ORDER_DETAIL_FIELDS = [*Order.BUYER_AND_SHIPPING_FIELDS, "currency", "shipping", "tax", "note"]


class OrderSerializer(serializers.ModelSerializer):
    lines = OrderLineSerializer(many=True, read_only=True)
    connection_name = serializers.CharField(
        source="connection.name",
        read_only=True,
        default="",
        help_text="The shop it was sold in (two shops on one channel can share an order number).",
    )
    # Channels often withhold the buyer's address: a string that may be empty, not format "email".
    buyer_email = serializers.CharField(read_only=True, help_text="The buyer's e-mail address, or empty.")

    class Meta:
        model = Order
        fields = [
            "id",
            "channel",
            "connection",
            "connection_name",
            "external_id",
            "status",
            "placed_at",
            *ORDER_DETAIL_FIELDS,
            "subtotal",
            "total",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OrderLineInputSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1)
    quantity = serializers.IntegerField(min_value=1)
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)


class OrderCreateInputSerializer(serializers.ModelSerializer):
    lines = OrderLineInputSerializer(many=True, min_length=1)

    class Meta:
        model = Order
        fields = ["channel", "external_id", "placed_at", *ORDER_DETAIL_FIELDS, "lines"]
        extra_kwargs = {"channel": {"required": False}}
        validators = []  # the service records an order once; a replay returns the first one


class OrderCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
