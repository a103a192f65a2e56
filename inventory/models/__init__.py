"""The central catalogue and everything that hangs off it."""

from .catalogue import SKU_FORMAT, YOUTUBE_URL, Condition, Item, ItemPhoto, ItemStateChange, Source
from .channels import (
    Alert,
    AlertKind,
    AlertSeverity,
    ChannelConnection,
    ChannelListing,
    Conflict,
    ConflictStatus,
    DesiredState,
    ListingState,
    SyncKind,
    SyncRun,
    SyncStatus,
    WebhookEvent,
    WebhookStatus,
)
from .health import WorkerHeartbeat
from .stock import LockStatus, MovementKind, Order, OrderLine, OrderStatus, StockLock, StockMovement

__all__ = [
    "SKU_FORMAT",
    "YOUTUBE_URL",
    "Alert",
    "AlertKind",
    "AlertSeverity",
    "ChannelConnection",
    "ChannelListing",
    "Condition",
    "Conflict",
    "ConflictStatus",
    "DesiredState",
    "Item",
    "ItemPhoto",
    "ItemStateChange",
    "ListingState",
    "LockStatus",
    "MovementKind",
    "Order",
    "OrderLine",
    "OrderStatus",
    "Source",
    "StockLock",
    "StockMovement",
    "SyncKind",
    "SyncRun",
    "SyncStatus",
    "WebhookEvent",
    "WebhookStatus",
    "WorkerHeartbeat",
]
