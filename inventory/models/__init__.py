"""The central catalogue and everything that hangs off it."""

from .analytics import AnalyticsSummary
from .catalogue import SKU_FORMAT, YOUTUBE_URL, Condition, Item, ItemEdit, ItemPhoto, ItemStateChange, Source
from .channels import (
    Alert,
    AlertKind,
    AlertSeverity,
    ChannelConnection,
    ChannelListing,
    Conflict,
    ConflictKind,
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
    "AnalyticsSummary",
    "ChannelConnection",
    "ChannelListing",
    "Condition",
    "Conflict",
    "ConflictKind",
    "ConflictStatus",
    "DesiredState",
    "Item",
    "ItemEdit",
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
