"""What the document endpoints accept. Ids and SKUs are looked up in the caller's account only."""

from rest_framework import serializers

from documents.models import LabelFormat
from documents.services import MAX_LABELS, MAX_PACKING_SLIPS, MAX_PICK_LIST_LINES, MAX_PICK_LIST_ORDERS


def _ids(maximum: int, noun: str, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=maximum,
        help_text=help_text,
        error_messages={
            "max_length": f"At most {maximum:,} {noun} per document. Split the request into batches of {maximum:,}."
        },
    )


def _texts(maximum: int, noun: str, help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        default=list,
        max_length=maximum,
        help_text=help_text,
        error_messages={
            "max_length": f"At most {maximum:,} {noun} per document. Split the request into batches of {maximum:,}."
        },
    )


class LabelsInputSerializer(serializers.Serializer):
    items = _ids(MAX_LABELS, "items", "Item ids.")
    skus = _texts(MAX_LABELS, "items", "Item SKUs (instead of or as well as ids).")
    label_format = serializers.ChoiceField(
        choices=LabelFormat.choices,
        required=False,
        default="",
        help_text="Label stock; the account's document settings decide when it is left out.",
    )

    def validate(self, attrs):
        if not attrs["items"] and not attrs["skus"]:
            raise serializers.ValidationError({"items": ["Give at least one item id in `items` or SKU in `skus`."]})
        return attrs


class PackingSlipsInputSerializer(serializers.Serializer):
    orders = _ids(MAX_PACKING_SLIPS, "orders", "Order ids.")
    order_numbers = _texts(
        MAX_PACKING_SLIPS,
        "orders",
        'Order numbers as "channel:number" (e.g. "ebay:12-34567-89012") or the bare number when only one '
        "channel uses it.",
    )

    def validate(self, attrs):
        if not attrs["orders"] and not attrs["order_numbers"]:
            raise serializers.ValidationError(
                {"orders": ["Give at least one order id in `orders` or order number in `order_numbers`."]}
            )
        return attrs


class PickListInputSerializer(serializers.Serializer):
    orders = _ids(MAX_PICK_LIST_ORDERS, "orders", "Order ids: every line of each order is picked.")
    order_numbers = _texts(MAX_PICK_LIST_ORDERS, "orders", 'Order numbers as "channel:number" or the bare number.')
    items = _ids(MAX_PICK_LIST_LINES, "items", "Item ids picked without an order (one unit each).")
    skus = _texts(MAX_PICK_LIST_LINES, "items", "Item SKUs picked without an order (one unit each).")

    def validate(self, attrs):
        if not any(attrs[name] for name in ("orders", "order_numbers", "items", "skus")):
            raise serializers.ValidationError(
                {"orders": ["Give at least one order (`orders`, `order_numbers`) or item (`items`, `skus`)."]}
            )
        return attrs
