"""A loopback Etsy speaking Open API v3's wire format, checked against the OpenAPI file."""

from .server import Delivery, EtsySandbox, Faults, RecordedRequest
from .store import (
    DEFAULT_KEYSTRING,
    DEFAULT_SHARED_SECRET,
    READINESS_STATE_ID,
    RETURN_POLICY_ID,
    SHIPPING_PROFILE_ID,
    SHOP_ID,
    EtsyStore,
    SandboxError,
)

__all__ = [
    "DEFAULT_KEYSTRING",
    "DEFAULT_SHARED_SECRET",
    "READINESS_STATE_ID",
    "RETURN_POLICY_ID",
    "SHIPPING_PROFILE_ID",
    "SHOP_ID",
    "Delivery",
    "EtsySandbox",
    "EtsyStore",
    "Faults",
    "RecordedRequest",
    "SandboxError",
]
