"""Credentials encrypted at rest (accounts/encryption.py): text columns, then existing rows encrypted."""

from django.db import migrations

import accounts.encryption
from accounts.encryption import encrypt_columns_operation


class Migration(migrations.Migration):
    dependencies = [
        ("channels_reverb", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reverbconnection",
            name="api_token",
            field=accounts.encryption.EncryptedCharField(
                help_text="Personal access token from reverb.com/my/api_settings (scopes: read/write listings and orders).",
                max_length=255,
            ),
        ),
        # Existing rows: plaintext -> enc:v1:<Fernet token> with the newest FIELD_ENCRYPTION_KEYS key.
        encrypt_columns_operation("channels_reverb", "reverbconnection", ["api_token"]),
    ]
