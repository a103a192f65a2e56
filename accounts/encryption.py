"""Secrets at rest: model fields whose values are stored encrypted with Fernet keys from the environment.

`FIELD_ENCRYPTION_KEYS` (settings) is a list of Fernet keys, newest first. Values are written
with the first key and read with any of them (`cryptography`'s MultiFernet), so a new key can be
put in front, `manage.py rotate_encryption_key --commit` re-encrypts every stored value with it,
and the old key is then dropped. A stored value is `enc:v1:<Fernet token>`; the empty string
stays empty, so "is it set?" needs no key.

Every value that is decrypted or encrypted in this process is remembered (`revealed_secrets`) so
the logging filter (config/log_redaction.py) can blank it out of any log line, whatever logged it.

Encrypted values cannot be searched: Fernet tokens are random, so an equality filter would never
match. Only `isnull` lookups are allowed; a secret that must be found by value (the webhook URL
token) keeps a SHA-256 digest next to it (`Sha256DigestField`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models

PREFIX = "enc:v1:"
ALLOWED_LOOKUPS = {"isnull"}
_REVEALED_LIMIT = 10_000


class DecryptionFailed(ImproperlyConfigured):
    """A stored value none of the configured keys opens: the key it was written with is missing."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as error:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes); "
            "make one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`."
        ) from error


def fernet() -> MultiFernet:
    """The MultiFernet of the configured keys (cached per key list, so settings overrides in tests apply)."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


_revealed: set[str] = set()
_revealed_lock = threading.Lock()


def _remember(value: str) -> None:
    # Very short values ("abc") would blank out ordinary words; real credentials are longer.
    if len(value) < 6:
        return
    with _revealed_lock:
        if len(_revealed) >= _REVEALED_LIMIT:
            _revealed.clear()
        _revealed.add(value)


def revealed_secrets() -> frozenset[str]:
    """Every plaintext this process has encrypted or decrypted (for the log redaction filter)."""
    with _revealed_lock:
        return frozenset(_revealed)


def is_encrypted(stored: str | None) -> bool:
    return bool(stored) and stored.startswith(PREFIX)


def encrypt(value: str) -> str:
    """The stored form of a secret: '' stays '', anything else becomes `enc:v1:<token>` under the newest key."""
    if value == "":
        return ""
    _remember(value)
    return PREFIX + fernet().encrypt(value.encode()).decode()


@lru_cache(maxsize=1024)
def _open(keys: tuple[str, ...], token: str) -> str:
    """A token's plaintext under these keys, remembered: every converge and webhook reads its
    connection's secrets, and Fernet's HMAC and AES cost more than the rest of the row's
    conversions (bench/README.md, issue 14). Keyed by the key list too, so a key taken out of
    the settings no longer opens what only it could."""
    return _fernet(keys).decrypt(token.encode()).decode()


def decrypt(stored: str) -> str:
    """The plaintext of a stored value; refuses plaintext and values no configured key opens."""
    if stored == "":
        return ""
    if not is_encrypted(stored):
        raise DecryptionFailed(
            "A secret column holds a value that is not encrypted: run `manage.py migrate` (it encrypts existing rows)."
        )
    try:
        value = _open(tuple(settings.FIELD_ENCRYPTION_KEYS), stored[len(PREFIX) :])
    except InvalidToken as error:
        raise DecryptionFailed(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS: the key it was written "
            "with is missing (put the old key back after the new one until `rotate_encryption_key` has run)."
        ) from error
    _remember(value)
    return value


def rotate(stored: str) -> str:
    """The same secret re-encrypted under the newest key (MultiFernet.rotate); '' stays ''."""
    if stored == "":
        return ""
    if not is_encrypted(stored):
        return encrypt(stored)
    try:
        token = fernet().rotate(stored[len(PREFIX) :].encode())
    except InvalidToken as error:
        raise DecryptionFailed(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS; rotation stopped, "
            "nothing after this row was changed."
        ) from error
    return PREFIX + token.decode()


def written_with_newest_key(stored: str) -> bool:
    if stored == "":
        return True
    try:
        Fernet(settings.FIELD_ENCRYPTION_KEYS[0]).decrypt(stored[len(PREFIX) :].encode())
    except InvalidToken:
        return False
    return True


class EncryptedMixin:
    """Encrypts on the way to the database and decrypts on the way back; the Python value is plaintext."""

    encrypted = True

    def get_internal_type(self) -> str:
        # Ciphertext is about 1.4x the plaintext plus ~100 characters: the column is text, while
        # max_length (if any) still validates the plaintext in forms and serializers.
        return "TextField"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None:
            return value
        return encrypt(str(value))

    def get_lookup(self, lookup_name):
        if lookup_name not in ALLOWED_LOOKUPS:
            raise FieldError(
                f"{self.model.__name__}.{self.name} is encrypted: it cannot be filtered by value "
                f"(lookup '{lookup_name}'). Filter on another field, or keep a digest of it."
            )
        return super().get_lookup(lookup_name)


class EncryptedCharField(EncryptedMixin, models.CharField):
    """A secret typed on one line (an API token, a password), stored encrypted."""


class EncryptedTextField(EncryptedMixin, models.TextField):
    """A long secret (an OAuth refresh token), stored encrypted."""


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Sha256DigestField(models.CharField):
    """The SHA-256 of another (encrypted) field, kept up to date on every save, for finding a row by that secret.

    Only for high-entropy random secrets (a 256-bit URL token): a digest of a guessable value
    would be a dictionary away from the value itself.
    """

    def __init__(self, *args, source: str = "", **kwargs):
        self.source = source
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        if kwargs.get("max_length") == 64:
            del kwargs["max_length"]
        if kwargs.get("editable") is False:
            del kwargs["editable"]
        return name, path, args, kwargs

    def pre_save(self, model_instance, add):
        digest = sha256_hex(getattr(model_instance, self.source) or "")
        setattr(model_instance, self.attname, digest)
        return digest


def encrypted_fields() -> Iterator[tuple[type[models.Model], list[models.Field]]]:
    """Every concrete model with encrypted columns in its own table, and those columns."""
    from django.apps import apps

    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        fields = [f for f in model._meta.local_concrete_fields if getattr(f, "encrypted", False)]
        if fields:
            yield model, fields


def encrypt_columns(app_label: str, model_name: str, fields: Iterable[str], *, forwards: bool = True):
    """A RunPython function that encrypts (or, backwards, decrypts) a model's columns in place, in raw SQL.

    Raw SQL, because the historical model already has the encrypted field and would refuse the
    plaintext it is about to read. Rows already in the target form are left alone, so the
    migration can be re-run after a partial failure.
    """
    fields = list(fields)

    def run(apps, schema_editor):
        meta = apps.get_model(app_label, model_name)._meta
        connection = schema_editor.connection
        quote = connection.ops.quote_name
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        columns = [meta.get_field(name).column for name in fields]
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk}, {', '.join(quote(c) for c in columns)} FROM {table}")
            rows = cursor.fetchall()
            for row_id, *values in rows:
                changed = {}
                for column, value in zip(columns, values, strict=True):
                    if value in (None, ""):
                        continue
                    if forwards and not is_encrypted(value):
                        changed[column] = encrypt(value)
                    elif not forwards and is_encrypted(value):
                        changed[column] = decrypt(value)
                if changed:
                    assignments = ", ".join(f"{quote(c)} = %s" for c in changed)
                    cursor.execute(
                        f"UPDATE {table} SET {assignments} WHERE {pk} = %s",
                        [*changed.values(), row_id],
                    )

    return run


def encrypt_columns_operation(app_label: str, model_name: str, fields: Iterable[str]):
    """The migration operation that encrypts existing rows (and decrypts them when migrated backwards)."""
    from django.db import migrations

    fields = list(fields)
    return migrations.RunPython(
        encrypt_columns(app_label, model_name, fields),
        encrypt_columns(app_label, model_name, fields, forwards=False),
    )


def encrypted_values_rotate(*, dry_run: bool = False) -> dict[str, tuple[int, int]]:
    """Re-encrypt every stored secret under the newest key; per table: (values, values that needed it).

    Each table is done in one transaction with its rows locked (PostgreSQL), so a connection
    edited meanwhile is not overwritten with its old secret. Raw SQL: every account's rows, no
    ORM scoping, and no plaintext kept beyond the row at hand. Run it as the role that owns the
    tables (or a superuser) where row-level security is on.
    """
    from django.db import connection, transaction

    quote = connection.ops.quote_name
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    report: dict[str, tuple[int, int]] = {}
    for model, fields in encrypted_fields():
        table, pk = quote(model._meta.db_table), quote(model._meta.pk.column)
        columns = [quote(f.column) for f in fields]
        total = stale = 0
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk}, {', '.join(columns)} FROM {table} ORDER BY {pk}{lock}")
                rows = cursor.fetchall()
            for row_id, *values in rows:
                changed = {}
                for column, value in zip(columns, values, strict=True):
                    if value in (None, ""):
                        continue
                    total += 1
                    if is_encrypted(value) and written_with_newest_key(value):
                        continue
                    stale += 1
                    changed[column] = rotate(value)
                if changed and not dry_run:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"UPDATE {table} SET {', '.join(f'{c} = %s' for c in changed)} WHERE {pk} = %s",
                            [*changed.values(), row_id],
                        )
        report[model._meta.label] = (total, stale)
    return report
