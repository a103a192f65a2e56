"""The WooCommerce connection over the API (CONNECTION_SERIALIZER): secrets write-only, hinted back.

inventory/api/connections.py (the lead's ConnectionSerializer base, with COMMON_FIELDS and
secret_fields handling) is not on main yet, so this is a plain ModelSerializer with the same Meta
attributes and the same behaviour: to be rebased on the base class once it lands.
"""

from rest_framework import serializers

from .models import WooCommerceConnection

COMMON_FIELDS = [
    "id",
    "channel",
    "name",
    "enabled",
    "priority",
    "pull_interval_seconds",
    "pull_offset_seconds",
    "stock_buffer_percent",
    "webhook_path",
    "watermark",
    "last_pull_at",
]


class WooCommerceConnectionSerializer(serializers.ModelSerializer):
    webhook_path = serializers.CharField(read_only=True)
    consumer_key_hint = serializers.CharField(source="key_hint", read_only=True)
    consumer_secret_hint = serializers.CharField(source="secret_hint", read_only=True)
    webhook_secret_hint = serializers.CharField(read_only=True)

    class Meta:
        model = WooCommerceConnection
        fields = [
            *COMMON_FIELDS,
            "store_url",
            "auth_method",
            "consumer_key",
            "consumer_secret",
            "webhook_secret",
            "consumer_key_hint",
            "consumer_secret_hint",
            "webhook_secret_hint",
            "key_permissions",
            "store_currency",
            "timeout_seconds",
            "category_ids",
            "listing_scan_interval_seconds",
        ]
        read_only_fields = ["channel", "watermark", "last_pull_at", "key_permissions", "store_currency"]
        secret_fields = ("consumer_key", "consumer_secret", "webhook_secret")
        extra_kwargs = {name: {"write_only": True, "required": False, "allow_blank": True} for name in secret_fields}

    def update(self, instance, validated_data):
        for name in self.Meta.secret_fields:  # blank keeps the stored value
            if not validated_data.get(name):
                validated_data.pop(name, None)
        return super().update(instance, validated_data)

    def create(self, validated_data):
        if not validated_data.get("webhook_secret"):
            validated_data.pop("webhook_secret", None)  # the model's random default
        return super().create(validated_data)
