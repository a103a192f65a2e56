"""eBay as a channel: the seller's eBay account (OAuth app keys, refresh token, listing defaults)
and what eBay last said about each of our offers."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.encryption import EncryptedCharField, EncryptedTextField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection

PRODUCTION_API_URL = "https://api.ebay.com"
PRODUCTION_TOKEN_URL = "https://api.ebay.com/identity/v1/oauth2/token"
SANDBOX_API_URL = "https://api.sandbox.ebay.com"
SANDBOX_TOKEN_URL = "https://api.sandbox.ebay.com/identity/v1/oauth2/token"

MARKETPLACES = [
    ("EBAY_US", "eBay US"),
    ("EBAY_GB", "eBay UK"),
    ("EBAY_DE", "eBay Germany"),
    ("EBAY_CA", "eBay Canada"),
    ("EBAY_AU", "eBay Australia"),
    ("EBAY_FR", "eBay France"),
    ("EBAY_IT", "eBay Italy"),
    ("EBAY_ES", "eBay Spain"),
]
# The language of a listing's text on each marketplace (Content-Language, the item's locale).
MARKETPLACE_LANGUAGE = {
    "EBAY_US": "en-US",
    "EBAY_GB": "en-GB",
    "EBAY_DE": "de-DE",
    "EBAY_CA": "en-CA",
    "EBAY_AU": "en-AU",
    "EBAY_FR": "fr-FR",
    "EBAY_IT": "it-IT",
    "EBAY_ES": "es-ES",
}


def _hint(secret: str) -> str:
    if not secret:
        return "not set"
    return f"set, ends …{secret[-4:]}" if len(secret) >= 12 else "set"


class EbayConnection(ChannelConnection):
    """A seller's eBay account, reached with the app's keys and the seller's OAuth refresh token.

    The client secret and the refresh token are secrets: never shown back, never logged. The
    access token made from them lives in the cache only (shared by every worker until shortly
    before it expires). `api_base_url` and `token_url` point at production by default; eBay's
    sandbox or this app's loopback sandbox can be set (they may be one host).
    """

    client_id = models.CharField(max_length=255, help_text="App ID (Client ID) of the eBay developer keyset.")
    client_secret = EncryptedCharField(max_length=255, help_text="Cert ID (Client Secret) of the keyset.")
    refresh_token = EncryptedTextField(help_text="The seller's OAuth refresh token (about 18 months valid).")
    marketplace_id = models.CharField(max_length=20, choices=MARKETPLACES, default="EBAY_US")
    merchant_location_key = models.CharField(
        max_length=36, blank=True, help_text="Inventory location the items ship from (must exist on eBay)."
    )
    fulfillment_policy_id = models.CharField(max_length=40, blank=True, help_text="Business policy: shipping.")
    payment_policy_id = models.CharField(max_length=40, blank=True, help_text="Business policy: payment.")
    return_policy_id = models.CharField(max_length=40, blank=True, help_text="Business policy: returns.")
    category_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our category name -> eBay leaf category id, e.g. {"Electric Guitars": "33034"}.',
    )
    condition_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our condition -> eBay condition enum, overriding the defaults, e.g. {"mint": "LIKE_NEW"}.',
    )
    api_base_url = models.URLField(
        max_length=255,
        default=PRODUCTION_API_URL,
        help_text=f"eBay API host. Production: {PRODUCTION_API_URL}; eBay's sandbox: {SANDBOX_API_URL}.",
    )
    token_url = models.URLField(
        max_length=255,
        default=PRODUCTION_TOKEN_URL,
        help_text=f"OAuth token endpoint. Production: {PRODUCTION_TOKEN_URL}; sandbox: {SANDBOX_TOKEN_URL}.",
    )
    timeout_seconds = models.FloatField(
        default=15.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(120)],
        help_text="How long one request may take before it counts as failed.",
    )
    verification_token = EncryptedCharField(
        max_length=80,
        blank=True,
        help_text="Marketplace account deletion: the verification token registered with eBay (32-80 characters).",
    )
    endpoint_url = models.URLField(
        max_length=500,
        blank=True,
        help_text="The notification endpoint exactly as registered with eBay (the challenge hashes it byte for byte).",
    )
    listing_scan_interval_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MaxValueValidator(86_400)],
        help_text="How often a pull also reads every inventory item and offer (listings not made here); 0: every pull.",
    )

    class Meta:
        verbose_name = "eBay connection"

    def save(self, *args, **kwargs):
        self.channel = "ebay"
        super().save(*args, **kwargs)

    @property
    def language(self) -> str:
        return MARKETPLACE_LANGUAGE.get(self.marketplace_id, "en-US")

    @property
    def client_secret_hint(self) -> str:
        return _hint(self.client_secret)

    @property
    def refresh_token_hint(self) -> str:
        return _hint(self.refresh_token)

    @property
    def verification_token_hint(self) -> str:
        return _hint(self.verification_token)


class EbayListingDetail(AccountOwned):
    """What eBay last said about one of our offers (SKU, listing id, status, errors), and the revisions
    spent on its listing today (eBay allows 250 per listing per calendar day).

    Written by the eBay sync functions only; staff read it to see why an offer did not publish.
    """

    connection = models.ForeignKey(
        EbayConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    sku = models.CharField(max_length=50)
    offer_id = models.CharField(max_length=40, blank=True)
    listing_id = models.CharField(max_length=40, blank=True, help_text="eBay's item number once published.")
    status = models.CharField(max_length=30, blank=True, help_text="Offer status and listing status, as eBay says.")
    last_error = models.TextField(blank=True, help_text="eBay's words on the last refused call (message and field).")
    warnings = models.JSONField(default=list, blank=True)
    revision_day = models.DateField(null=True, blank=True)
    revisions_today = models.PositiveIntegerField(default=0)
    last_seen = models.JSONField(default=dict, blank=True, help_text="The offer JSON as eBay last returned it.")
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "eBay listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "sku"], name="ebay_listing_once_per_sku")]

    def __str__(self) -> str:
        return f"eBay offer {self.offer_id or '-'} ({self.sku})"


class EbayOrderBuyer(AccountOwned):
    """Which eBay user bought which order, so a marketplace account deletion can find their data.

    eBay's deletion notice names the user (username, userId); our orders keep only names and
    addresses. Written when an order is read; deleted with the buyer's data.
    """

    connection = models.ForeignKey(
        EbayConnection, on_delete=models.CASCADE, related_name="order_buyers", db_index=False
    )
    order_id = models.CharField(max_length=100)
    username = models.CharField(max_length=100, db_index=True)

    class Meta:
        verbose_name = "eBay order buyer"
        constraints = [models.UniqueConstraint(fields=["connection", "order_id"], name="ebay_order_buyer_once")]


class EbayLegacyListing(AccountOwned):
    """A listing made on eBay's website (or with the Trading API), seen through one of its orders.

    The Inventory API cannot see or change such listings until they are migrated
    (bulkMigrateListing, one way). Staff find them in the admin with what to do, and migrate
    them from there on purpose.
    """

    connection = models.ForeignKey(
        EbayConnection, on_delete=models.CASCADE, related_name="legacy_listings", db_index=False
    )
    listing_id = models.CharField(max_length=40, help_text="eBay's item number.")
    sku = models.CharField(max_length=100, blank=True, help_text="The listing's custom label, if it has one.")
    title = models.CharField(max_length=200, blank=True)
    first_order_id = models.CharField(max_length=100, blank=True)
    seen_at = models.DateTimeField(auto_now_add=True)
    migrated_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="eBay's words when a migration was refused.")

    class Meta:
        verbose_name = "eBay listing made outside the Inventory API"
        ordering = ["-seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "listing_id"], name="ebay_legacy_listing_once")]

    def __str__(self) -> str:
        return f"eBay item {self.listing_id}"

    @property
    def what_to_do(self) -> str:
        if self.migrated_at:
            return "Migrated: the next pull imports it."
        label = "" if self.sku else "Give it a SKU (Custom label) on eBay, then m"
        return (
            f"{label or 'M'}igrate it (action below) so this back office can end it when it sells elsewhere, "
            "or end it on eBay. Until then it is not ended automatically."
        )
