"""A loopback Shopify store speaking the Admin GraphQL API (2025-01), for tests, benchmarks and the demo."""

from .cost import LeakyBucket, document_cost
from .server import API_VERSION, DEFAULT_SECRET, DEFAULT_TOKEN, Delivery, Faults, RecordedRequest, ShopifySandbox
from .store import LOCATION_ID, SHOP_DOMAIN, SandboxError, ShopifyStore

__all__ = [
    "API_VERSION",
    "DEFAULT_SECRET",
    "DEFAULT_TOKEN",
    "LOCATION_ID",
    "SHOP_DOMAIN",
    "Delivery",
    "Faults",
    "LeakyBucket",
    "RecordedRequest",
    "SandboxError",
    "ShopifySandbox",
    "ShopifyStore",
    "document_cost",
]
