"""A Shopify connection over the API (the contract's CONNECTION_SERIALIZER)."""

from inventory.api.connections import ConnectionSerializer

from .models import ShopifyConnection


class ShopifyConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = ShopifyConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "shop_domain",
            "access_token",
            "api_version",
            "webhook_secret",
            "location_id",
            "api_url",
            "timeout_seconds",
        ]
        secret_fields = ("access_token", "webhook_secret")
