"""Shopify as a channel: the dealer's own Shopify store (credentials, settings) and what Shopify says of each product."""

from datetime import timedelta
from urllib.parse import urlsplit

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from accounts.encryption import EncryptedCharField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection
from inventory.models.channels import secret_hint

DEFAULT_API_VERSION = "2025-01"
SHOP_DOMAIN_PATTERN = r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$"
GRAPHQL_PATH = "/admin/api/{version}/graphql.json"
SECRET_OVERLAP = timedelta(hours=1)  # Shopify may sign with a rotated secret for up to an hour


class ShopifyConnection(ChannelConnection):
    """A dealer's Shopify store, reached over the Admin GraphQL API with an access token.

    The access token and the webhook signing secret are secrets: the admin never shows them
    back and the client never logs them. The API version is pinned per store, because
    Shopify changes behaviour between versions (2026-04 makes inventory compare checks and
    idempotency keys mandatory). `api_url` is blank in production (the store's own
    endpoint is used) and points at the loopback sandbox in tests and the demo.
    """

    shop_domain = models.CharField(
        max_length=255,
        validators=[
            RegexValidator(
                SHOP_DOMAIN_PATTERN,
                "The store's myshopify.com address, e.g. example.myshopify.com (not its own domain).",
            )
        ],
        help_text="The store's permanent address, e.g. example.myshopify.com.",
    )
    access_token = EncryptedCharField(
        max_length=255,
        help_text="Admin API access token of the store's custom app (shpat_...), scopes: products, inventory, orders.",
    )
    api_version = models.CharField(
        max_length=7,
        default=DEFAULT_API_VERSION,
        validators=[RegexValidator(r"^\d{4}-(01|04|07|10)$", "A Shopify API version such as 2025-01.")],
        help_text="Admin API version this store is pinned to (the requests and the schema checks follow it).",
    )
    webhook_secret = EncryptedCharField(
        max_length=255,
        blank=True,
        help_text="The app's client secret: Shopify signs every webhook with it (X-Shopify-Hmac-Sha256).",
    )
    webhook_secret_previous = EncryptedCharField(
        max_length=255,
        blank=True,
        editable=False,
        help_text="The signing secret before the last change: Shopify may still sign with it for up to an hour.",
    )
    webhook_secret_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    location_id = models.CharField(
        max_length=100,
        blank=True,
        help_text="The Shopify location stock is kept at, e.g. gid://shopify/Location/123 (the check lists them).",
    )
    api_url = models.URLField(
        max_length=255,
        blank=True,
        help_text=(
            "Leave blank for the store itself (https://{shop}/admin/api/{version}/graphql.json). "
            "A sandbox address (with or without the /admin/api/... path) points the connection elsewhere."
        ),
    )
    timeout_seconds = models.FloatField(
        default=10.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(120)],
        help_text="How long one request may take before it counts as failed (and is retried by the engine).",
    )

    class Meta:
        verbose_name = "Shopify connection"

    def save(self, *args, **kwargs):
        self.channel = "shopify"
        self.shop_domain = (self.shop_domain or "").strip().lower()
        if self.pk:
            # A rotated signing secret: deliveries already on their way (and Shopify's retries, for up to an
            # hour) are signed with the old one, so it is kept beside the new one for that long.
            stored = type(self).objects.filter(pk=self.pk).values_list("webhook_secret", flat=True).first()
            if stored and stored != self.webhook_secret:
                self.webhook_secret_previous = stored
                self.webhook_secret_changed_at = timezone.now()
                if kwargs.get("update_fields") is not None:
                    kwargs["update_fields"] = {
                        *kwargs["update_fields"],
                        "webhook_secret_previous",
                        "webhook_secret_changed_at",
                    }
        super().save(*args, **kwargs)

    def webhook_secrets(self, now=None) -> list[str]:
        """The secrets a delivery may be signed with now: the current one, and the previous one for an hour."""
        secrets = [self.webhook_secret] if self.webhook_secret else []
        now = now or timezone.now()
        changed = self.webhook_secret_changed_at
        if self.webhook_secret_previous and changed and now - changed <= SECRET_OVERLAP:
            secrets.append(self.webhook_secret_previous)
        return secrets

    @property
    def endpoint(self) -> str:
        """The GraphQL endpoint: the store's own, or the configured address (its path completed when it has none)."""
        path = GRAPHQL_PATH.format(version=self.api_version)
        if not self.api_url:
            return f"https://{self.shop_domain}{path}"
        url = self.api_url.rstrip("/")
        return url if urlsplit(url).path.endswith(".json") else url + path

    @property
    def admin_root(self) -> str:
        """Where staff open the store's admin."""
        return f"https://{self.shop_domain}/admin"

    @property
    def token_hint(self) -> str:
        return secret_hint(self.access_token)

    @property
    def webhook_secret_hint(self) -> str:
        return secret_hint(self.webhook_secret)


class ShopifyProductDetail(AccountOwned):
    """What Shopify last said about one of our products: ids, status, and the errors it gave.

    Written by the Shopify sync functions after each call (never by inventory). Staff read it
    to see why a product did not go live (Shopify explains in `userErrors`) and which texts
    were shortened to Shopify's limits.
    """

    connection = models.ForeignKey(
        ShopifyConnection, on_delete=models.CASCADE, related_name="product_details", db_index=False
    )
    product_id = models.CharField(max_length=100, help_text="gid://shopify/Product/...")
    variant_id = models.CharField(max_length=100, blank=True)
    inventory_item_id = models.CharField(max_length=100, blank=True)
    sku = models.CharField(max_length=100, blank=True, db_index=True)
    title = models.CharField(max_length=255, blank=True)
    handle = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=20, blank=True, help_text="Shopify's status: ACTIVE, DRAFT or ARCHIVED.")
    quantity = models.IntegerField(null=True, blank=True, help_text="Available at the connection's location.")
    pushed_quantity = models.IntegerField(
        null=True,
        blank=True,
        help_text="The quantity the back office last set (a lower figure in Shopify means units went there).",
    )
    storefront_url = models.URLField(max_length=500, blank=True)
    user_errors = models.JSONField(default=list, blank=True, help_text="Shopify's userErrors on the last write.")
    notes = models.JSONField(default=list, blank=True, help_text="Texts shortened to Shopify's limits, and why.")
    last_seen = models.JSONField(default=dict, blank=True, help_text="The product as Shopify last returned it.")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "Shopify product"
        ordering = ["-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "product_id"], name="shopify_product_once_per_connection")
        ]

    def __str__(self) -> str:
        return f"Shopify product {self.product_id}"

    @property
    def numeric_id(self) -> str:
        return self.product_id.rsplit("/", 1)[-1]

    @property
    def admin_url(self) -> str:
        return f"{self.connection.admin_root}/products/{self.numeric_id}" if self.product_id else ""
