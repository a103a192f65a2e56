"""WooCommerce as a channel: the dealer's own WordPress shop (keys, settings) and what it says of each product."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from accounts.encryption import EncryptedCharField
from accounts.models import AccountOwned
from inventory.models import ChannelConnection
from inventory.models.channels import secret_hint

from .client import is_local_host


def validate_store_url(value: str) -> None:
    """A WordPress site root: http(s), a host, no query; https unless the host is local."""
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter the shop's address, e.g. https://shop.example.com.")
    if parts.query or parts.fragment:
        raise ValidationError("Enter the shop's address without ?query or #fragment.")
    if parts.username or parts.password:
        raise ValidationError("Do not put a user name or password in the address; the keys go in their own fields.")
    if "/wp-json" in parts.path:
        raise ValidationError("Enter the site's address (https://shop.example.com), not the /wp-json API path.")
    if parts.scheme == "http" and not is_local_host(parts.hostname):
        raise ValidationError(
            "Use https://: over plain http the consumer secret can be read on the way. "
            "Plain http is accepted only for a local address (localhost, 127.0.0.1, a private network)."
        )


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class AuthMethod(models.TextChoices):
    AUTO = "auto", "Automatic (Basic over https, OAuth 1.0a over http)"
    BASIC = "basic", "HTTP Basic (https only)"
    QUERY = "query", "Keys in the query string (https only, for servers that strip Authorization)"
    OAUTH = "oauth", "OAuth 1.0a one-legged (plain http)"


class WooCommerceConnection(ChannelConnection):
    """A dealer's own WooCommerce shop, reached over the REST API wc/v3 with a consumer key and secret.

    The consumer secret and the webhook secret are secrets: the admin and the API never show
    them back, the client never logs them. The key pair is pasted from WooCommerce >
    Settings > Advanced > REST API, or arrives through WooCommerce's own grant flow
    (/wc-auth/v1/authorize), which posts it to this site for the connection waiting for it.
    """

    store_url = models.URLField(
        max_length=255,
        validators=[validate_store_url],
        help_text="The shop's address, e.g. https://shop.example.com (the REST API is under /wp-json/wc/v3).",
    )
    consumer_key = EncryptedCharField(max_length=100, blank=True, help_text="ck_... from WooCommerce > REST API.")
    consumer_secret = EncryptedCharField(
        max_length=100, blank=True, help_text="cs_... shown once when the key is made."
    )
    key_permissions = models.CharField(
        max_length=20, blank=True, help_text="What WooCommerce says the key may do (read, write, read_write)."
    )
    auth_method = models.CharField(max_length=10, choices=AuthMethod.choices, default=AuthMethod.AUTO)
    webhook_secret = EncryptedCharField(
        max_length=100,
        default=new_webhook_secret,
        help_text="Signs every delivery (X-WC-Webhook-Signature); set on the store when webhooks are registered.",
    )
    timeout_seconds = models.FloatField(
        default=15.0,
        validators=[MinValueValidator(0.1), MaxValueValidator(120)],
        help_text="How long one request may take before it counts as failed (and is retried by the engine).",
    )
    listing_scan_interval_seconds = models.PositiveIntegerField(
        default=300,
        validators=[MaxValueValidator(86_400)],
        help_text=(
            "How often a pull also reads the products changed on the shop (states, products made there); a "
            "product webhook makes the next pull read them at once. 0 reads them on every pull."
        ),
    )
    category_ids = models.JSONField(
        default=dict,
        blank=True,
        help_text='Our category name -> WooCommerce product category id(s), e.g. {"Electric Guitars": [17]}.',
    )
    store_currency = models.CharField(
        max_length=3,
        blank=True,
        help_text="The shop's currency, read by the connection check (prices are not converted).",
    )
    grant_nonce = EncryptedCharField(
        max_length=64, blank=True, editable=False, help_text="Waiting for keys from WooCommerce's grant flow."
    )

    class Meta:
        verbose_name = "WooCommerce connection"

    def save(self, *args, **kwargs):
        self.channel = "woocommerce"
        super().save(*args, **kwargs)

    @property
    def api_root(self) -> str:
        return self.store_url.rstrip("/") + "/wp-json/wc/v3"

    @property
    def key_hint(self) -> str:
        """Enough of the key for staff to recognise it, never enough to use it."""
        return secret_hint(self.consumer_key)

    @property
    def consumer_secret_hint(self) -> str:
        return secret_hint(self.consumer_secret)

    @property
    def webhook_secret_hint(self) -> str:
        return secret_hint(self.webhook_secret)


class WooCommerceListingDetail(AccountOwned):
    """What the shop last said about one of our products: id, status, stock, link, and its last refusal.

    Written by the WooCommerce sync functions (never by inventory). A product the shop refused
    inside a batch has no id yet: its row carries the SKU and the shop's own message, so staff
    see why that one item is missing while the rest of the batch went through.
    """

    connection = models.ForeignKey(
        WooCommerceConnection, on_delete=models.CASCADE, related_name="listing_details", db_index=False
    )
    sku = models.CharField(max_length=100)
    product_id = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=20, blank=True, help_text="publish, draft, pending, private, trash...")
    stock_quantity = models.IntegerField(null=True, blank=True)
    permalink = models.URLField(max_length=500, blank=True)
    last_error = models.TextField(blank=True, help_text="The shop's words when it last refused this product.")
    last_seen = models.JSONField(default=dict, blank=True, help_text="The product JSON as the shop last returned it.")
    last_seen_at = models.DateTimeField()

    class Meta:
        verbose_name = "WooCommerce product"
        ordering = ["-last_seen_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "sku"], name="woocommerce_product_once_per_sku")]

    def __str__(self) -> str:
        return f"WooCommerce product {self.product_id or '(not created)'} {self.sku}"
