"""Vintage & Rare as a channel: the dealer's login, mapping tables, and what V&R last showed of each item."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.encryption import EncryptedCharField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection

PRODUCTION_BASE_URL = "https://www.vintageandrare.com"
DEFAULT_PRIORITY = 30  # after Shopify (10) and Reverb (20) on ties (inventory/channels.py)
DEFAULT_PULL_INTERVAL = 900  # the site is slow and must not be hammered: one export every 15 minutes


class VRConnection(ChannelConnection):
    """A dealer's Vintage & Rare account, driven through the dealer pages in a real browser.

    V&R has no API: the product logs in with the dealer's own username and password, fills
    the add/edit item form and reads the inventory CSV export. The password is a secret:
    the admin never shows it back and the client never logs it. `base_url` points at
    production; the loopback sandbox of this app can be set per connection.
    """

    username = models.CharField(max_length=150, help_text="The dealer's V&R login (e-mail or user name).")
    password = EncryptedCharField(max_length=255, help_text="The dealer's V&R password. Never shown back.")
    base_url = models.URLField(
        max_length=255, default=PRODUCTION_BASE_URL, help_text=f"The V&R site. Production: {PRODUCTION_BASE_URL}."
    )
    step_timeout_seconds = models.FloatField(
        default=30.0,
        validators=[MinValueValidator(1), MaxValueValidator(120)],
        help_text="How long one page step (a page load, a submit, the export) may take before it counts as failed.",
    )
    currency = models.CharField(
        max_length=3, blank=True, help_text="The currency of the dealer's V&R prices (blank: the account's)."
    )
    processing_time = models.PositiveSmallIntegerField(
        default=3, validators=[MaxValueValidator(365)], help_text="Processing time shown on new items."
    )
    processing_unit = models.CharField(
        max_length=5, choices=[("days", "days"), ("hours", "hours")], default="days", help_text="Unit of it."
    )
    available_for_shipment = models.BooleanField(default=True, help_text="New items can be shipped (not pickup only).")

    class Meta:
        verbose_name = "Vintage & Rare connection"

    def save(self, *args, **kwargs):
        self.channel = "vr"
        if self._state.adding:
            # The parent table's defaults are for API channels; V&R's are its own.
            parent = {
                f.name: f.default
                for f in ChannelConnection._meta.fields
                if f.name in ("priority", "pull_interval_seconds")
            }
            if self.priority == parent["priority"]:
                self.priority = DEFAULT_PRIORITY
            if self.pull_interval_seconds == parent["pull_interval_seconds"]:
                self.pull_interval_seconds = DEFAULT_PULL_INTERVAL
        super().save(*args, **kwargs)

    @property
    def password_hint(self) -> str:
        """Whether a password is stored, never any of it."""
        return "set" if self.password else "not set"


class VRCategoryMapping(AccountOwned):
    """Our category -> V&R's category levels (the ids of the add-item form's categ_level_0..3 choices)."""

    connection = models.ForeignKey(
        VRConnection, on_delete=models.CASCADE, related_name="category_mappings", db_index=False
    )
    category = models.CharField(max_length=100, help_text='Our category, as on the item, e.g. "Electric Guitars".')
    level_0 = models.CharField(max_length=20, help_text="V&R top category id (categ_level_0), e.g. 51 for Guitars.")
    level_1 = models.CharField(max_length=20, blank=True)
    level_2 = models.CharField(max_length=20, blank=True)
    level_3 = models.CharField(max_length=20, blank=True)

    class Meta:
        verbose_name = "V&R category mapping"
        constraints = [models.UniqueConstraint(fields=["connection", "category"], name="vr_category_once")]

    def __str__(self) -> str:
        return f"{self.category} -> {'/'.join(self.levels)}"

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(level for level in (self.level_0, self.level_1, self.level_2, self.level_3) if level)


class VRBrandMapping(AccountOwned):
    """Our brand -> the brand name V&R accepts (its check_brand_exists knows a fixed list)."""

    connection = models.ForeignKey(
        VRConnection, on_delete=models.CASCADE, related_name="brand_mappings", db_index=False
    )
    brand = models.CharField(max_length=100, help_text='Our brand, as on the item, e.g. "Fender Custom Shop".')
    vr_brand = models.CharField(max_length=100, help_text='The brand V&R knows, e.g. "Fender".')

    class Meta:
        verbose_name = "V&R brand mapping"
        constraints = [models.UniqueConstraint(fields=["connection", "brand"], name="vr_brand_once")]

    def __str__(self) -> str:
        return f"{self.brand} -> {self.vr_brand}"


class VRListingDetail(AccountOwned):
    """What the V&R export last said of one item, and when a sale there was first seen.

    V&R reports a sale only as "product sold: yes" in the export, without a time: the first
    pull that sees it stamps `sold_seen_at`, which becomes the order's time. Items this
    system marked sold or deleted itself (`ended_here`) are never reported as sales.
    """

    connection = models.ForeignKey(
        VRConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    product_id = models.CharField(max_length=40)
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    state = models.CharField(max_length=10, blank=True, help_text="live, sold or deleted.")
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    sold_seen_at = models.DateTimeField(null=True, blank=True, help_text="When a pull first saw it sold on V&R.")
    ended_here = models.BooleanField(default=False, help_text="Marked sold or deleted by this system.")
    last_seen = models.JSONField(default=dict, blank=True, help_text="The export row as V&R last returned it.")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "V&R listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "product_id"], name="vr_listing_once")]

    def __str__(self) -> str:
        return f"V&R item {self.product_id}"


class VRStepFailure(AccountOwned):
    """A browser step that failed: what it tried, V&R's page as a screenshot and as HTML, for staff."""

    connection = models.ForeignKey(VRConnection, on_delete=models.CASCADE, related_name="step_failures")
    listing = models.ForeignKey(
        "inventory.ChannelListing",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="vr_step_failures",
        help_text="The listing whose step failed, when the step was about one.",
    )
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    product_id = models.CharField(max_length=40, blank=True)
    step = models.CharField(max_length=100)
    message = models.TextField()
    page_url = models.CharField(max_length=500, blank=True)
    screenshot = models.CharField(max_length=300, blank=True, help_text="Path under MEDIA_ROOT.")
    page_html = models.CharField(max_length=300, blank=True, help_text="Path under MEDIA_ROOT.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "V&R failed step"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.step}: {self.message[:60]}"
