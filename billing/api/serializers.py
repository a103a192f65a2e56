from rest_framework import serializers

from ..models import Feature, Plan


class PlanSerializer(serializers.ModelSerializer):
    """A plan as offered: price, limits (null = unlimited) and what it includes."""

    features = serializers.SerializerMethodField()
    overage_price_per_listing_day = serializers.DecimalField(max_digits=8, decimal_places=4, read_only=True)

    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "description",
            "monthly_price",
            "currency",
            "max_active_listings",
            "max_channels",
            "max_staff_users",
            "api_requests_per_minute",
            "features",
            "overage_price_per_listing_day",
        ]

    def get_features(self, plan) -> list[str]:
        return [feature.value for feature in Feature if plan.has(feature)]


class LimitUsageSerializer(serializers.Serializer):
    limit = serializers.CharField()
    label = serializers.CharField()
    usage = serializers.IntegerField()
    allowed = serializers.IntegerField(allow_null=True, help_text="null: unlimited.")
    peak_this_period = serializers.IntegerField(allow_null=True)
    percent = serializers.IntegerField(allow_null=True)
    over = serializers.BooleanField()
    overage_billed = serializers.BooleanField()


class CountersSerializer(serializers.Serializer):
    api_requests = serializers.IntegerField()
    orders_imported = serializers.IntegerField()
    sync_runs = serializers.IntegerField()
    pdfs_generated = serializers.IntegerField()


class BillingOverviewSerializer(serializers.Serializer):
    """The account's plan, status and usage against the limits that apply now."""

    plan = PlanSerializer(help_text="The plan whose limits apply now.")
    subscribed_plan = PlanSerializer(help_text="The plan the account is on (differs while restricted).")
    status = serializers.CharField(source="state.status")
    restriction = serializers.CharField(
        source="state.restriction", help_text='Why FREE limits apply: "", payment_overdue, subscription_ended.'
    )
    past_due_since = serializers.DateTimeField(source="state.past_due_since", allow_null=True)
    grace_ends_at = serializers.DateTimeField(source="state.grace_ends_at", allow_null=True)
    cancel_at_period_end = serializers.BooleanField(source="state.cancel_at_period_end")
    current_period_start = serializers.DateTimeField(source="state.current_period_start", allow_null=True)
    current_period_end = serializers.DateTimeField(source="state.current_period_end", allow_null=True)
    usage_period_start = serializers.DateTimeField(source="period_start")
    usage_period_end = serializers.DateTimeField(source="period_end")
    limits = LimitUsageSerializer(many=True)
    counters = CountersSerializer()
    api_requests_per_minute = serializers.IntegerField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField(), required=False)


class PlanChoiceSerializer(serializers.Serializer):
    plan = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Plan.objects.filter(is_public=True),
        help_text="The code of a plan on sale (GET /api/v1/billing/plans/).",
    )


class CheckoutInputSerializer(PlanChoiceSerializer):
    success_url = serializers.URLField(required=False, help_text="Where Stripe sends the buyer after paying.")
    cancel_url = serializers.URLField(required=False, help_text="Where Stripe sends the buyer on cancel.")


class PortalInputSerializer(serializers.Serializer):
    return_url = serializers.URLField(required=False)


class RedirectSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Open this Stripe page in the browser.")


class InvoiceSerializer(serializers.Serializer):
    id = serializers.CharField()
    number = serializers.CharField()
    status = serializers.CharField(allow_null=True)
    created = serializers.DateTimeField()
    total = serializers.CharField()
    amount_due = serializers.CharField()
    currency = serializers.CharField()
    hosted_invoice_url = serializers.URLField(allow_null=True)
    invoice_pdf = serializers.URLField(allow_null=True)
