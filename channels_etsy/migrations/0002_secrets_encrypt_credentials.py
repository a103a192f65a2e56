"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_etsy", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="etsyconnection",
            name="access_token",
            field=accounts.encryption.EncryptedCharField(
                blank=True, help_text="Set by the connect button.", max_length=500
            ),
        ),
        migrations.AlterField(
            model_name="etsyconnection",
            name="keystring",
            field=accounts.encryption.EncryptedCharField(
                help_text="The app's keystring (Etsy: Your Apps).", max_length=100
            ),
        ),
        migrations.AlterField(
            model_name="etsyconnection",
            name="refresh_token",
            field=accounts.encryption.EncryptedCharField(
                blank=True, help_text="Set by the connect button.", max_length=500
            ),
        ),
        migrations.AlterField(
            model_name="etsyconnection",
            name="shared_secret",
            field=accounts.encryption.EncryptedCharField(
                help_text="The app's shared secret (Etsy: Your Apps).", max_length=255
            ),
        ),
        migrations.AlterField(
            model_name="etsyconnection",
            name="webhook_secret",
            field=accounts.encryption.EncryptedCharField(
                blank=True,
                help_text="The webhook signing secret (whsec_...) from Etsy's developer portal; empty: webhooks are refused.",
                max_length=255,
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation(
            "channels_etsy",
            "etsyconnection",
            ["access_token", "keystring", "refresh_token", "shared_secret", "webhook_secret"],
        ),
    ]
