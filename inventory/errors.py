"""Errors the inventory services raise. Each says what went wrong and what to do instead."""


class InventoryError(Exception):
    """Base for refusals of an inventory operation. `status` is the HTTP status the API uses."""

    code = "inventory_error"
    status = 400

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class TransitionNotAllowed(InventoryError):
    code = "transition_not_allowed"
    status = 409


class InsufficientStock(InventoryError):
    code = "insufficient_stock"
    status = 409


class ItemNotSellable(InventoryError):
    code = "item_not_sellable"
    status = 409


class OrderStateError(InventoryError):
    code = "order_state"
    status = 409
