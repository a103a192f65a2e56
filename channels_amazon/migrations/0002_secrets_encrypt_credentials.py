"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_amazon", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="amazonconnection",
            name="aws_secret_access_key",
            field=accounts.encryption.EncryptedCharField(
                blank=True, max_length=255, verbose_name="AWS secret access key"
            ),
        ),
        migrations.AlterField(
            model_name="amazonconnection",
            name="lwa_client_secret",
            field=accounts.encryption.EncryptedCharField(max_length=500, verbose_name="LWA client secret"),
        ),
        migrations.AlterField(
            model_name="amazonconnection",
            name="refresh_token",
            field=accounts.encryption.EncryptedTextField(
                help_text="Login with Amazon refresh token from the app's authorisation (Atzr|...)."
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation(
            "channels_amazon", "amazonconnection", ["aws_secret_access_key", "lwa_client_secret", "refresh_token"]
        ),
    ]
