"""A Reverb connection over the API (the contract's CONNECTION_SERIALIZER)."""

from rest_framework import serializers

from inventory.api.connections import ConnectionSerializer

from .models import ReverbConnection


class ReverbConnectionSerializer(ConnectionSerializer):
    listing_scan = serializers.CharField(
        source="listing_scan_summary",
        read_only=True,
        help_text="What the last full listing read cost, when the next one is and how often they run.",
    )
    listing_scan_next_at = serializers.DateTimeField(read_only=True, allow_null=True)
    listing_scan_seconds = serializers.FloatField(read_only=True, allow_null=True)
    listing_scan_listings = serializers.IntegerField(read_only=True, allow_null=True)
    listing_scan_effective_seconds = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The scan interval in use (never below the configured one)."
    )

    class Meta(ConnectionSerializer.Meta):
        model = ReverbConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "api_token",
            "base_url",
            "timeout_seconds",
            "listing_scan_interval_seconds",
            "listing_scan",
            "listing_scan_next_at",
            "listing_scan_seconds",
            "listing_scan_listings",
            "listing_scan_effective_seconds",
            "shipping_profile_id",
            "category_uuids",
        ]
        secret_fields = ("api_token",)
