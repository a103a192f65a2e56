"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
import channels_woocommerce.models
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_woocommerce", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="woocommerceconnection",
            name="consumer_key",
            field=accounts.encryption.EncryptedCharField(
                blank=True, help_text="ck_... from WooCommerce > REST API.", max_length=100
            ),
        ),
        migrations.AlterField(
            model_name="woocommerceconnection",
            name="consumer_secret",
            field=accounts.encryption.EncryptedCharField(
                blank=True, help_text="cs_... shown once when the key is made.", max_length=100
            ),
        ),
        migrations.AlterField(
            model_name="woocommerceconnection",
            name="grant_nonce",
            field=accounts.encryption.EncryptedCharField(
                blank=True, editable=False, help_text="Waiting for keys from WooCommerce's grant flow.", max_length=64
            ),
        ),
        migrations.AlterField(
            model_name="woocommerceconnection",
            name="webhook_secret",
            field=accounts.encryption.EncryptedCharField(
                default=channels_woocommerce.models.new_webhook_secret,
                help_text="Signs every delivery (X-WC-Webhook-Signature); set on the store when webhooks are registered.",
                max_length=100,
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation(
            "channels_woocommerce",
            "woocommerceconnection",
            ["consumer_key", "consumer_secret", "grant_nonce", "webhook_secret"],
        ),
    ]
