"""A loopback eBay (OAuth, Inventory, Fulfillment, Account, Notification) for tests, benchmarks and the demo."""

from .server import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, Delivery, EbaySandbox, Faults, RecordedRequest
from .store import EbayStore, SandboxError

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REFRESH_TOKEN",
    "Delivery",
    "EbaySandbox",
    "EbayStore",
    "Faults",
    "RecordedRequest",
    "SandboxError",
]
