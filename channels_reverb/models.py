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

    def save(self, *args, **kwargs):
        self.channel = "reverb"
        super().save(*args, **kwargs)


class ReverbListingDetail(AccountOwned):
    """What Reverb last said about one of our listings: slug, links, state and its warnings.

    Written by the Reverb sync functions after each call (never by inventory); staff read it
    to see why a listing stays a draft (Reverb explains only in `warnings`).
    """

    connection = models.ForeignKey(ReverbConnection, on_delete=models.CASCADE, related_name="listing_details")
    listing_id = models.CharField(max_length=40)
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    slug = models.CharField(max_length=255, blank=True)
    self_href = models.URLField(max_length=500, blank=True)
    web_url = models.URLField(max_length=500, blank=True)
    state = models.CharField(max_length=30, blank=True, help_text="Reverb's own state slug (live, draft, sold...).")
    warnings = models.JSONField(default=list, blank=True)
    last_seen = models.JSONField(default=dict, blank=True, help_text="The listing JSON as Reverb last returned it.")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "Reverb listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "listing_id"], name="reverb_listing_once_per_connection")
        ]

    def __str__(self) -> str:
        return f"Reverb listing {self.listing_id}"
