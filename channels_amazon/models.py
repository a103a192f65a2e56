"""Amazon as a channel: the seller's Selling Partner API access, what each item is on Amazon
(its ASIN and product type), and what Amazon last said of each listing."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.encryption import EncryptedCharField, EncryptedTextField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection
from inventory.models.channels import secret_hint

LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"
US_MARKETPLACE = "ATVPDKIKX0DER"


class Region(models.TextChoices):
    NORTH_AMERICA = "na", "North America"
    EUROPE = "eu", "Europe"
    FAR_EAST = "fe", "Far East"


PRODUCTION_HOSTS = {
    Region.NORTH_AMERICA: "https://sellingpartnerapi-na.amazon.com",
    Region.EUROPE: "https://sellingpartnerapi-eu.amazon.com",
    Region.FAR_EAST: "https://sellingpartnerapi-fe.amazon.com",
}
AMAZON_SANDBOX_HOST = "https://sandbox.sellingpartnerapi-na.amazon.com"

ASIN = RegexValidator(r"^[A-Z0-9]{10}$", "An ASIN is 10 capital letters and digits, e.g. B07N4M94X4.")


GENERIC_PULL_INTERVAL = 60  # ChannelConnection's default
ORDER_SEARCH_INTERVAL = 180  # searchOrders: 0.0056 requests per second once its burst of 20 is spent


def default_marketplaces() -> list[str]:
    return [US_MARKETPLACE]


class AmazonConnection(ChannelConnection):
    """A seller's Amazon account, reached through the Selling Partner API with Login with Amazon.

    The client secret, refresh token and AWS secret key are secrets: never shown back, never
    logged. `api_base_url` blank means the region's production host; Amazon's sandbox host or
    the loopback sandbox of this app can be set instead, and so can the token URL. Offers are
    fulfilled by the merchant (`fulfillment_channel_code` DEFAULT). The optional SQS queue is
    the notification destination; without it, orders are read by polling only.
    """

    seller_id = models.CharField(max_length=40, help_text="Merchant token (Seller Central > Settings > Account Info).")
    region = models.CharField(max_length=2, choices=Region.choices, default=Region.NORTH_AMERICA)
    marketplace_ids = models.JSONField(
        default=default_marketplaces,
        help_text='Amazon stores to list in, e.g. ["ATVPDKIKX0DER"] (amazon.com). The first one is where offers go.',
    )
    lwa_client_id = models.CharField("LWA client id", max_length=200)
    lwa_client_secret = EncryptedCharField("LWA client secret", max_length=500)
    refresh_token = EncryptedTextField(
        help_text="Login with Amazon refresh token from the app's authorisation (Atzr|...)."
    )
    api_base_url = models.URLField(
        "SP-API host",
        max_length=255,
        blank=True,
        help_text=f"Blank: the region's production host. Amazon's sandbox: {AMAZON_SANDBOX_HOST}.",
    )
    token_url = models.URLField("LWA token URL", max_length=255, default=LWA_TOKEN_URL)
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(120)])
    fulfillment_channel_code = models.CharField(
        max_length=40, default="DEFAULT", help_text="DEFAULT: fulfilled by the merchant (this shop ships)."
    )
    condition_types = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our condition -> Amazon condition_type, e.g. {"excellent": "used_very_good"}. '
        "Unset conditions use the built-in mapping.",
    )
    default_product_type = models.CharField(
        max_length=100,
        blank=True,
        help_text="Amazon product type used when an item has none of its own, e.g. GUITARS.",
    )
    listing_scan_interval_seconds = models.PositiveIntegerField(
        default=3600,
        validators=[MaxValueValidator(86_400)],
        help_text="How often a pull also reads every listing (searchListingsItems); 0 reads them on every pull.",
    )
    sqs_queue_url = models.URLField("SQS queue URL", max_length=500, blank=True)
    sqs_region = models.CharField("SQS region", max_length=30, blank=True, help_text="e.g. us-east-1")
    sqs_endpoint_url = models.URLField(
        "SQS endpoint", max_length=255, blank=True, help_text="Blank: AWS. Set only for a local SQS (tests, demo)."
    )
    aws_access_key_id = models.CharField("AWS access key id", max_length=128, blank=True)
    aws_secret_access_key = EncryptedCharField("AWS secret access key", max_length=255, blank=True)

    class Meta:
        verbose_name = "Amazon connection"

    def save(self, *args, **kwargs):
        self.channel = "amazon"
        if self._state.adding and self.pull_interval_seconds == GENERIC_PULL_INTERVAL:
            # searchOrders refills one call every ~178 s: a one-minute pull would drain its burst.
            self.pull_interval_seconds = ORDER_SEARCH_INTERVAL
        super().save(*args, **kwargs)

    @property
    def api_host(self) -> str:
        return (self.api_base_url or PRODUCTION_HOSTS[self.region]).rstrip("/")

    @property
    def marketplace_id(self) -> str:
        ids = [str(m) for m in (self.marketplace_ids or []) if m]
        return ids[0] if ids else US_MARKETPLACE

    @property
    def refresh_token_hint(self) -> str:
        return secret_hint(self.refresh_token)

    @property
    def lwa_client_secret_hint(self) -> str:
        return secret_hint(self.lwa_client_secret)

    @property
    def notification_mode(self) -> str:
        """What staff see: how a sale reaches us and the delay that implies."""
        if self.sqs_queue_url:
            return "SQS notifications (seconds), with polling as the backstop"
        return (
            f"Polling only: a sale is read within {self.pull_interval_seconds} s plus Amazon's order-search rate "
            "(about one search every 3 minutes once its burst of 20 is spent)"
        )


class AmazonItemAttributes(AccountOwned):
    """What one of our items is on Amazon: the catalogue page (ASIN) the offer goes on, and its product type.

    Amazon lists used gear as an offer on an existing catalogue page (LISTING_OFFER_ONLY), so an
    item without an ASIN cannot be listed there. Kept here, keyed to the item, so the catalogue
    itself knows nothing of Amazon.
    """

    item = models.OneToOneField("inventory.Item", on_delete=models.CASCADE, related_name="amazon_attributes")
    asin = models.CharField("ASIN", max_length=10, blank=True, validators=[ASIN])
    product_type = models.CharField(max_length=100, blank=True, help_text="Amazon product type, e.g. GUITARS.")
    condition_note = models.CharField(max_length=1000, blank=True, help_text="Shown to buyers next to the condition.")

    class Meta:
        verbose_name = "Amazon attributes of an item"
        verbose_name_plural = "Amazon attributes of items"

    def __str__(self) -> str:
        return f"{self.item_id}: {self.asin or 'no ASIN'}"


class AmazonListingDetail(AccountOwned):
    """What Amazon last said about one of our listings (keyed by SKU, Amazon's own listing identity):
    its status (BUYABLE, DISCOVERABLE), the last submission's status and Amazon's issues in its words."""

    connection = models.ForeignKey(
        AmazonConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    sku = models.CharField(max_length=100)
    asin = models.CharField(max_length=10, blank=True)
    product_type = models.CharField(max_length=100, blank=True)
    status = models.JSONField(default=list, blank=True, help_text="Amazon's statuses, e.g. [BUYABLE, DISCOVERABLE].")
    submission_status = models.CharField(max_length=20, blank=True, help_text="ACCEPTED, VALID or INVALID.")
    submission_id = models.CharField(max_length=100, blank=True)
    issues = models.JSONField(default=list, blank=True)
    last_seen = models.JSONField(default=dict, blank=True, help_text="The listings item as Amazon last returned it.")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "Amazon listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "sku"], name="amazon_listing_once_per_connection")]

    def __str__(self) -> str:
        return f"Amazon listing {self.sku}"
