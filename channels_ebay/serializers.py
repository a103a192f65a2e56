"""An eBay connection over the API (the contract's CONNECTION_SERIALIZER)."""

from inventory.api.connections import ConnectionSerializer

from .models import EbayConnection


class EbayConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = EbayConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "client_id",
            "client_secret",
            "refresh_token",
            "marketplace_id",
            "merchant_location_key",
            "fulfillment_policy_id",
            "payment_policy_id",
            "return_policy_id",
            "category_ids",
            "condition_ids",
            "api_base_url",
            "token_url",
            "timeout_seconds",
            "verification_token",
            "endpoint_url",
            "listing_scan_interval_seconds",
        ]
        secret_fields = ("client_secret", "refresh_token", "verification_token")
