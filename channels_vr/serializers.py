"""A V&R connection over the API (the contract's CONNECTION_SERIALIZER): the password is write-only."""

from inventory.api.connections import ConnectionSerializer

from .models import VRConnection


class VRConnectionSerializer(ConnectionSerializer):
    class Meta(ConnectionSerializer.Meta):
        model = VRConnection
        fields = [
            *ConnectionSerializer.COMMON_FIELDS,
            "username",
            "password",
            "base_url",
            "step_timeout_seconds",
            "currency",
            "processing_time",
            "processing_unit",
            "available_for_shipment",
        ]
        secret_fields = ("password",)

    def get_secrets(self, obj) -> dict[str, str]:
        # A password is not a token: not even its last characters are shown back.
        return {"password": obj.password_hint}
