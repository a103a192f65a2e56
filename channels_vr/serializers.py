"""The V&R connection over the API: the password is write-only, only whether one is set is shown.

Written as a plain ModelSerializer with the attributes the generic connections API reads
(`Meta.secret_fields`); it becomes a subclass of inventory.api.connections.ConnectionSerializer
once that base class is on main.
"""

from rest_framework import serializers

from .models import VRConnection


class VRConnectionSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, style={"input_type": "password"}
    )
    password_hint = serializers.CharField(read_only=True)

    class Meta:
        model = VRConnection
        fields = [
            "id",
            "name",
            "enabled",
            "priority",
            "pull_interval_seconds",
            "pull_offset_seconds",
            "stock_buffer_percent",
            "username",
            "password",
            "password_hint",
            "base_url",
            "step_timeout_seconds",
            "currency",
            "processing_time",
            "processing_unit",
            "available_for_shipment",
        ]
        read_only_fields = ["id", "password_hint"]
        secret_fields = ("password",)

    def validate(self, attrs):
        if not attrs.get("password"):
            attrs.pop("password", None)  # blank on update keeps the stored password
            if self.instance is None:
                raise serializers.ValidationError({"password": "The dealer's V&R password is required."})
        return attrs
