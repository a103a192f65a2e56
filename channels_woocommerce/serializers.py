"""A WooCommerce connection over the API (the contract's CONNECTION_SERIALIZER): secrets write-only, hinted."""

from inventory.api.connections import ConnectionSerializer

from .models import WooCommerceConnection


class WooCommerceConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = WooCommerceConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "store_url",
            "auth_method",
            "consumer_key",
            "consumer_secret",
            "webhook_secret",
            "key_permissions",
            "store_currency",
            "timeout_seconds",
            "category_ids",
            "listing_scan_interval_seconds",
        ]
        read_only_fields = [*ConnectionSerializer.Meta.read_only_fields, "key_permissions", "store_currency"]
        secret_fields = ("consumer_key", "consumer_secret", "webhook_secret")
