"""The tenant (a seller business) and the people who work for it."""

import hashlib
import secrets

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q

from .roles import Role


class Account(models.Model):
    """One seller business. Every business row in the product belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=60, unique=True)
    default_currency = models.CharField(max_length=3, default="USD")
    auto_archive_after_days = models.PositiveIntegerField(
        default=30,
        help_text="Sold and shipped items older than this many days are archived automatically. 0 turns it off.",
    )
    low_stock_threshold = models.PositiveIntegerField(
        default=1,
        help_text=(
            "Alert when a multi-quantity item has this many units or fewer left to sell (an item can override "
            "it). One-of-a-kind items never raise low-stock alerts."
        ),
    )
    alert_severities = models.JSONField(
        default=dict,
        blank=True,
        help_text='Severity per alert kind where it differs from the default, e.g. {"price_drift": "high"}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in. Staff belong to one account; platform superusers may have none."""

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    alert_emails_muted = models.JSONField(
        default=list,
        blank=True,
        help_text='Alert severities this person gets no e-mail for, e.g. ["low", "medium"]. Critical ones are '
        "mailed at once, the others in a daily digest.",
    )
    role = models.CharField(
        max_length=10,
        choices=Role.choices,
        default=Role.STAFF,
        help_text="What this person may do in the account: owner (billing, connections, people), manager "
        "(everything but billing and people), staff (items, listing, printing, orders), viewer (read only).",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=Role.values), name="user_role_known", violation_error_message="Unknown role."
            ),
            models.CheckConstraint(
                condition=Q(is_superuser=True) | Q(account__isnull=False),
                name="user_has_account_unless_superuser",
                violation_error_message="Every user except a platform superuser belongs to an account.",
            ),
        ]


class AccountQuerySet(models.QuerySet):
    def for_user(self, user):
        """The rows this user may see: all for a platform superuser, their account's otherwise."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        if user.account_id is None:
            return self.none()
        return self.filter(account_id=user.account_id)


def account_key(*, db_index: bool = True) -> models.ForeignKey:
    """The shop a row belongs to (AccountOwned's `account`). A model whose table has an index
    leading with the account (a unique (account, ...) or an (account, ...) list index) declares
    it again with db_index=False: that index serves the account's lookups, and one more index
    would only be written on every insert (tests/test_schema_indexes.py)."""
    return models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+", db_index=db_index)


class AccountOwned(models.Model):
    """Base for every business model: carries the account and the scoping queryset."""

    account = account_key()

    objects = AccountQuerySet.as_manager()

    class Meta:
        abstract = True


class ApiTokenScope(models.TextChoices):
    READ = "read", "Read only"
    READ_WRITE = "read_write", "Read and write"


def api_token_digest(key: str) -> str:
    """What is stored of a token: its SHA-256 (the tokens are 256-bit random, so no salt or KDF is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user):
        """A person's own tokens; the whole account's for whoever manages its people."""
        from .roles import Capability, has_capability

        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        if has_capability(user, Capability.PEOPLE):
            return self.filter(user__account_id=user.account_id)
        return self.filter(user=user)


class ApiToken(models.Model):
    """A person's key for the REST API. Only its digest is stored: the key is shown once, when made.

    A read token can only read, whatever its person's role; a read/write token can do what the
    person's role allows (accounts.roles). Revoking keeps the row, so the audit trail still names it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text='What the token is for, e.g. "website stock sync".')
    scope = models.CharField(max_length=10, choices=ApiTokenScope.choices, default=ApiTokenScope.READ)
    prefix = models.CharField(max_length=12, editable=False, help_text="The first characters of the key.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=ApiTokenScope.values), name="apitoken_scope_known"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def new_key() -> str:
        return "bo_" + secrets.token_urlsafe(32)


class AuditEntryManager(LogEntryManager):
    """auditlog's manager, stamping each entry with the account and item the changed row belongs to."""

    def log_create(self, instance, force_log: bool = False, **kwargs):
        kwargs.setdefault("account_id", _account_id_of(instance))
        kwargs.setdefault("item_id", _item_id_of(instance))
        return super().log_create(instance, force_log=force_log, **kwargs)

    def log_m2m_changes(self, changed_queryset, instance, operation, field_name, **kwargs):
        kwargs.setdefault("account_id", _account_id_of(instance))
        kwargs.setdefault("item_id", _item_id_of(instance))
        return super().log_m2m_changes(changed_queryset, instance, operation, field_name, **kwargs)


def _account_id_of(instance) -> int | None:
    if isinstance(instance, Account):
        return instance.pk
    account_id = getattr(instance, "account_id", None)
    if account_id is None and getattr(instance, "user_id", None):
        account_id = instance.user.account_id  # a person's rows (API tokens) are their shop's
    if account_id is None:
        # Written for a shop (its row-level security scope is set): the entry is that shop's, and
        # the policy refuses an entry of no shop under a shop's scope.
        from .rls import current_account_id, scoping_enabled

        account_id = current_account_id() if scoping_enabled() else None
    return account_id


def _item_id_of(instance) -> int | None:
    # By label: accounts cannot import inventory (inventory builds on accounts).
    if instance._meta.label_lower == "inventory.item":
        return instance.pk
    return getattr(instance, "item_id", None)


class AuditEntry(AbstractLogEntry):
    """One change by someone (or the system) with its before and after values (django-auditlog's
    log entry, AUDITLOG_LOGENTRY_MODEL), stamped with the account so each shop sees only its own."""

    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    item_id = models.BigIntegerField(
        null=True,
        blank=True,
        db_index=True,
        help_text="The catalogue item the change concerns (its own or a listing's).",
    )

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["account", "-timestamp"], name="auditentry_account_time")]
