"""Plans, each account's subscription (a mirror of Stripe), usage per period, and Stripe events.

What must never be wrong is held by the database: one subscription per account, one
account per Stripe customer and per Stripe subscription, one stored row per Stripe event,
one overage report per account and day, one usage row per account and period.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from accounts.models import AccountOwned, account_key


class PlanCode:
    """The plans the code itself relies on. Every other number lives in the plan rows."""

    FREE = "free"
    PRO = "pro"
    BUSINESS = "business"
    ADMIN = "admin"


class Feature(models.TextChoices):
    """Features a plan switches on. The value is the name of the Plan field that holds it."""

    BULK_OPERATIONS = "bulk_operations", "bulk operations"
    LISTING_IMPORT = "listing_import", "import of listings made on a channel"
    PDF_DOCUMENTS = "pdf_documents", "PDF documents (labels, packing slips, pick lists)"
    ANALYTICS = "analytics", "analytics"
    API_ACCESS = "api_access", "REST API access"


class Limit(models.TextChoices):
    """Countable limits. The value is the name used by `check_limit`; see LIMIT_FIELDS."""

    ACTIVE_LISTINGS = "active_listings", "active listings"
    CHANNELS = "channels", "connected channels"
    STAFF_USERS = "staff_users", "staff users"


LIMIT_FIELDS = {
    Limit.ACTIVE_LISTINGS: "max_active_listings",
    Limit.CHANNELS: "max_channels",
    Limit.STAFF_USERS: "max_staff_users",
}


class Plan(models.Model):
    """What a seller pays for: limits and features. Priced by use, never by a share of sales.

    Empty limits mean unlimited. Rows are created by a data migration and edited in the
    admin by platform staff; `code` is how the code refers to FREE and ADMIN.
    """

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Plans are offered in this order, cheapest first.")
    is_public = models.BooleanField(default=True, help_text="Offered to sellers. The internal ADMIN plan is not.")
    monthly_price = models.DecimalField(max_digits=8, decimal_places=2, validators=[MinValueValidator(Decimal("0"))])
    currency = models.CharField(max_length=3, default="USD")
    stripe_price_id = models.CharField(
        "Stripe price id", max_length=100, blank=True, help_text="The recurring monthly price in Stripe (price_...)."
    )
    max_active_listings = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    max_channels = models.PositiveIntegerField(
        "max connected channels", null=True, blank=True, help_text="Empty: every channel."
    )
    max_staff_users = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    api_requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: unlimited. Only used when API access is on."
    )
    bulk_operations = models.BooleanField(default=False, help_text="Make many items active at once.")
    listing_import = models.BooleanField(default=False, help_text="Import listings made directly on a channel.")
    pdf_documents = models.BooleanField(default=False, help_text="Labels, packing slips and pick lists as PDF.")
    analytics = models.BooleanField(default=False)
    api_access = models.BooleanField(default=False, help_text="Use the REST API (the billing endpoints always work).")
    overage_meter_event_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="Stripe billing meter event name. When set, active listings above the limit are allowed "
        "and reported to Stripe daily instead of being refused.",
    )
    stripe_overage_price_id = models.CharField(
        "Stripe overage price id", max_length=100, blank=True, help_text="The metered price attached to the meter."
    )
    overage_price_per_listing_day = models.DecimalField(
        max_digits=8, decimal_places=4, default=Decimal("0"), validators=[MinValueValidator(Decimal("0"))]
    )

    class Meta:
        ordering = ["position", "monthly_price"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_price_id"],
                condition=~Q(stripe_price_id=""),
                name="plan_stripe_price_unique",
                violation_error_message="Another plan already uses this Stripe price.",
            ),
            models.CheckConstraint(condition=Q(monthly_price__gte=0), name="plan_price_not_negative"),
            models.CheckConstraint(
                condition=Q(overage_price_per_listing_day__gte=0), name="plan_overage_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def limit_of(self, limit: str) -> int | None:
        return getattr(self, LIMIT_FIELDS[limit])

    def has(self, feature: str) -> bool:
        return bool(getattr(self, Feature(feature).value))

    @property
    def allows_listing_overage(self) -> bool:
        return bool(self.overage_meter_event_name)


class SubscriptionStatus(models.TextChoices):
    """Stripe's subscription statuses, mirrored as they are."""

    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
    PAUSED = "paused", "Paused"


# A payment is owed: the plan still applies during the grace period, then FREE limits do.
PAYMENT_DUE_STATUSES = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)
# The subscribed plan applies fully.
PAID_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
# Stripe will never bill this subscription again.
ENDED_STATUSES = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


class Subscription(AccountOwned):
    """An account's plan and, when it pays, the mirror of its Stripe subscription.

    Accounts without a row are on the default plan (BILLING_DEFAULT_PLAN). Rows with a
    Stripe subscription are written only from what Stripe answers when re-read, so events
    arriving late or twice cannot leave a stale state behind.
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    stripe_customer_id = models.CharField("Stripe customer id", max_length=100, blank=True)
    stripe_subscription_id = models.CharField("Stripe subscription id", max_length=100, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(
        null=True, blank=True, help_text="When the payment first failed; the grace period counts from here."
    )
    synced_at = models.DateTimeField(null=True, blank=True, help_text="Last time the state was read from Stripe.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("manage_billing", "Can change the plan, payment method and cancel the subscription")]
        constraints = [
            models.UniqueConstraint(fields=["account"], name="subscription_one_per_account"),
            models.UniqueConstraint(
                fields=["stripe_customer_id"],
                condition=~Q(stripe_customer_id=""),
                name="subscription_stripe_customer_unique",
            ),
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~Q(stripe_subscription_id=""),
                name="subscription_stripe_subscription_unique",
            ),
            models.CheckConstraint(condition=Q(status__in=SubscriptionStatus.values), name="subscription_status_valid"),
            # The grace period needs its start whenever a payment is owed, and only then.
            models.CheckConstraint(
                condition=(Q(status__in=PAYMENT_DUE_STATUSES) & Q(past_due_since__isnull=False))
                | (~Q(status__in=PAYMENT_DUE_STATUSES) & Q(past_due_since__isnull=True)),
                name="subscription_past_due_since_iff_payment_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} on {self.plan} ({self.status})"


class SubscriptionChange(AccountOwned):
    """Audit row: every change of an account's plan or status, with what caused it."""

    account = account_key(db_index=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+", null=True, blank=True)
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    source = models.CharField(max_length=60, help_text='What changed it: "stripe_event evt_...", "admin", "api".')
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="billing_change_account_recent")]

    def __str__(self) -> str:
        return f"{self.account}: {self.from_plan or '-'}/{self.from_status or '-'} -> {self.to_plan}/{self.to_status}"


class UsagePeriod(AccountOwned):
    """What an account used in one billing period. Peaks and counters, rolled up periodically."""

    account = account_key(db_index=False)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    peak_active_listings = models.PositiveIntegerField(default=0)
    peak_channels = models.PositiveIntegerField(default=0)
    api_requests = models.PositiveBigIntegerField(default=0)
    orders_imported = models.PositiveIntegerField(default=0)
    sync_runs = models.PositiveIntegerField(default=0)
    pdfs_generated = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-period_start"]
        constraints = [
            models.UniqueConstraint(fields=["account", "period_start"], name="usage_one_row_per_account_period"),
            models.CheckConstraint(condition=Q(period_end__gt=F("period_start")), name="usage_period_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.period_start:%Y-%m-%d} - {self.period_end:%Y-%m-%d}"


class StripeEvent(models.Model):
    """A Stripe webhook event, stored once by its id before anything acts on it."""

    stripe_id = models.CharField("Stripe event id", max_length=100, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    stripe_created_at = models.DateTimeField()
    payload = models.JSONField()
    account = models.ForeignKey("accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=300, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["received_at"], name="stripe_event_unprocessed", condition=Q(processed_at__isnull=True)
            )
        ]

    def __str__(self) -> str:
        return f"{self.stripe_id} {self.type}"


class OverageReport(AccountOwned):
    """One day of listings above the plan, reported to Stripe as a billing meter event (once)."""

    account = account_key(db_index=False)
    day = models.DateField()
    active_listings = models.PositiveIntegerField()
    included_listings = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField(help_text="Listings above the plan that day: what Stripe bills.")
    meter_event_name = models.CharField(max_length=100)
    identifier = models.CharField(max_length=100, unique=True, help_text="Stripe deduplicates meter events by it.")
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day"], name="overage_one_report_per_account_day"),
            models.CheckConstraint(
                condition=Q(quantity=F("active_listings") - F("included_listings")),
                name="overage_quantity_adds_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.day}: {self.quantity} over"
