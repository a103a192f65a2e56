"""Secrets at rest: every marketplace credential is encrypted in the database, rotates to a new key,
and never reaches a log line (accounts/encryption.py, config/log_redaction.py)."""

import importlib
import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection as db

from accounts.encryption import (
    DecryptionFailed,
    EncryptedMixin,
    encrypt_columns,
    encrypted_fields,
    is_encrypted,
    revealed_secrets,
)
from channels_amazon.models import AmazonConnection
from channels_ebay.models import EbayConnection
from channels_etsy.models import EtsyConnection
from channels_reverb import sync as reverb_sync
from channels_reverb.models import ReverbConnection
from channels_reverb.sandbox import ReverbSandbox
from channels_shopify.models import ShopifyConnection
from channels_vr.models import VRConnection
from channels_woocommerce.models import WooCommerceConnection
from config.celery import _redact_secrets_in_worker_logs
from config.log_context import LogContextFilter
from config.log_redaction import MASK, SecretRedactionFilter, redact
from inventory.channels import PermanentChannelError
from inventory.models import ChannelConnection

pytestmark = pytest.mark.django_db

ENCRYPTED = {
    "inventory.ChannelConnection": {"webhook_token"},
    "channels_reverb.ReverbConnection": {"api_token"},
    "channels_shopify.ShopifyConnection": {"access_token", "webhook_secret", "webhook_secret_previous"},
    "channels_ebay.EbayConnection": {"client_secret", "refresh_token", "verification_token"},
    "channels_vr.VRConnection": {"password"},
    "channels_woocommerce.WooCommerceConnection": {"consumer_key", "consumer_secret", "webhook_secret", "grant_nonce"},
    "channels_etsy.EtsyConnection": {"keystring", "shared_secret", "access_token", "refresh_token", "webhook_secret"},
    "channels_amazon.AmazonConnection": {"lwa_client_secret", "refresh_token", "aws_secret_access_key"},
}
# Fields whose names sound secret but are identifiers or settings, shown to staff on purpose.
NOT_SECRET = {
    "webhook_token_digest",
    "webhook_secret_changed_at",
    "key_permissions",
    "aws_access_key_id",
    "merchant_location_key",
    "token_url",
    "token_expires_at",
}
SECRET_WORDS = ("token", "secret", "password", "key", "nonce")


def _secrets(tag: str) -> dict:
    """Distinct, recognisable secret values per connection (so a leak names the field)."""
    return {
        "reverb": {"api_token": f"rvb-{tag}-api-token-0123456789"},
        "shopify": {
            "access_token": f"shpat_{tag}access0123456789",
            "webhook_secret": f"shp-{tag}-webhook-secret-0123",
            "webhook_secret_previous": f"shp-{tag}-previous-secret-0123",
        },
        "ebay": {
            "client_secret": f"ebay-{tag}-cert-id-0123456789",
            "refresh_token": f"v^1.1#i^1#{tag}-ebay-refresh-0123456789",
            "verification_token": f"ebay-{tag}-verification-token-0123456789",
        },
        "vr": {"password": f"vr-{tag}-password-0123456789"},
        "woocommerce": {
            "consumer_key": f"ck_{tag}0123456789abcdef",
            "consumer_secret": f"cs_{tag}0123456789abcdef",
            "webhook_secret": f"woo-{tag}-webhook-secret-0123",
            "grant_nonce": f"woo-{tag}-grant-nonce-0123456789",
        },
        "etsy": {
            "keystring": f"etsy{tag}keystring0123456789",
            "shared_secret": f"etsy-{tag}-shared-secret-0123",
            "access_token": f"12345.{tag}-etsy-access-0123456789",
            "refresh_token": f"12345.{tag}-etsy-refresh-0123456789",
            "webhook_secret": f"whsec_{tag}etsy0123456789",
        },
        "amazon": {
            "lwa_client_secret": f"amzn-{tag}-lwa-secret-0123456789",
            "refresh_token": f"Atzr|{tag}-amazon-refresh-0123456789",
            "aws_secret_access_key": f"aws-{tag}-secret-access-key-0123456789",
        },
    }


def _connections(account, tag: str = "t1") -> dict:
    values = _secrets(tag)
    return {
        "reverb": ReverbConnection.objects.create(account=account, name=f"Reverb {tag}", **values["reverb"]),
        "shopify": ShopifyConnection.objects.create(
            account=account, name=f"Shopify {tag}", shop_domain="blue-note.myshopify.com", **values["shopify"]
        ),
        "ebay": EbayConnection.objects.create(account=account, name=f"eBay {tag}", client_id="App-1", **values["ebay"]),
        "vr": VRConnection.objects.create(account=account, name=f"V&R {tag}", username="dealer", **values["vr"]),
        "woocommerce": WooCommerceConnection.objects.create(
            account=account, name=f"Woo {tag}", store_url="https://shop.example.com", **values["woocommerce"]
        ),
        "etsy": EtsyConnection.objects.create(account=account, name=f"Etsy {tag}", **values["etsy"]),
        "amazon": AmazonConnection.objects.create(
            account=account, name=f"Amazon {tag}", seller_id="A1SELLER", lwa_client_id="amzn1.app", **values["amazon"]
        ),
    }


def _raw_tables() -> str:
    """Everything stored in the connection tables, as one string, read with plain SQL."""
    tables = [ChannelConnection._meta.db_table] + [
        apps.get_model(label)._meta.db_table for label in ENCRYPTED if label != "inventory.ChannelConnection"
    ]
    dump = []
    with db.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            dump.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(dump)


# --- what is encrypted ------------------------------------------------------------------


def test_exactly_the_credentials_of_every_connection_model_are_encrypted():
    found = {model._meta.label: {f.name for f in fields} for model, fields in encrypted_fields()}

    assert found == ENCRYPTED


def test_no_connection_model_has_a_secret_sounding_field_left_in_plaintext():
    connection_models = [m for m in apps.get_models() if issubclass(m, ChannelConnection)]
    assert {m._meta.label for m in connection_models} == set(ENCRYPTED)
    plaintext = [
        f"{model._meta.label}.{field.name}"
        for model in connection_models
        for field in model._meta.local_concrete_fields
        if any(word in field.name for word in SECRET_WORDS)
        and field.name not in NOT_SECRET
        and not isinstance(field, EncryptedMixin)
    ]

    assert plaintext == []


# --- at rest ----------------------------------------------------------------------------


def test_a_raw_sql_read_of_the_connection_tables_shows_no_secret(account):
    connections = _connections(account)

    dump = _raw_tables()

    for name, values in _secrets("t1").items():
        for field, secret in values.items():
            assert secret not in dump, f"{name}.{field} is stored in plaintext"
    for connection in connections.values():
        assert connection.webhook_token not in dump
    assert dump.count("enc:v1:") == sum(len(v) for v in _secrets("t1").values()) + len(connections)


def test_the_orm_reads_every_secret_back_as_typed(account):
    connections = _connections(account)

    for name, values in _secrets("t1").items():
        fresh = type(connections[name]).objects.get(pk=connections[name].pk)
        assert {field: getattr(fresh, field) for field in values} == values
    base = ChannelConnection.objects.get(pk=connections["reverb"].pk)
    assert base.webhook_token == connections["reverb"].webhook_token
    assert len(base.webhook_token) == 43


def test_an_empty_secret_stays_empty_and_needs_no_key(account):
    etsy = EtsyConnection.objects.create(account=account, name="Etsy, not connected", keystring="k" * 24)

    with db.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM channels_etsy_etsyconnection")
        assert cursor.fetchall() == [("", "")]
    assert EtsyConnection.objects.get(pk=etsy.pk).connected is False


def test_the_webhook_url_still_finds_its_connection_by_the_digest_of_its_token(client, account):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-token-0123456789")

    found = client.post(reverb.webhook_path, data=b"{}", content_type="application/json")
    unknown = client.post("/hooks/reverb/not-a-token/", data=b"{}", content_type="application/json")
    other_channel = client.post(f"/hooks/shopify/{reverb.webhook_token}/", data=b"{}", content_type="application/json")

    assert found.status_code != 404
    assert (unknown.status_code, other_channel.status_code) == (404, 404)
    assert ChannelConnection.objects.filter(webhook_token_digest=ChannelConnection.digest_of(reverb.webhook_token))


def test_an_encrypted_field_cannot_be_filtered_by_value(account):
    with pytest.raises(FieldError, match="api_token is encrypted"):
        list(ReverbConnection.objects.filter(api_token="rvb-token-0123456789"))
    assert list(ReverbConnection.objects.filter(api_token__isnull=True)) == []


def test_a_value_written_with_a_key_that_is_gone_is_refused_with_what_to_do(account, settings):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-token-0123456789")
    # Read once under the key it was written with: the process remembers what that key opened...
    assert ReverbConnection.objects.get(pk=reverb.pk).api_token == "rvb-token-0123456789"
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    # ...but only for that key list: without the key the value is refused, as on a fresh process.
    with pytest.raises(DecryptionFailed, match="put the old key back"):
        ReverbConnection.objects.get(pk=reverb.pk)


# --- the data migration -----------------------------------------------------------------


def _store_plaintext(table: str, pk_column: str, pk: int, **columns) -> None:
    assignments = ", ".join(f"{db.ops.quote_name(c)} = %s" for c in columns)
    with db.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignments} WHERE {pk_column} = %s", [*columns.values(), pk])


def _raw(table: str, column: str, pk_column: str, pk: int) -> str:
    with db.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE {pk_column} = %s", [pk])
        return cursor.fetchone()[0]


def test_the_migration_encrypts_rows_stored_in_plaintext_and_can_be_run_twice(account):
    shopify = ShopifyConnection.objects.create(
        account=account, name="Shopify", shop_domain="a.myshopify.com", access_token="x" * 20
    )
    table = "channels_shopify_shopifyconnection"
    _store_plaintext(
        table, "channelconnection_ptr_id", shopify.pk, access_token="shpat_legacy0123456789", webhook_secret=""
    )
    encrypt = encrypt_columns("channels_shopify", "shopifyconnection", ["access_token", "webhook_secret"])

    with db.schema_editor() as editor:
        encrypt(apps, editor)
    once = _raw(table, "access_token", "channelconnection_ptr_id", shopify.pk)
    with db.schema_editor() as editor:
        encrypt(apps, editor)

    assert is_encrypted(once)
    assert _raw(table, "access_token", "channelconnection_ptr_id", shopify.pk) == once
    assert _raw(table, "webhook_secret", "channelconnection_ptr_id", shopify.pk) == ""
    assert ShopifyConnection.objects.get(pk=shopify.pk).access_token == "shpat_legacy0123456789"


def test_the_migration_backwards_puts_the_plaintext_back(account):
    vr = VRConnection.objects.create(account=account, name="V&R", username="dealer", password="vr-password-0123")
    decrypt = encrypt_columns("channels_vr", "vrconnection", ["password"], forwards=False)

    with db.schema_editor() as editor:
        decrypt(apps, editor)

    assert _raw("channels_vr_vrconnection", "password", "channelconnection_ptr_id", vr.pk) == "vr-password-0123"


def test_the_webhook_token_migration_encrypts_the_token_and_fills_its_digest(account):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-token-0123456789")
    table = ChannelConnection._meta.db_table
    _store_plaintext(table, "id", reverb.pk, webhook_token="legacy-url-token-0123456789", webhook_token_digest="")
    migration = importlib.import_module("inventory.migrations.0011_secrets_encrypt_webhook_token")

    with db.schema_editor() as editor:
        migration.encrypt_tokens(apps, editor)

    assert is_encrypted(_raw(table, "webhook_token", "id", reverb.pk))
    found = ChannelConnection.objects.get(
        webhook_token_digest=ChannelConnection.digest_of("legacy-url-token-0123456789")
    )
    assert (found.pk, found.webhook_token) == (reverb.pk, "legacy-url-token-0123456789")


# --- key rotation -----------------------------------------------------------------------


def test_rotation_re_encrypts_every_secret_under_the_new_key_and_the_old_key_can_go(account, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    connections = _connections(account)
    before = _raw_tables()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    stored_secrets = sum(len(v) for v in _secrets("t1").values()) + len(connections)

    dry = io.StringIO()
    call_command("rotate_encryption_key", "--dry-run", stdout=dry)
    assert f"{stored_secrets} secret(s) to re-encrypt in total" in dry.getvalue()
    assert _raw_tables() == before

    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert f"{stored_secrets} secret(s) re-encrypted in total" in out.getvalue()
    assert _raw_tables() != before

    settings.FIELD_ENCRYPTION_KEYS = [new]
    for name, values in _secrets("t1").items():
        fresh = type(connections[name]).objects.get(pk=connections[name].pk)
        assert {field: getattr(fresh, field) for field in values} == values
    again = io.StringIO()
    call_command("rotate_encryption_key", "--dry-run", stdout=again)
    assert "0 secret(s) to re-encrypt in total; every secret is under the newest key" in again.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    with pytest.raises(DecryptionFailed):
        ReverbConnection.objects.get(pk=connections["reverb"].pk)


def test_rotation_stops_at_a_value_no_key_opens_and_changes_nothing(account, settings):
    lost, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [lost]
    ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-token-0123456789")
    before = _raw_tables()
    settings.FIELD_ENCRYPTION_KEYS = [new]

    with pytest.raises(DecryptionFailed, match="rotation stopped"):
        call_command("rotate_encryption_key", stdout=io.StringIO())

    assert _raw_tables() == before


# --- logs -------------------------------------------------------------------------------


@pytest.fixture
def log_output():
    """What the product's console handler would print: a stream handler with the settings' filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(SecretRedactionFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_every_configured_log_handler_redacts_secrets():
    config = django_settings.LOGGING
    assert config["filters"]["redact_secrets"]["()"] == "config.log_redaction.SecretRedactionFilter"
    assert config["handlers"]
    for name, handler in config["handlers"].items():
        assert "redact_secrets" in handler.get("filters", []), f"log handler {name} does not redact secrets"


def test_celery_worker_log_handlers_get_the_filter_too():
    logger = logging.getLogger("test.celery.worker")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        _redact_secrets_in_worker_logs(logger=logger)
        _redact_secrets_in_worker_logs(logger=logger)
        # Once each: the request/task ids first (config/log_context.py), then the redaction.
        assert [type(f) for f in handler.filters] == [LogContextFilter, SecretRedactionFilter]
    finally:
        logger.removeHandler(handler)


def test_a_failing_request_to_a_channel_sandbox_logs_no_secret(account, log_output):
    """A token the sandbox refuses, and code that logs carelessly: the error, the session's headers,
    the connection's fields and the traceback all go through the handler, and the token does not."""
    token = "rvb-wrong-token-that-leaks-0123456789"
    with ReverbSandbox() as sandbox:
        reverb = ReverbConnection.objects.create(
            account=account, name="Reverb", api_token=token, base_url=sandbox.base_url, timeout_seconds=2
        )
        reverb = ReverbConnection.objects.get(pk=reverb.pk)  # read back: the secret is decrypted here
        reverb_sync._clients.__dict__.clear()
        client = reverb_sync.client_for(reverb)
        log = logging.getLogger("channels_reverb.client")
        try:
            client.account()
        except PermanentChannelError as error:
            log.exception(
                "Reverb refused %s (token %s) with headers %s; connection %s",
                error,
                reverb.api_token,
                dict(client.headers),
                {f.name: getattr(reverb, f.name) for f in reverb._meta.concrete_fields},
            )
        else:
            pytest.fail("the sandbox accepted a token it does not know")
        finally:
            reverb_sync._clients.__dict__.clear()
        assert any(r.status == 401 for r in sandbox.requests())

    printed = log_output.getvalue()
    assert "Reverb refused" in printed and "Traceback" in printed
    assert token not in printed
    assert reverb.webhook_token not in printed
    assert "Bearer [secret]" in printed
    assert printed.count(MASK) >= 3


def test_the_filter_masks_credentials_it_has_never_seen_by_their_form(log_output):
    logging.getLogger("inventory.test").warning(
        "POST /wp-json/wc/v3/products?consumer_key=ck_abc123456789&consumer_secret=cs_0123456789abcdef0123 "
        "Authorization: Basic dXNlcjpwYXNz x-api-key: keystring:shared headers={'X-Shopify-Access-Token': "
        "'shpat_0123456789abcdef'} stripe sk_live_0123456789abcdef whsec_0123456789abcdef"
    )

    printed = log_output.getvalue()
    for leaked in (
        "ck_abc123456789",
        "cs_0123456789abcdef0123",
        "dXNlcjpwYXNz",
        "keystring:shared",
        "shpat_",
        "sk_live_0",
        "whsec_0",
    ):
        assert leaked not in printed, leaked
    assert "POST /wp-json/wc/v3/products" in printed


def test_the_filter_keeps_ordinary_messages_as_they_are():
    message = "listing 12 on Reverb main shop: ended everywhere in 0.4 s (3 channels)"

    assert redact(message) == message


def test_every_decrypted_secret_is_known_to_the_filter(account):
    reverb = ReverbConnection.objects.create(account=account, name="Reverb", api_token="rvb-known-token-0123456789")

    ReverbConnection.objects.get(pk=reverb.pk)

    assert {"rvb-known-token-0123456789", reverb.webhook_token} <= revealed_secrets()
