"""The loopback Selling Partner API (see server.py)."""

from .server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_REFRESH_TOKEN,
    DEFAULT_SELLER_ID,
    AmazonSandbox,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_REFRESH_TOKEN", "DEFAULT_SELLER_ID", "AmazonSandbox"]
