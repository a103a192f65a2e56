"""The webhook URL token is encrypted at rest and found by its SHA-256 (accounts/encryption.py);
worker heartbeats for the readiness endpoint (inventory/health.py); the per-connection circuit breaker."""

from django.db import migrations, models

import accounts.encryption
import inventory.models.channels
from accounts.encryption import decrypt, encrypt, is_encrypted, sha256_hex


def encrypt_tokens(apps, schema_editor):
    # Raw SQL: the historical model already decrypts this column and would refuse the plaintext.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, webhook_token FROM inventory_channelconnection")
        for row_id, token in cursor.fetchall():
            plain = decrypt(token) if is_encrypted(token) else token
            cursor.execute(
                "UPDATE inventory_channelconnection SET webhook_token = %s, webhook_token_digest = %s WHERE id = %s",
                [token if is_encrypted(token) else encrypt(plain), sha256_hex(plain), row_id],
            )


def decrypt_tokens(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, webhook_token FROM inventory_channelconnection")
        for row_id, token in cursor.fetchall():
            if is_encrypted(token):
                cursor.execute(
                    "UPDATE inventory_channelconnection SET webhook_token = %s WHERE id = %s",
                    [decrypt(token), row_id],
                )


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0010_analytics_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelconnection",
            name="webhook_token_digest",
            field=models.CharField(max_length=64, null=True, editable=False),
        ),
        migrations.AlterField(
            model_name="channelconnection",
            name="webhook_token",
            field=accounts.encryption.EncryptedCharField(
                default=inventory.models.channels.new_webhook_token, editable=False, max_length=64
            ),
        ),
        migrations.RunPython(encrypt_tokens, decrypt_tokens),
        migrations.AlterField(
            model_name="channelconnection",
            name="webhook_token_digest",
            field=accounts.encryption.Sha256DigestField(source="webhook_token", unique=True),
        ),
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("queue", models.CharField(max_length=100, unique=True)),
                ("hostname", models.CharField(blank=True, max_length=255)),
                ("beat_at", models.DateTimeField()),
            ],
            options={"ordering": ["queue"]},
        ),
        migrations.AddField(
            model_name="channelconnection",
            name="push_failures",
            field=models.PositiveIntegerField(
                default=0,
                editable=False,
                help_text="Pushes that failed on the channel's side in a row (the circuit breaker).",
            ),
        ),
        migrations.AddField(
            model_name="channelconnection",
            name="circuit_opened_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="Pushes paused since then: the channel kept failing.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="channelconnection",
            name="circuit_probe_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
