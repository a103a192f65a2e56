"""Filters of the item and order lists, used by the API."""

import django_filters

from .models import Condition, Item, Order, OrderStatus
from .states import ItemState


class ItemFilter(django_filters.FilterSet):
    # distinct=False: django-filter defaults to SELECT DISTINCT over every column for multiple
    # choices, which only multi-valued relations need; on a plain column it sorts the whole match.
    state = django_filters.MultipleChoiceFilter(choices=ItemState.choices, distinct=False)
    condition = django_filters.MultipleChoiceFilter(choices=Condition.choices, distinct=False)
    brand = django_filters.CharFilter(lookup_expr="iexact")
    category = django_filters.CharFilter(lookup_expr="iexact")
    storage_location = django_filters.CharFilter(lookup_expr="iexact")
    price_min = django_filters.NumberFilter(field_name="price", lookup_expr="gte")
    price_max = django_filters.NumberFilter(field_name="price", lookup_expr="lte")
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
