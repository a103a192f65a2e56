"""Filters of the item and order lists, used by the API."""

import datetime
from decimal import Decimal

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from .models import Condition, Item, Order, OrderStatus
from .states import ItemState

PRICE_BOUNDS = {"min_value": Decimal("0"), "max_value": Decimal("9999999999.99")}


@extend_schema_field({"type": "number", "minimum": 0, "maximum": float(PRICE_BOUNDS["max_value"])})
class PriceFilter(django_filters.NumberFilter):
    """A price bound, within what the price column holds (the schema states the range)."""


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time turned to UTC: PostgreSQL refuses UTC offsets past 15:59, which
    ISO 8601 (and Python) allow, so `-21:11` would otherwise fail the query (a 500)."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        try:
            return value.astimezone(datetime.UTC)
        except OverflowError:
            raise forms.ValidationError(
                "Give a date and time between the years 1 and 9999, e.g. 2026-01-31T09:00:00Z.", code="invalid"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


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
    updated_since = UtcIsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = Item
        fields = ["state", "condition", "brand", "category", "storage_location", "currency", "needs_review"]


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices, distinct=False)
    placed_since = UtcIsoDateTimeFilter(field_name="placed_at", lookup_expr="gte")

    class Meta:
        model = Order
        fields = ["status", "channel", "connection"]
