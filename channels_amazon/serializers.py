"""An Amazon connection over the API (the contract's CONNECTION_SERIALIZER)."""

from inventory.api.connections import ConnectionSerializer

from .models import AmazonConnection


class AmazonConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = AmazonConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "seller_id",
            "region",
            "marketplace_ids",
            "lwa_client_id",
            "lwa_client_secret",
            "refresh_token",
            "api_base_url",
            "token_url",
            "timeout_seconds",
            "fulfillment_channel_code",
            "condition_types",
            "default_product_type",
            "listing_scan_interval_seconds",
            "sqs_queue_url",
            "sqs_region",
            "sqs_endpoint_url",
            "aws_access_key_id",
            "aws_secret_access_key",
        ]
        secret_fields = ("lwa_client_secret", "refresh_token", "aws_secret_access_key")
