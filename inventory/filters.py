"""Filters of the item and order lists, used by the API."""

from decimal import Decimal

import django_filters
from drf_spectacular.utils import extend_schema_field

from .models import Condition, Item, Order, OrderStatus
from .states import ItemState

PRICE_BOUNDS = {"min_value": Decimal("0"), "max_value": Decimal("9999999999.99")}


@extend_schema_field({"type": "number", "minimum": 0, "maximum": float(PRICE_BOUNDS["max_value"])})
class PriceFilter(django_filters.NumberFilter):
    """A price bound, within what the price column holds (the schema states the range)."""


class ItemFilter(django_filters.FilterSet):
    # distinct=False: django-filter defaults to SELECT DISTINCT over every column for multiple
    # choices, which only multi-valued relations need; on a plain column it sorts the whole match.
    state = django_filters.MultipleChoiceFilter(choices=ItemState.choices, distinct=False)
    condition = django_filters.MultipleChoiceFilter(choices=Condition.choices, distinct=False)
    brand = django_filters.CharFilter(lookup_expr="iexact")
    category = django_filters.CharFilter(lookup_expr="iexact")
    storage_location = django_filters.CharFilter(lookup_expr="iexact")
    # Bounded like the price column (12 digits, 2 decimals) so the schema says what is accepted.
    price_min = PriceFilter(field_name="price", lookup_expr="gte", **PRICE_BOUNDS)
    price_max = PriceFilter(field_name="price", lookup_expr="lte", **PRICE_BOUNDS)
    updated_since = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Item
        fields = ["state", "condition", "brand", "category", "storage_location", "currency", "needs_review"]


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices, distinct=False)
    placed_since = django_filters.IsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")

    class Meta:
        model = Order
        fields = ["status", "channel", "connection"]
