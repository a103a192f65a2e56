"""An Etsy connection over the API (the contract's CONNECTION_SERIALIZER). Tokens are never
written here: they come from connecting (POST /api/v1/etsy/connections/<id>/authorize/)."""

from inventory.api.connections import ConnectionSerializer

from .models import EtsyConnection


class EtsyConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = EtsyConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "keystring",
            "shared_secret",
            "webhook_secret",
            "scopes",
            "shop_id",
            "shipping_profile_id",
            "return_policy_id",
            "readiness_state_id",
            "taxonomy_ids",
            "default_taxonomy_id",
            "auto_renew",
            "api_base_url",
            "authorize_url",
            "token_url",
            "redirect_uri",
            "timeout_seconds",
            "daily_reserve",
            "listing_scan_interval_seconds",
            "token_expires_at",
            "connected",
        ]
        read_only_fields = [*ConnectionSerializer.Meta.read_only_fields, "token_expires_at", "connected"]
        secret_fields = ("shared_secret", "webhook_secret")
