"""Etsy as a channel: the seller's Etsy shop (app key, OAuth tokens, settings) and what Etsy says of each listing."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.encryption import EncryptedCharField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection

PRODUCTION_API_BASE_URL = "https://openapi.etsy.com"
PRODUCTION_AUTHORIZE_URL = "https://www.etsy.com/oauth/connect"
# The spec's tokenUrl (Etsy's docs also show https://api.etsy.com/v3/public/oauth/token).
PRODUCTION_TOKEN_URL = "https://openapi.etsy.com/v3/public/oauth/token"
DEFAULT_SCOPES = "listings_r listings_w listings_d transactions_r transactions_w shops_r"


class EtsyConnection(ChannelConnection):
    """A seller's Etsy shop, reached with the app's key and an OAuth 2.0 token of the shop owner.

    `keystring` and `shared_secret` are the app's (Etsy's "Your Apps" page); every call sends
    them as `x-api-key: keystring:shared_secret`, the form the spec gives. The access and
    refresh tokens come from the connect button (authorization code with PKCE), never pasted.
    Secrets are never shown back, listed or logged. The URLs point at production by default;
    the loopback sandbox of this app can be set per connection.
    """

    keystring = EncryptedCharField(max_length=100, help_text="The app's keystring (Etsy: Your Apps).")
    shared_secret = EncryptedCharField(max_length=255, help_text="The app's shared secret (Etsy: Your Apps).")
    access_token = EncryptedCharField(max_length=500, blank=True, help_text="Set by the connect button.")
    refresh_token = EncryptedCharField(max_length=500, blank=True, help_text="Set by the connect button.")
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    scopes = models.CharField(max_length=255, default=DEFAULT_SCOPES, help_text="OAuth scopes asked for on connect.")
    webhook_secret = EncryptedCharField(
        max_length=255,
        blank=True,
        help_text="The webhook signing secret (whsec_...) from Etsy's developer portal; empty: webhooks are refused.",
    )
    etsy_user_id = models.BigIntegerField(null=True, blank=True, editable=False)
    shop_id = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Filled in on connect when left empty."
    )
    shipping_profile_id = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Etsy shipping profile for new listings."
    )
    return_policy_id = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Etsy return policy for new listings."
    )
    readiness_state_id = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Etsy processing profile (readiness state) for new listings' offerings.",
    )
    taxonomy_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our category -> Etsy seller taxonomy id, e.g. {"Electric Guitars": 1234}.',
    )
    default_taxonomy_id = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Etsy taxonomy id for categories not in the mapping."
    )
    api_base_url = models.URLField(max_length=255, default=PRODUCTION_API_BASE_URL)
    authorize_url = models.URLField(max_length=255, default=PRODUCTION_AUTHORIZE_URL)
    token_url = models.URLField(max_length=255, default=PRODUCTION_TOKEN_URL)
    redirect_uri = models.URLField(
        max_length=255,
        blank=True,
        help_text="The OAuth callback registered with the Etsy app; empty: this site's /etsy/oauth/callback/.",
    )
    timeout_seconds = models.FloatField(default=10.0, validators=[MinValueValidator(0.1), MaxValueValidator(120)])
    auto_renew = models.BooleanField(
        default=False,
        help_text=(
            "Let Etsy renew listings when they expire after four months (each renewal is a listing fee). Off: an "
            "expired listing shows as ended, and listing it again renews it."
        ),
    )
    daily_reserve = models.PositiveIntegerField(
        default=500,
        help_text=(
            "Calls of the day's budget kept for what a sale needs (ends, read-backs, receipts): below it, "
            "publishing and revising wait and staff are told."
        ),
    )
    listing_scan_interval_seconds = models.PositiveIntegerField(
        default=900,
        validators=[MaxValueValidator(86_400)],
        help_text="How often a pull also reads every listing (Etsy cannot filter listings by change date).",
    )

    class Meta:
        verbose_name = "Etsy connection"

    def save(self, *args, **kwargs):
        self.channel = "etsy"
        super().save(*args, **kwargs)

    @property
    def connected(self) -> bool:
        return bool(self.access_token and self.refresh_token)


class EtsyListingDetail(AccountOwned):
    """What Etsy last said about one of our listings (state, url, images), written by the Etsy sync."""

    connection = models.ForeignKey(
        EtsyConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    listing_id = models.BigIntegerField()
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    state = models.CharField(max_length=20, blank=True, help_text="Etsy's state (active, inactive, draft...).")
    url = models.URLField(max_length=500, blank=True)
    image_ids = models.JSONField(default=list, blank=True)
    last_seen = models.JSONField(default=dict, blank=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "Etsy listing"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "listing_id"], name="etsy_listing_once_per_connection")
        ]

    def __str__(self) -> str:
        return f"Etsy listing {self.listing_id}"
