"""The tenant (a seller business) and the people who work for it."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


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

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(is_superuser=True) | Q(account__isnull=False),
                name="user_has_account_unless_superuser",
                violation_error_message="Every user except a platform superuser belongs to an account.",
            )
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


class AccountOwned(models.Model):
    """Base for every business model: carries the account and the scoping queryset."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")

    objects = AccountQuerySet.as_manager()

    class Meta:
        abstract = True
