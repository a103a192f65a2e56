"""A Reverb connection over the API (the contract's CONNECTION_SERIALIZER)."""

from inventory.api.connections import ConnectionSerializer

from .models import ReverbConnection


class ReverbConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = ReverbConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "api_token",
            "base_url",
            "timeout_seconds",
            "listing_scan_interval_seconds",
            "shipping_profile_id",
            "category_uuids",
        ]
        secret_fields = ("api_token",)
