"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_ebay", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ebayconnection",
            name="client_secret",
            field=accounts.encryption.EncryptedCharField(
                help_text="Cert ID (Client Secret) of the keyset.", max_length=255
            ),
        ),
        migrations.AlterField(
            model_name="ebayconnection",
            name="refresh_token",
            field=accounts.encryption.EncryptedTextField(
                help_text="The seller's OAuth refresh token (about 18 months valid)."
            ),
        ),
        migrations.AlterField(
            model_name="ebayconnection",
            name="verification_token",
            field=accounts.encryption.EncryptedCharField(
                blank=True,
                help_text="Marketplace account deletion: the verification token registered with eBay (32-80 characters).",
                max_length=80,
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation(
            "channels_ebay", "ebayconnection", ["client_secret", "refresh_token", "verification_token"]
        ),
    ]
