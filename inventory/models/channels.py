"""Channels as inventory sees them: connections, per-channel listings, sync runs, webhook inbox."""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from accounts.encryption import EncryptedCharField, Sha256DigestField, sha256_hex
from accounts.models import AccountOwned, account_key


def new_webhook_token() -> str:
    return secrets.token_urlsafe(32)


def secret_hint(value: str) -> str:
    """Enough of a secret for staff to recognise it, never enough to use it."""
    if not value:
        return "not set"
    return f"set, ends …{value[-4:]}" if len(value) >= 12 else "set"


class EditStrategy(models.TextChoices):
    """What happens when a listing's field was changed on the channel itself (not from here)."""

    OURS = "ours", "Ours wins (push ours back)"
    CHANNEL = "channel", "The channel wins (take it into the item, for every channel)"
    HIGHEST = "highest", "The highest price wins"
    LOWEST = "lowest", "The lowest price wins"
    ASK = "ask", "Ask staff (a conflict to settle with one click)"


# The fields an edit on a channel is looked for in, and the strategies each may use.
EDITED_FIELDS = ("price", "quantity", "title", "description")
PRICE_ONLY_STRATEGIES = (EditStrategy.HIGHEST, EditStrategy.LOWEST)


class ChannelConnection(AccountOwned):
    """A seller's shop on one marketplace. Each channel app subclasses it with its credentials.

    The pull schedule (interval and offset, so connections do not all pull at the same
    second), the stock buffer and the secret webhook URL token live here because the
    engine uses them for every channel.
    """

    account = account_key(db_index=False)
    channel = models.CharField(max_length=40, editable=False, help_text="The channel's registry name.")
    name = models.CharField(max_length=100, help_text='What staff call it, e.g. "Reverb main shop".')
    enabled = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Lower numbers are listed first and win ties between equally timed sales."
    )
    pull_interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(15)], help_text="How often to read changes (sales, states)."
    )
    pull_offset_seconds = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(3600)], help_text="Delay within the interval, to stagger connections."
    )
    price_drift_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="A channel price this far from ours (in %) is drift to alert on; 0 alerts on any difference.",
    )
    price_drift_amount = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text="...or this far in money. A difference within either tolerance is not alerted (it is still pushed back).",
    )
    edit_price = models.CharField(
        max_length=10,
        choices=EditStrategy.choices,
        default=EditStrategy.OURS,
        help_text="A price changed on the channel itself: who wins.",
    )
    edit_quantity = models.CharField(
        max_length=10,
        choices=EditStrategy.choices,
        default=EditStrategy.OURS,
        help_text="A quantity changed on the channel itself: who wins (highest / lowest are for the price).",
    )
    edit_title = models.CharField(
        max_length=10,
        choices=EditStrategy.choices,
        default=EditStrategy.OURS,
        help_text="A title changed on the channel itself: who wins (highest / lowest are for the price).",
    )
    edit_description = models.CharField(
        max_length=10,
        choices=EditStrategy.choices,
        default=EditStrategy.OURS,
        help_text="A description changed on the channel itself: who wins (highest / lowest are for the price).",
    )
    stock_buffer_percent = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(90)],
        help_text="Hold back this share of multi-quantity stock from this channel (rounded up).",
    )
    paused = models.BooleanField(
        default=False,
        help_text=(
            "Paused: nothing new is listed here, but sales are still recorded and its listings are still "
            "revised and ended when the item sells elsewhere."
        ),
    )
    disconnect_requested_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Disconnecting: its listings are being ended; the connection is disabled once all are confirmed.",
    )
    # The URL token is a bearer secret (anyone with the URL can post events): stored encrypted, and
    # found by its SHA-256 (a 256-bit random token cannot be guessed from its digest).
    webhook_token = EncryptedCharField(max_length=64, default=new_webhook_token, editable=False)
    webhook_token_digest = Sha256DigestField(source="webhook_token", unique=True)
    push_failures = models.PositiveIntegerField(
        default=0, editable=False, help_text="Pushes that failed on the channel's side in a row (the circuit breaker)."
    )
    circuit_opened_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Pushes paused since then: the channel kept failing."
    )
    circuit_probe_at = models.DateTimeField(null=True, blank=True, editable=False)
    watermark = models.DateTimeField(null=True, blank=True, help_text="The newest change read from the channel.")
    last_pull_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "channel", "name"],
                name="connection_name_unique",
                violation_error_message="This account already has a connection of this channel with this name.",
            ),
            *(
                models.CheckConstraint(
                    condition=~Q(**{f"edit_{name}__in": PRICE_ONLY_STRATEGIES}),
                    name=f"connection_edit_{name}_not_price_only",
                    violation_error_message=f"Highest / lowest wins is for the price only, not the {name}.",
                )
                for name in EDITED_FIELDS
                if name != "price"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def digest_of(cls, webhook_token: str) -> str:
        """What `webhook_token_digest` holds for this token (for finding a connection by its webhook URL)."""
        return sha256_hex(webhook_token)

    @property
    def webhook_path(self) -> str:
        return f"/hooks/{self.channel}/{self.webhook_token}/"

    @property
    def status(self) -> str:
        """In the seller's words: active, paused, disconnecting or disconnected."""
        if self.disconnect_requested_at and self.enabled:
            return "disconnecting"
        if not self.enabled:
            return "disconnected"
        return "paused" if self.paused else "active"

    @property
    def accepts_new_listings(self) -> bool:
        return self.enabled and not self.paused and self.disconnect_requested_at is None

    def edit_strategy(self, field_name: str) -> str:
        """What this connection does when `field_name` (one of EDITED_FIELDS) was changed on the channel."""
        return getattr(self, f"edit_{field_name}")


class DesiredState(models.TextChoices):
    LIVE = "live", "Live"
    ENDED = "ended", "Ended"


class ListingState(models.TextChoices):
    PENDING = "pending", "Pending"
    LIVE = "live", "Live"
    ENDING = "ending", "Ending"
    ENDED = "ended", "Ended"
    SOLD = "sold", "Sold here"
    MISSING = "missing", "Missing on the channel"
    ERROR = "error", "Error"


class ChannelListing(AccountOwned):
    """One item on one channel connection: what we want (desired) and what the channel has (actual).

    Services change the desired state and content; workers converge the actual state.
    """

    item = models.ForeignKey("inventory.Item", on_delete=models.CASCADE, related_name="listings", db_index=False)
    connection = models.ForeignKey(ChannelConnection, on_delete=models.PROTECT, related_name="listings", db_index=False)
    external_id = models.CharField(max_length=100, blank=True)
    external_url = models.URLField(max_length=500, blank=True)
    desired_state = models.CharField(max_length=10, choices=DesiredState.choices, default=DesiredState.LIVE)
    actual_state = models.CharField(max_length=10, choices=ListingState.choices, default=ListingState.PENDING)
    end_reason = models.CharField(max_length=30, blank=True)
    relist_requested = models.BooleanField(default=False, help_text="End, then list again as a new listing.")
    needs_push = models.BooleanField(default=False, help_text="The item changed since the last push.")
    price_override = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    title_override = models.CharField(max_length=200, blank=True)
    pushed_fingerprint = models.CharField(max_length=64, blank=True)
    pushed_content = models.JSONField(default=dict, blank=True, help_text="What was last pushed, field by field.")
    desired_changed_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is converging this listing until then (one at a time)."
    )
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When the end was confirmed by read-back.")
    imported = models.BooleanField(default=False, help_text="Found on the channel, not listed from here.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection__priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "connection"], name="listing_one_per_item_and_connection"),
            models.UniqueConstraint(
                fields=["connection", "external_id"],
                condition=~Q(external_id=""),
                name="listing_external_id_unique_per_connection",
            ),
        ]
        indexes = [
            models.Index(fields=["desired_state", "actual_state"], name="listing_convergence"),
            models.Index(fields=["connection", "actual_state"], name="listing_connection_state"),
            # Analytics: an item's first listing date (days from listed to sold).
            models.Index(fields=["item", "created_at"], name="listing_item_created"),
            # Analytics' "now" figures (stock per shop, live listings, units for sale): an
            # index-only scan of the live listings instead of the whole table (~2x at 255,000).
            models.Index(
                fields=["account", "connection"],
                include=["item", "price_override"],
                condition=Q(actual_state="live"),
                name="listing_live_by_connection",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.item_id} on {self.connection_id}"

    @property
    def converged(self) -> bool:
        if self.desired_state == DesiredState.LIVE:
            return self.actual_state == ListingState.LIVE and not self.needs_push and not self.relist_requested
        return self.actual_state in (ListingState.ENDED, ListingState.SOLD)


class SyncKind(models.TextChoices):
    PULL = "pull", "Pull"
    PUSH = "push", "Push"
    RECONCILE = "reconcile", "Reconcile"
    AUDIT = "audit", "Read-back audit"
    IMPORT = "import", "Import of listings made on the channel"
    WEBHOOK = "webhook", "Webhook"


class SyncStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    OK = "ok", "OK"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class SyncRun(AccountOwned):
    """One pull, push, reconcile or audit against a connection, with what it did."""

    connection = models.ForeignKey(
        ChannelConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="sync_runs", db_index=False
    )
    kind = models.CharField(max_length=10, choices=SyncKind.choices)
    status = models.CharField(max_length=10, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    ended = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    error_text = models.TextField(blank=True)
    options = models.JSONField(default=dict, blank=True, help_text="What was asked for (e.g. apply, full scan).")
    report = models.JSONField(default=dict, blank=True, help_text="What was found, by kind (audits and imports).")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # A run staff asked for is queued, then claimed by the one worker that carries it out: the
    # sweeper sends a run nobody claimed again (the broker was down), and a copy that arrives
    # while another worker holds it does nothing.
    queued_at = models.DateTimeField(null=True, blank=True, help_text="Last handed to the broker (requested runs).")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="Taken by a worker (requested runs).")

    class Meta:
        ordering = ["-started_at", "-id"]
        # Analytics (push success, pulls per connection in a period) and the last pull of a connection.
        indexes = [models.Index(fields=["connection", "kind", "started_at"], name="syncrun_connection_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.connection_id} {self.status}"


class WebhookStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class WebhookEvent(AccountOwned):
    """A delivery from a channel, stored before anything is done with it (the inbox)."""

    connection = models.ForeignKey(
        ChannelConnection, on_delete=models.CASCADE, related_name="webhook_events", db_index=False
    )
    topic = models.CharField(max_length=100)
    dedupe_key = models.CharField(max_length=200)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    deliveries = models.PositiveIntegerField(default=1, help_text="How many times the channel sent it.")
    status = models.CharField(max_length=10, choices=WebhookStatus.choices, default=WebhookStatus.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "dedupe_key"], name="webhook_event_once_per_connection")
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.dedupe_key}"


class ConflictStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class ConflictKind(models.TextChoices):
    DOUBLE_SALE = "double_sale", "Double sale"
    FIELD_EDIT = "field_edit", "Edited on a channel"


class Conflict(AccountOwned):
    """Something staff settle. A double sale: two orders for the last unit (both orders stay).
    A field edit: a listing's field changed on the channel while its connection asks staff; both
    values are kept here until staff keep ours (pushed back) or take the channel's (into the item)."""

    kind = models.CharField(max_length=20, choices=ConflictKind.choices, default=ConflictKind.DOUBLE_SALE)
    item = models.ForeignKey("inventory.Item", on_delete=models.PROTECT, related_name="conflicts")
    winning_order = models.ForeignKey(
        "inventory.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    losing_order = models.OneToOneField(
        "inventory.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="conflict"
    )
    listing = models.ForeignKey(
        ChannelListing, null=True, blank=True, on_delete=models.CASCADE, related_name="conflicts"
    )
    field = models.CharField(max_length=20, blank=True, help_text="The field edited on the channel.")
    ours = models.TextField(blank=True, help_text="Our value when the edit was seen.")
    theirs = models.TextField(blank=True, help_text="The channel's value, as last seen.")
    status = models.CharField(max_length=10, choices=ConflictStatus.choices, default=ConflictStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="double_sale") | Q(winning_order__isnull=False, losing_order__isnull=False),
                name="conflict_double_sale_has_both_orders",
            ),
            models.CheckConstraint(
                condition=~Q(kind="field_edit") | (Q(listing__isnull=False) & ~Q(field="")),
                name="conflict_field_edit_has_listing_and_field",
            ),
            models.UniqueConstraint(
                fields=["listing", "field"],
                condition=Q(kind="field_edit", status="open"),
                name="conflict_one_open_edit_per_listing_field",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == ConflictKind.FIELD_EDIT:
            return f"{self.field.capitalize()} of {self.item.sku} edited on a channel"
        return f"Double sale of {self.item.sku}"


class AlertKind(models.TextChoices):
    CONFLICT = "conflict", "Double sale"
    SYNC_ERROR = "sync_error", "Sync error"
    LOW_STOCK = "low_stock", "Low stock"
    PRICE_DRIFT = "price_drift", "Price drift"
    REVIEW = "review", "Needs review"
    LISTING_MISSING = "listing_missing", "Listing missing on a channel"
    LISTING_MISMATCH = "listing_mismatch", "Listing mismatch"
    CONNECTION = "connection", "Connection needs attention"
    OUT_OF_STOCK = "out_of_stock", "Out of stock"
    NOT_ENDED = "not_ended", "Not ended after a sale"
    WEBHOOKS_STOPPED = "webhooks_stopped", "Webhooks stopped"
    CHANNEL_EDIT = "channel_edit", "Edited on a channel"


class AlertSeverity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


class Alert(AccountOwned):
    """Something staff must look at. One open alert per cause (dedupe_key), counted each time
    the cause is seen again; resolved when the cause goes away (or by staff, with a note).
    Acknowledged means a person has seen it: it stays open until resolved. Rows are kept."""

    account = account_key(db_index=False)
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices, default=AlertSeverity.MEDIUM)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    dedupe_key = models.CharField(max_length=200)
    item = models.ForeignKey("inventory.Item", null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    listing = models.ForeignKey(ChannelListing, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    conflict = models.ForeignKey(Conflict, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    connection = models.ForeignKey(
        ChannelConnection, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    count = models.PositiveIntegerField(default=1, help_text="How many times the cause was seen while open.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution = models.TextField(blank=True, help_text="Why it was closed: the cause went away, or staff's note.")
    emailed_at = models.DateTimeField(null=True, blank=True, help_text="When it was mailed (at once or in a digest).")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "dedupe_key"],
                condition=Q(resolved_at__isnull=True),
                name="alert_one_open_per_cause",
            )
        ]
        indexes = [models.Index(fields=["account", "resolved_at", "severity"], name="alert_open_by_severity")]

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def __str__(self) -> str:
        return self.title
