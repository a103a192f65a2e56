"""/api/v1/analytics/...: the dashboard's figures as JSON or CSV (`?format=csv`), one endpoint each.

Every endpoint takes the same filters (period or start/end, channel, bucket), answers 400 with
field errors for a bad one, 402 when the account's plan does not include analytics, and only
ever reads the user's own account (services/analytics.py scopes every query). A figure comes
from the account's summary when it is younger than settings.ANALYTICS_SUMMARY_MAX_AGE
(services/analytics/summary.py): the answer's `as_of` says when it was computed, `?fresh=1`
recomputes it now.
"""

from __future__ import annotations

import csv
import io
import re

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from billing.gates import Feature, require
from inventory.services import analytics as figures

# --- Rendering -----------------------------------------------------------------------------

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def csv_safe(value) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab / carriage
    return) gets a leading quote. Plain numbers such as -12.50 are left as numbers."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r" and not _NUMBER.match(text):
        return "'" + text
    return text


class AnalyticsCSVRenderer(BaseRenderer):
    """The `rows` of an analytics answer as CSV, one column per field (errors stay JSON: the view)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        out = io.StringIO()
        writer = csv.writer(out)
        columns = getattr(response, "csv_columns", None) or (list(data["rows"][0]) if data["rows"] else [])
        writer.writerow(columns)
        for row in data["rows"]:
            writer.writerow([csv_safe(row.get(column)) for column in columns])
        return out.getvalue().encode()


# --- Serializers (the OpenAPI schema of each answer) ------------------------------------------

MONEY = {"max_digits": 16, "decimal_places": 2}
RATE = {"max_digits": 6, "decimal_places": 4, "allow_null": True}


class FiltersSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    channel = serializers.CharField(help_text="Empty: every channel.")
    bucket = serializers.ChoiceField(choices=figures.BUCKETS)


class SaleFiguresSerializer(serializers.Serializer):
    currency = serializers.CharField()
    orders = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY, help_text="Lines' quantity x unit price (no shipping or tax).")
    average_sale_price = serializers.DecimalField(**MONEY, allow_null=True)
    costed_units = serializers.IntegerField(help_text="Units whose item has a cost: what margin covers.")
    costed_revenue = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY)
    margin = serializers.DecimalField(**MONEY, allow_null=True)
    margin_rate = serializers.DecimalField(**RATE)


class SalesByChannelSerializer(serializers.Serializer):
    channel = serializers.CharField()
    currency = serializers.CharField()
    orders = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    average_sale_price = serializers.DecimalField(**MONEY, allow_null=True)
    costed_units = serializers.IntegerField()
    costed_revenue = serializers.DecimalField(**MONEY)
    cost = serializers.DecimalField(**MONEY)
    margin = serializers.DecimalField(**MONEY, allow_null=True)
    margin_rate = serializers.DecimalField(**RATE)
    average_days_to_sell = serializers.DecimalField(
        max_digits=8, decimal_places=1, allow_null=True, help_text="From the item's first listing to the sale."
    )


class SalesOverTimeSerializer(serializers.Serializer):
    bucket = serializers.DateField(help_text="First day of the day / week / month.")
    currency = serializers.CharField()
    orders = serializers.IntegerField()
    units = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)


class TopSellerSerializer(SaleFiguresSerializer):
    rank = serializers.IntegerField()
    name = serializers.CharField(help_text="The brand, the category or the item's title.")
    item_id = serializers.IntegerField(required=False)
    sku = serializers.CharField(required=False)


class SellThroughSerializer(serializers.Serializer):
    channel = serializers.CharField(help_text='A channel, "manual" (in the shop) or "all".')
    units_sold = serializers.IntegerField()
    units_for_sale = serializers.IntegerField()
    sell_through_rate = serializers.DecimalField(**RATE)


class StockByStateSerializer(serializers.Serializer):
    state = serializers.CharField()
    items = serializers.IntegerField()
    units = serializers.IntegerField()
    value = serializers.DecimalField(**MONEY)
    cost_value = serializers.DecimalField(**MONEY)


class StockByShopSerializer(serializers.Serializer):
    connection_id = serializers.IntegerField()
    shop = serializers.CharField()
    channel = serializers.CharField()
    currency = serializers.CharField()
    listings = serializers.IntegerField()
    units = serializers.IntegerField()
    value = serializers.DecimalField(**MONEY)
    cost_value = serializers.DecimalField(**MONEY)


class PlatformSerializer(serializers.Serializer):
    connection_id = serializers.IntegerField()
    shop = serializers.CharField()
    channel = serializers.CharField()
    live = serializers.IntegerField()
    share = serializers.DecimalField(**RATE)
    pending = serializers.IntegerField()
    in_error = serializers.IntegerField()


class OrderStatusSerializer(serializers.Serializer):
    status = serializers.CharField()
    currency = serializers.CharField()
    orders = serializers.IntegerField()
    total = serializers.DecimalField(**MONEY)
    shipped = serializers.IntegerField()
    double_sale_open = serializers.IntegerField()


class SyncHealthSerializer(serializers.Serializer):
    connection_id = serializers.IntegerField()
    shop = serializers.CharField()
    channel = serializers.CharField()
    enabled = serializers.BooleanField()
    pushes = serializers.IntegerField()
    pushes_failed = serializers.IntegerField()
    push_success_rate = serializers.DecimalField(**RATE)
    ends_after_sale = serializers.IntegerField()
    end_seconds_mean = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    end_seconds_p95 = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    orders_recorded = serializers.IntegerField()
    orders_by_webhook = serializers.IntegerField()
    orders_by_pull = serializers.IntegerField()
    webhook_share = serializers.DecimalField(**RATE)
    last_successful_pull = serializers.DateTimeField(allow_null=True)
    listings_in_error = serializers.IntegerField()
    open_alerts = serializers.IntegerField()


class EndedEverywhereSerializer(serializers.Serializer):
    sales = serializers.IntegerField()
    end_seconds_mean = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)
    end_seconds_p95 = serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True)


def _answer(name: str, row: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The envelope {filters, rows} with this row type, named for the schema."""
    return type(
        f"Analytics{name}Answer",
        (serializers.Serializer,),
        {
            "filters": FiltersSerializer(),
            "as_of": serializers.DateTimeField(
                help_text="When the figure was computed (also the X-Analytics-As-Of header)."
            ),
            "summarised": serializers.BooleanField(
                help_text="True: read from the account's summary (at most ANALYTICS_SUMMARY_MAX_AGE old); "
                "false: computed for this answer."
            ),
            "rows": row(many=True),
        },
    )


FILTER_PARAMETERS = [
    OpenApiParameter("period", str, enum=list(figures.PERIODS), description="The last N days; default 30d."),
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (YYYY-MM-DD), with end instead of period."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, included."),
    OpenApiParameter(
        "channel", str, description='A channel of settings.CHANNELS (e.g. reverb) or "manual"; empty: all.'
    ),
    OpenApiParameter("bucket", str, enum=list(figures.BUCKETS), description="Time step of sales-over-time."),
    OpenApiParameter("format", str, enum=["json", "csv"], description="csv: a download of the rows."),
    OpenApiParameter(
        "fresh", str, enum=["1", "0"], description="1: recompute the figure now rather than answer from its summary."
    ),
]
ERRORS = {
    400: OpenApiResponse(description="A bad filter: the body names the field and what is accepted."),
    402: OpenApiResponse(description="The plan does not include analytics: the body names the plan that does."),
}


def _schema(name: str, row: type[serializers.Serializer], summary: str, extra=()):
    return extend_schema(
        summary=summary,
        parameters=[*FILTER_PARAMETERS, *extra],
        responses={(200, "application/json"): _answer(name, row), (200, "text/csv"): OpenApiTypes.STR, **ERRORS},
    )


TOP_PARAMETER = OpenApiParameter("by", str, enum=list(figures.TOP_DIMENSIONS), description="Default brand.")


class AnalyticsViewSet(ViewSet):
    """Sales, stock, listing and sync figures of the user's account."""

    renderer_classes = [JSONRenderer, AnalyticsCSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # ?format=xlsx: say what there is rather than a bare 404
            raise ValidationError({"format": ["Use format=json or format=csv."]}) from None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 or not (isinstance(response.data, dict) and "rows" in response.data):
            # Only figures have rows to download: an error (the API's documented JSON error) or an
            # OPTIONS answer is JSON even when a CSV download was asked for.
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response

    def _figure(self, request, name: str, figure: str | None, row: type[serializers.Serializer], also_allowed=()):
        """One figure (a name of figures.FIGURES), from its summary when that is fresh enough."""
        user = request.user
        if user.account_id is not None:
            require(user.account_id, Feature.ANALYTICS)  # 402 with the plan that includes it
        params = request.query_params
        f = figures.analytics_filter_parse(params, also_allowed=("format", "fresh", *also_allowed))
        if figure is None:
            raise ValidationError({"by": [f"Unknown ranking {params.get('by')!r}: use brand, category or item."]})
        fresh = (params.get("fresh") or "").strip().lower()
        if fresh not in ("", "0", "1", "true", "false"):
            raise ValidationError({"fresh": [f"{fresh!r} is not a yes/no: use fresh=1 to recompute the figure now."]})
        answer = figures.figures_get(
            user=user, f=f, names=[figure], period=figures.filter_period(params), fresh=fresh in ("1", "true")
        )
        found = answer.figures[figure]
        rows = row(found if isinstance(found, list) else [found], many=True).data
        response = Response(
            {"filters": f.as_dict(), "as_of": answer.as_of, "summarised": answer.summarised, "rows": rows}
        )
        response["X-Analytics-As-Of"] = answer.as_of.isoformat()
        response.csv_columns = list(row().fields)
        fmt = request.query_params.get("format")
        if fmt in ("csv", "json"):
            filename = f"{name}-{f.start_date}-{f.end_date}{'-' + f.channel if f.channel else ''}.{fmt}"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @_schema("Sales", SalesByChannelSerializer, "Sales per channel: orders, units, revenue, margin, days to sell")
    @action(detail=False, methods=["get"])
    def sales(self, request):
        return self._figure(request, "sales", "sales_by_channel", SalesByChannelSerializer)

    @_schema("SalesOverTime", SalesOverTimeSerializer, "Orders, units and revenue per day, week or month")
    @action(detail=False, methods=["get"], url_path="sales-over-time")
    def sales_over_time(self, request):
        return self._figure(request, "sales-over-time", "sales_over_time", SalesOverTimeSerializer)

    @_schema("Top", TopSellerSerializer, "Top 10 brands, categories or items by revenue", [TOP_PARAMETER])
    @action(detail=False, methods=["get"])
    def top(self, request):
        by = request.query_params.get("by") or "brand"
        return self._figure(
            request,
            f"top-{by}",
            figures.TOP_FIGURES.get(by),
            TopSellerSerializer,
            also_allowed=("by",),
        )

    @_schema("SellThrough", SellThroughSerializer, "Sell-through rate per channel")
    @action(detail=False, methods=["get"], url_path="sell-through")
    def sell_through(self, request):
        return self._figure(request, "sell-through", "sell_through", SellThroughSerializer)

    @_schema("Stock", StockByStateSerializer, "Stock value (at price and at cost) per item state")
    @action(detail=False, methods=["get"])
    def stock(self, request):
        return self._figure(request, "stock", "stock_by_state", StockByStateSerializer)

    @_schema("StockByShop", StockByShopSerializer, "What is for sale on each shop now, and its value")
    @action(detail=False, methods=["get"], url_path="stock-by-shop")
    def stock_by_shop(self, request):
        return self._figure(request, "stock-by-shop", "stock_by_connection", StockByShopSerializer)

    @_schema("Platforms", PlatformSerializer, "Live listings per shop and their share")
    @action(detail=False, methods=["get"])
    def platforms(self, request):
        return self._figure(request, "platforms", "platforms", PlatformSerializer)

    @_schema("Orders", OrderStatusSerializer, "Orders placed in the period per status")
    @action(detail=False, methods=["get"])
    def orders(self, request):
        return self._figure(request, "orders", "orders_by_status", OrderStatusSerializer)

    @_schema("SyncHealth", SyncHealthSerializer, "Sync health per connection")
    @action(detail=False, methods=["get"], url_path="sync-health")
    def sync_health(self, request):
        return self._figure(request, "sync-health", "sync_health", SyncHealthSerializer)

    @_schema("EndedEverywhere", EndedEverywhereSerializer, "Sale to ended everywhere: mean and p95 seconds")
    @action(detail=False, methods=["get"], url_path="ended-everywhere")
    def ended_everywhere(self, request):
        return self._figure(
            request,
            "ended-everywhere",
            "sale_end_everywhere",
            EndedEverywhereSerializer,
        )
