"""Inventory operations: the only code that writes items, state history, stock and orders.

Every operation runs in one transaction, locks the rows it changes (items in primary-key
order, so two operations never deadlock), and writes its history or ledger rows in the
same transaction. Callers (admin, API, commands, tasks) pass an `Actor` saying who acts
and from where.
"""

from .actor import SYSTEM, Actor
from .items import (
    EDITABLE_FIELDS,
    BulkTransitionResult,
    item_bulk_transition,
    item_create,
    item_transition,
    item_update,
    items_auto_archive,
)
from .orders import LineSpec, order_cancel, order_complete, order_create, order_ship
from .stock import stock_adjust

__all__ = [
    "EDITABLE_FIELDS",
    "SYSTEM",
    "Actor",
    "BulkTransitionResult",
    "LineSpec",
    "item_bulk_transition",
    "item_create",
    "item_transition",
    "item_update",
    "items_auto_archive",
    "order_cancel",
    "order_complete",
    "order_create",
    "order_ship",
    "stock_adjust",
]
