"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_shopify", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="shopifyconnection",
            name="access_token",
            field=accounts.encryption.EncryptedCharField(
                help_text="Admin API access token of the store's custom app (shpat_...), scopes: products, inventory, orders.",
                max_length=255,
            ),
        ),
        migrations.AlterField(
            model_name="shopifyconnection",
            name="webhook_secret",
            field=accounts.encryption.EncryptedCharField(
                blank=True,
                help_text="The app's client secret: Shopify signs every webhook with it (X-Shopify-Hmac-Sha256).",
                max_length=255,
            ),
        ),
        migrations.AlterField(
            model_name="shopifyconnection",
            name="webhook_secret_previous",
            field=accounts.encryption.EncryptedCharField(
                blank=True,
                editable=False,
                help_text="The signing secret before the last change: Shopify may still sign with it for up to an hour.",
                max_length=255,
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation(
            "channels_shopify", "shopifyconnection", ["access_token", "webhook_secret", "webhook_secret_previous"]
        ),
    ]
