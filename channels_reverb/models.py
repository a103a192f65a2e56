"""Reverb as a channel: the seller's Reverb shop (credentials, settings) and what Reverb says of each listing."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.encryption import EncryptedCharField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection

PRODUCTION_BASE_URL = "https://api.reverb.com/api"
SANDBOX_BASE_URL = "https://sandbox.reverb.com/api"


class ReverbConnection(ChannelConnection):
    """A seller's Reverb shop, reached with a personal access token.

    The token is a secret: the admin never shows it back, list pages never display it and
    the client never logs it. `base_url` points at production by default; Reverb's sandbox
    or the loopback sandbox of this app can be set per connection (a token works in one
    environment only).
    """

    api_token = EncryptedCharField(
        max_length=255,
        help_text="Personal access token from reverb.com/my/api_settings (scopes: read/write listings and orders).",
    )
    base_url = models.URLField(
        max_length=255,
        default=PRODUCTION_BASE_URL,
        help_text=f"Reverb API root. Production: {PRODUCTION_BASE_URL}; Reverb's sandbox: {SANDBOX_BASE_URL}.",
    )
    timeout_seconds = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(120)],
        help_text="How long one request may take before it counts as failed (and is retried by the engine).",
    )
    listing_scan_interval_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MaxValueValidator(86_400)],
        help_text=(
            "How often a pull also reads every listing (states, listings made on Reverb). Reverb cannot filter "
            "listings by change date, so this full read is spaced out; 0 reads them on every pull."
        ),
    )
    # The listing scan's schedule and what the last one cost (written by the sync, shown to staff).
    listing_scan_next_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the next full listing read falls due (empty: now)."
    )
    listing_scan_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    listing_scan_seconds = models.FloatField(
        null=True,
        blank=True,
        editable=False,
        help_text="How long the last full listing read took (pages + comparison).",
    )
    listing_scan_listings = models.PositiveIntegerField(null=True, blank=True, editable=False)
    listing_scan_effective_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="The interval in use: the configured one, or longer when all shops' scans would not fit the workers.",
    )
    shipping_profile_id = models.CharField(
        max_length=40, blank=True, help_text="Reverb shipping profile applied to new listings (Shop settings)."
    )
    category_uuids = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our category name -> Reverb leaf category UUID, e.g. {"Electric Guitars": "dfd39027-..."}.',
    )

    class Meta:
        verbose_name = "Reverb connection"

    @property
    def listing_scan_summary(self) -> str:
        """The listing scan in staff's words: what the last one cost, when the next is, how often."""
        if self.listing_scan_interval_seconds == 0:
            every = "every listing is read on every pull"
        else:
            effective = max(self.listing_scan_effective_seconds or 0, self.listing_scan_interval_seconds)
            every = f"every {effective:,} s"
            if effective > self.listing_scan_interval_seconds:
                every += (
                    f" (configured {self.listing_scan_interval_seconds:,} s; longer because all shops' last scans "
                    "would not fit the workers' share for scans)"
                )
        if self.listing_scan_seconds is None:
            return f"No full listing scan yet: the next pull reads every listing; then {every}."
        last = (
            f"Last scan took {self.listing_scan_seconds:.1f} s for {self.listing_scan_listings or 0:,} listings"
            f" (started {self.listing_scan_started_at:%Y-%m-%d %H:%M} UTC)"
        )
        if self.listing_scan_next_at is not None and self.listing_scan_interval_seconds:
            last += f"; next at {self.listing_scan_next_at:%Y-%m-%d %H:%M} UTC"
        return f"{last}; {every}."

    def save(self, *args, **kwargs):
        self.channel = "reverb"
        super().save(*args, **kwargs)


class ReverbListingDetail(AccountOwned):
    """What Reverb last said about one of our listings: slug, links, state and its warnings.

    Written by the Reverb sync functions after each call (never by inventory); staff read it
    to see why a listing stays a draft (Reverb explains only in `warnings`). A listing scan
    writes only the rows Reverb shows differently from last time (`last_seen_digest`).
    """

    connection = models.ForeignKey(
        ReverbConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    listing_id = models.CharField(max_length=40)
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    slug = models.CharField(max_length=255, blank=True)
    self_href = models.URLField(max_length=500, blank=True)
    web_url = models.URLField(max_length=500, blank=True)
    state = models.CharField(max_length=30, blank=True, help_text="Reverb's own state slug (live, draft, sold...).")
    warnings = models.JSONField(default=list, blank=True)
    last_seen = models.JSONField(default=dict, blank=True, help_text="The listing JSON as Reverb last returned it.")
    # A digest of last_seen: a scan rewrites only the rows whose JSON changed.
    last_seen_digest = models.CharField(max_length=32, blank=True, editable=False)
    last_seen_at = models.DateTimeField(
        help_text="When what Reverb says of it last changed (or it was read alone); the connection shows the last scan."
    )

    class Meta:
        verbose_name = "Reverb listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "listing_id"], name="reverb_listing_once_per_connection")
        ]

    def __str__(self) -> str:
        return f"Reverb listing {self.listing_id}"
