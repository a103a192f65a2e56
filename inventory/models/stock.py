"""Orders, stock locks and the stock ledger."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.models import AccountOwned, account_key

from .catalogue import Item


class OrderStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Order(AccountOwned):
    """A sale: made in the shop, through the API, or reported by a channel."""

    account = account_key(db_index=False)
    # Who bought it and where it goes: what channels report and documents print.
    BUYER_AND_SHIPPING_FIELDS = (
        "buyer_name",
        "buyer_email",
        "ship_name",
        "ship_line1",
        "ship_line2",
        "ship_city",
        "ship_region",
        "ship_postal_code",
        "ship_country",
    )

    channel = models.CharField(max_length=40, default="manual", help_text='"manual" or a channel name.')
    connection = models.ForeignKey(
        "inventory.ChannelConnection",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        db_index=False,
    )
    external_id = models.CharField(max_length=100, help_text="The order number on the channel.")
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.OPEN, editable=False)
    placed_at = models.DateTimeField(help_text="When the buyer ordered, by the channel's clock.")
    buyer_name = models.CharField(max_length=200, blank=True)
    buyer_email = models.EmailField(blank=True)
    ship_name = models.CharField(max_length=200, blank=True)
    ship_line1 = models.CharField(max_length=200, blank=True)
    ship_line2 = models.CharField(max_length=200, blank=True)
    ship_city = models.CharField(max_length=100, blank=True)
    ship_region = models.CharField(max_length=100, blank=True)
    ship_postal_code = models.CharField(max_length=20, blank=True)
    ship_country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code, e.g. US or DE.")
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    shipping = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    tax = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    total = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    note = models.TextField(blank=True)
    channel_updated_at = models.DateTimeField(null=True, blank=True, help_text="The channel's last change time.")
    shipped_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="When staff marked it shipped.")
    carrier = models.CharField(max_length=60, blank=True, editable=False, help_text='e.g. "UPS", "DHL".')
    tracking_number = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "channel", "external_id"],
                condition=Q(connection__isnull=True),
                name="order_unique_per_channel",
                violation_error_message="This order number is already recorded for this channel.",
            ),
            models.UniqueConstraint(
                fields=["connection", "external_id"],
                condition=Q(connection__isnull=False),
                name="order_unique_per_connection",
                violation_error_message="This order number is already recorded for this connection.",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "status", "-placed_at"], name="order_account_status"),
            # Analytics: sales of a period (every status), and orders recorded per connection.
            models.Index(fields=["account", "placed_at"], name="order_account_placed"),
            models.Index(fields=["connection", "created_at"], name="order_connection_created"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} #{self.external_id}"

    @property
    def has_shipping_address(self) -> bool:
        return bool(self.ship_name and self.ship_line1 and self.ship_city and self.ship_country)


class OrderLine(models.Model):
    """One item on an order, with the SKU and title as they were when sold."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    sku = models.CharField(max_length=50)
    title = models.CharField(max_length=200)

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gte=1), name="order_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class LockStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMMITTED = "committed", "Committed"
    RELEASED = "released", "Released"
    RETURNED = "returned", "Returned to stock"


class StockLock(AccountOwned):
    """Units of an item reserved by an open order line until it completes or is cancelled."""

    order_line = models.OneToOneField(OrderLine, on_delete=models.PROTECT, related_name="stock_lock")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="stock_locks", db_index=False)
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=LockStatus.choices, default=LockStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="stock_lock_quantity_positive"),
            models.CheckConstraint(
                condition=Q(status=LockStatus.OPEN, closed_at__isnull=True)
                | (~Q(status=LockStatus.OPEN) & Q(closed_at__isnull=False)),
                name="stock_lock_closed_at_matches_status",
            ),
        ]
        indexes = [models.Index(fields=["item", "status"], name="stock_lock_item_status")]


class MovementKind(models.TextChoices):
    RECEIVED = "received", "Received"
    ADJUSTED = "adjusted", "Adjusted"
    LOCKED = "locked", "Locked by order"
    RELEASED = "released", "Lock released"
    COMMITTED = "committed", "Sold (lock committed)"
    RETURNED = "returned", "Returned to stock"


class StockMovement(AccountOwned):
    """The stock ledger: one row per change of on-hand or locked quantity, never edited."""

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="stock_movements", db_index=False)
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    on_hand_delta = models.IntegerField(default=0)
    locked_delta = models.IntegerField(default=0)
    on_hand_after = models.IntegerField()
    locked_after = models.IntegerField()
    order_line = models.ForeignKey(OrderLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    source = models.CharField(max_length=40)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(on_hand_delta=0) | ~Q(locked_delta=0), name="stock_movement_changes_something"
            ),
            models.CheckConstraint(
                condition=Q(on_hand_after__gte=0, locked_after__gte=0, locked_after__lte=F("on_hand_after")),
                name="stock_movement_after_valid",
            ),
        ]
        indexes = [models.Index(fields=["item", "-id"], name="stock_movement_item")]
