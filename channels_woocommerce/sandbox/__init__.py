"""A loopback WooCommerce shop speaking wc/v3's wire format, for tests, benchmarks and the demo."""

from .records import Delivery, Faults, RecordedRequest, php_json, sign
from .routes import RouteIndex, index_path, route_index
from .server import DEFAULT_KEY, DEFAULT_SECRET, WooSandbox
from .store import SandboxError, WooStore

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_SECRET",
    "Delivery",
    "Faults",
    "RecordedRequest",
    "RouteIndex",
    "SandboxError",
    "WooSandbox",
    "WooStore",
    "index_path",
    "php_json",
    "route_index",
    "sign",
]
